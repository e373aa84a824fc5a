//! Domain: from a query name to the registered domain (eTLD+1) it is counted under,
//! using the Public Suffix List embedded in the binary, and the whitelist.
//!
//! The list is `data/public_suffix_list.dat` (provenance in `data/README.md`, refreshed
//! by `cargo xtask refresh-psl`), matched by `suffixes` ([`PublicSuffixes`]). Names are
//! split into labels by `labels`, because canonical names may hold escaped dots (`\.`)
//! inside a label: a registered domain always starts on a real label boundary.
//!
//! Each worker puts a [`VerdictCache`] in front of the [`Classifier`]: ordinary traffic
//! repeats a few popular names, and a hit skips the list walk.
//!
//! `labels` walks a name's labels from the right; `whitelist` reads and checks the
//! entries; `cache` is the verdict cache.

use std::sync::OnceLock;

mod cache;
mod labels;
mod suffixes;
mod whitelist;

pub use cache::{VerdictCache, CACHED_NAME_MAX, NO_HINT, VERDICT_CACHE_BYTES};
use labels::LabelStarts;
use suffixes::Walk;
pub use suffixes::{PublicSuffixes, RuleError, PRIVATE_MARKER};
use whitelist::normalise_entry;
pub use whitelist::read_whitelist_file;

/// The Public Suffix List compiled into the binary.
pub const PUBLIC_SUFFIX_LIST: &str = include_str!("../../data/public_suffix_list.dat");

/// How names are grouped and which are ignored.
#[derive(Clone, Debug)]
pub struct DomainSettings {
    /// Whether the list's private section (e.g. `compute-1.amazonaws.com`) counts as
    /// public suffixes. Packetbeat's does; so is the default.
    pub include_private: bool,
    /// Whitelisted domains: each silences itself and every name under it.
    pub whitelist: Vec<String>,
}

/// Where a name goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'n> {
    /// Count the name under this registered domain (a suffix of the name).
    Registered(&'n [u8]),
    /// The name is, or is under, a whitelisted domain.
    Whitelisted,
    /// The name has no registered domain (it is a public suffix, or empty).
    NoDomain,
}

/// A whitelist file or entry that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The whitelist file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An entry is not a domain name.
    #[error("{origin}: whitelist entry {entry:?} is not a domain name: {why}")]
    BadEntry {
        /// Where the entry came from (`FILE:LINE` or `config`).
        origin: String,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A Public Suffix List text does not parse (the embedded one is checked by a test,
    /// so this comes from a list being refreshed).
    #[error("public suffix list does not parse: {0}")]
    BadList(String),
}

/// Maps canonical names (see [`crate::decode::Name`]) to registered domains.
pub struct Classifier {
    /// The list's rules and the whitelist's entries in one table: one walk a name.
    /// Workers share one classifier.
    table: PublicSuffixes,
}

impl Classifier {
    /// Builds the classifier from the embedded list and the settings.
    pub fn new(settings: &DomainSettings) -> Result<Self, DomainError> {
        static WITH_PRIVATE: OnceLock<Result<PublicSuffixes, String>> = OnceLock::new();
        static ICANN_ONLY: OnceLock<Result<PublicSuffixes, String>> = OnceLock::new();
        let cell = if settings.include_private {
            &WITH_PRIVATE
        } else {
            &ICANN_ONLY
        };
        let list = cell
            .get_or_init(|| {
                PublicSuffixes::parse(PUBLIC_SUFFIX_LIST, settings.include_private)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| DomainError::BadList(e.clone()))?;
        let mut entries = Vec::with_capacity(settings.whitelist.len());
        for entry in &settings.whitelist {
            let normal = normalise_entry(entry).map_err(|why| DomainError::BadEntry {
                origin: "config".to_string(),
                entry: entry.clone(),
                why,
            })?;
            entries.push(normal.into_bytes());
        }
        Ok(Self {
            table: list.with_whitelist(entries.iter().map(Vec::as_slice)),
        })
    }

    /// Classifies one canonical name. Allocates nothing.
    ///
    /// Works on any bytes without panicking; bytes that are not a canonical name give
    /// a verdict, just not a meaningful one. A TLD the list does not know is a public
    /// suffix by the list's default rule `*`, so `x.y.pirate.sea` counts under
    /// `pirate.sea`.
    pub fn classify<'n>(&self, name: &'n [u8]) -> Verdict<'n> {
        self.classify_labeled(name, None)
    }

    /// [`classify`](Self::classify) `name` whose labels start at `label_starts` (byte
    /// offsets, left to right, as [`crate::decode::Name::label_starts`] gives them), so
    /// that it need not look for them. Offsets that are not `name`'s label starts give a
    /// wrong verdict, never a panic.
    pub fn classify_labeled<'n>(
        &self,
        name: &'n [u8],
        label_starts: Option<&'n [u8]>,
    ) -> Verdict<'n> {
        if name.is_empty() {
            return Verdict::NoDomain;
        }
        let mut labels = match label_starts {
            Some(starts) if starts.last().is_some_and(|&s| usize::from(s) < name.len()) => {
                LabelStarts::known(name, starts)
            }
            _ => LabelStarts::new(name),
        };
        // One more label than the public suffix makes the registered domain; none more
        // when the name is itself a public suffix.
        let suffix = match self.table.walk(name, &mut labels) {
            Walk::Whitelisted => return Verdict::Whitelisted,
            Walk::Suffix(n) => n,
        };
        match labels.get(suffix).and_then(|start| name.get(start..)) {
            Some(domain) => Verdict::Registered(domain),
            None => Verdict::NoDomain,
        }
    }
}

/// Checks that `text` is a usable Public Suffix List (for `cargo xtask refresh-psl`):
/// both sections present and both variants parse.
pub fn check_public_suffix_list(text: &str) -> Result<(), DomainError> {
    if !text.contains("===BEGIN ICANN DOMAINS===") || !text.contains(PRIVATE_MARKER) {
        return Err(DomainError::BadList(
            "missing the ICANN or PRIVATE section marker".to_string(),
        ));
    }
    for include_private in [false, true] {
        PublicSuffixes::parse(text, include_private)
            .map_err(|e| DomainError::BadList(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn classifier(include_private: bool, whitelist: &[&str]) -> Classifier {
        Classifier::new(&DomainSettings {
            include_private,
            whitelist: whitelist.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn registered(c: &Classifier, name: &[u8]) -> Option<Vec<u8>> {
        match c.classify(name) {
            Verdict::Registered(d) => Some(d.to_vec()),
            Verdict::NoDomain => None,
            Verdict::Whitelisted => panic!("{} whitelisted", name.escape_ascii()),
        }
    }

    fn reg(c: &Classifier, name: &str) -> Option<String> {
        registered(c, name.as_bytes()).map(|d| String::from_utf8(d).unwrap())
    }

    #[test]
    fn embedded_list_is_recent_and_parses() {
        assert!(PUBLIC_SUFFIX_LIST.contains("// VERSION: 2026-"));
        check_public_suffix_list(PUBLIC_SUFFIX_LIST).unwrap();
        assert!(check_public_suffix_list("com\n").is_err());
    }

    #[test]
    fn icann_suffixes() {
        for private in [false, true] {
            let c = classifier(private, &[]);
            assert_eq!(reg(&c, "a.example.co.uk").as_deref(), Some("example.co.uk"));
            assert_eq!(reg(&c, "example.co.uk").as_deref(), Some("example.co.uk"));
            assert_eq!(reg(&c, "co.uk"), None);
            assert_eq!(reg(&c, "uk"), None);
            assert_eq!(reg(&c, "www.example.com").as_deref(), Some("example.com"));
            // Wildcard and exception rules: *.ck, !www.ck.
            assert_eq!(reg(&c, "a.b.foo.ck").as_deref(), Some("b.foo.ck"));
            assert_eq!(reg(&c, "foo.ck"), None);
            assert_eq!(reg(&c, "a.www.ck").as_deref(), Some("www.ck"));
        }
    }

    #[test]
    fn private_section_on_and_off() {
        let with = classifier(true, &[]);
        let without = classifier(false, &[]);
        assert_eq!(
            reg(&with, "foo.blogspot.com").as_deref(),
            Some("foo.blogspot.com")
        );
        assert_eq!(reg(&with, "blogspot.com"), None);
        assert_eq!(
            reg(&without, "foo.blogspot.com").as_deref(),
            Some("blogspot.com")
        );
        // *.compute-1.amazonaws.com is in the private section.
        assert_eq!(reg(&with, "x.compute-1.amazonaws.com"), None);
        assert_eq!(
            reg(&with, "ec2.x.compute-1.amazonaws.com").as_deref(),
            Some("ec2.x.compute-1.amazonaws.com")
        );
        assert_eq!(
            reg(&without, "x.compute-1.amazonaws.com").as_deref(),
            Some("amazonaws.com")
        );
    }

    #[test]
    fn unknown_tld_uses_default_rule() {
        let c = classifier(true, &[]);
        assert_eq!(reg(&c, "x.y.pirate.sea").as_deref(), Some("pirate.sea"));
        assert_eq!(reg(&c, "pirate.sea").as_deref(), Some("pirate.sea"));
        assert_eq!(reg(&c, "sea"), None);
        assert_eq!(reg(&c, "localhost"), None);
    }

    #[test]
    fn empty_and_single_label() {
        let c = classifier(true, &["com"]);
        assert_eq!(c.classify(b""), Verdict::NoDomain);
        assert_eq!(c.classify(b"localhost"), Verdict::NoDomain);
        assert_eq!(c.classify(b"com"), Verdict::Whitelisted);
    }

    #[test]
    fn result_is_a_suffix_of_the_input() {
        let c = classifier(true, &[]);
        let name = b"a.b.example.org";
        let Verdict::Registered(d) = c.classify(name) else {
            panic!()
        };
        assert_eq!(d.as_ptr(), name[4..].as_ptr());
        assert_eq!(d, b"example.org");
    }

    #[test]
    fn escaped_dots_stay_inside_labels() {
        let c = classifier(true, &[]);
        // Label "a.example" (escaped), then com: cutting at the escaped dot would give
        // "example.com", inside the label.
        assert_eq!(
            registered(&c, br"x.a\.example.com").as_deref(),
            Some(&br"a\.example.com"[..])
        );
        assert_eq!(
            registered(&c, br"a\.b.example.com").as_deref(),
            Some(&b"example.com"[..])
        );
        // An escaped backslash before a real dot: "x\\" then "example" then "com".
        assert_eq!(
            registered(&c, br"x\\.example.com").as_deref(),
            Some(&b"example.com"[..])
        );
        // "\\" then escaped dot: one label "x\.example"... plus "\\".
        assert_eq!(
            registered(&c, br"y.x\\\.example.com").as_deref(),
            Some(&br"x\\\.example.com"[..])
        );
        // An escaped dot in the would-be TLD: the TLD is the whole label "co\.uk".
        assert_eq!(
            registered(&c, br"example.co\.uk").as_deref(),
            Some(&br"example.co\.uk"[..])
        );
        // As the whole name.
        assert_eq!(c.classify(br"co\.uk"), Verdict::NoDomain);
    }

    #[test]
    fn high_bytes_and_junk_never_panic() {
        let c = classifier(true, &["example.com"]);
        assert_eq!(
            registered(&c, b"\xc3\xa9t\xc3\xa9.\xff\x80.pirate.sea").as_deref(),
            Some(&b"pirate.sea"[..])
        );
        assert_eq!(
            registered(&c, b"x.\xff\xfe").as_deref(),
            Some(&b"x.\xff\xfe"[..])
        );
        // UTF-8 rules in the list match raw UTF-8 bytes: 公司.cn is a suffix.
        assert_eq!(
            registered(&c, "a.b.公司.cn".as_bytes()).as_deref(),
            Some("b.公司.cn".as_bytes())
        );
        // Not canonical, but must not panic: every short byte string.
        let alphabet = [b'.', b'\\', b'a', b'c', b'k', 0xff, b'*', b'!'];
        let mut buf = [0u8; 6];
        for len in 0..=buf.len() {
            let mut n = 0usize;
            loop {
                let mut k = n;
                for b in buf[..len].iter_mut() {
                    *b = alphabet[k % alphabet.len()];
                    k /= alphabet.len();
                }
                if k != 0 {
                    break;
                }
                if let Verdict::Registered(d) = c.classify(&buf[..len]) {
                    assert!(buf[..len].ends_with(d));
                }
                n += 1;
            }
        }
    }

    #[test]
    fn whitelist_semantics() {
        let c = classifier(true, &["amazonaws.com", "*.Example.ORG.", ".corp"]);
        for name in [
            "amazonaws.com",
            "ec2.compute-1.amazonaws.com",
            "a.b.x.compute-1.amazonaws.com",
            "example.org",
            "www.example.org",
            "corp",
            "host.corp",
        ] {
            assert_eq!(c.classify(name.as_bytes()), Verdict::Whitelisted, "{name}");
        }
        assert_eq!(
            reg(&c, "notamazonaws.com").as_deref(),
            Some("notamazonaws.com")
        );
        assert_eq!(
            reg(&c, "amazonaws.com.evil.net").as_deref(),
            Some("evil.net")
        );
        assert_eq!(
            reg(&c, "www.example.org.uk").as_deref(),
            Some("example.org.uk")
        );
        // "x.amazonaws" is one label (escaped dot): not under amazonaws.com.
        assert_eq!(
            registered(&c, br"a.x\.amazonaws.com").as_deref(),
            Some(&br"x\.amazonaws.com"[..])
        );
        // But a real label boundary after an escaped label is.
        assert_eq!(c.classify(br"x\.y.amazonaws.com"), Verdict::Whitelisted);
    }

    #[test]
    fn tunnel_names_from_the_parser() {
        // Names as the DNS parser writes them, iodine's high bytes included.
        let c = classifier(true, &[]);
        let mut name = crate::decode::Name::new();
        let msg = [
            0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b'P', 0xe9, b'.', b'z', 6, b'p', b'i', b'r',
            b'a', b't', b'e', 3, b's', b'e', b'a', 0, 0, 10, 0, 1,
        ];
        crate::decode::parse_question(&msg, &mut name).unwrap();
        assert_eq!(name.as_bytes(), b"p\xe9\\.z.pirate.sea");
        assert_eq!(
            c.classify(name.as_bytes()),
            Verdict::Registered(b"pirate.sea")
        );
    }

    #[test]
    fn label_starts_from_the_parser_give_the_same_verdicts() {
        use crate::decode::{parse_question, Name};
        let c = classifier(true, &["example.org", "in-addr.arpa"]);
        let mut name = Name::new();
        let mut known = 0;
        for text in [
            "www.example.com",
            "a.b.example.co.uk",
            "co.uk",
            "x.blogspot.com",
            "ww.example.org",
            "4.3.2.1.in-addr.arpa",
            "a.b.c.d.e.f.pirate.sea",
            "sea",
            "x.y.ck",
            "www.ck",
            "Mixed.Case.EXAMPLE.net",
        ] {
            let wire = crate::synth::query(1, text.as_bytes(), 1);
            parse_question(&wire, &mut name).expect("parses");
            let starts = name.label_starts();
            known += usize::from(starts.is_some());
            assert_eq!(
                c.classify_labeled(name.as_bytes(), starts),
                c.classify(name.as_bytes()),
                "{text}"
            );
        }
        assert_eq!(known, 11);
        // Offsets that are not the name's do not panic.
        for starts in [&[0u8, 200][..], &[50], &[], &[3, 1, 0]] {
            let _ = c.classify_labeled(b"www.example.com", Some(starts));
        }
    }
}
