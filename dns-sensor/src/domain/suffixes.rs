//! The Public Suffix List as the sensor matches it: one hash table keyed by the text of
//! every rule and of every suffix of a rule, walked from a name's last label leftwards,
//! one probe a label, until the name leaves the list.
//!
//! Why not the `publicsuffix` crate, which parsed the list before: its trie keys every
//! node's children by label in a SipHash table, and that hashing alone was a fifth of
//! the lookup on resolver-shaped traffic; its ICANN-only view still walks private
//! nodes (a private rule can hide an ICANN wildcard beside it); and it is kept as the
//! reference the tests compare this matcher with, rule by rule. The `psl` crate
//! (the list compiled into match statements) is faster still per lookup (24 ns a name
//! against 46 here and 74 for publicsuffix, label scan included: `cargo bench -p
//! dns-sensor --bench hot_path -- suffix_lookup`, 2026-12-01), but it embeds its own
//! copy of the list, which the sensor could then neither date nor refresh (`cargo xtask
//! refresh-psl`), and it has no ICANN-only view. docs/performance.md ("Registered
//! domain") has the figures.
//!
//! The matching is the list's own algorithm (<https://publicsuffix.org/list/>): the
//! longest matching rule wins, a wildcard rule `*.x` matches any one label under `x`,
//! an exception rule `!y.x` wins over everything and makes `x` the public suffix, and
//! a name under no rule has its last label as public suffix (the default rule `*`).

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use super::labels::{LabelStarts, RevLabels};
use crate::bytes::same_bytes;

/// The suffix is itself a public suffix (`co.uk`).
const RULE: u8 = 1;
/// Every label under the suffix is a public suffix (`*.ck`).
const WILDCARD: u8 = 2;
/// The name is not a public suffix although a wildcard covers it (`!www.ck`).
const EXCEPTION: u8 = 4;
/// Longer rules end under the suffix: the walk goes on.
const INNER: u8 = 8;
/// The suffix is a whitelist entry: the name is whitelisted, whatever the rules say.
const WHITELISTED: u8 = 16;
/// Longer whitelist entries end under the suffix: the walk goes on for them.
const WHITELIST_INNER: u8 = 32;

/// What a walk of a name through the table found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Walk {
    /// The name is, or is under, a whitelist entry.
    Whitelisted,
    /// Its public suffix is its last this many labels (0 for the empty name).
    Suffix(usize),
}

/// The line that starts the list's private section (suffixes run by companies, like
/// `blogspot.com`), as opposed to the ICANN section above it.
pub const PRIVATE_MARKER: &str = "===BEGIN PRIVATE DOMAINS===";

/// A rule of the list that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {why}: {rule:?}")]
pub struct RuleError {
    /// 1-based line in the list's text.
    pub line: usize,
    /// The rule as written.
    pub rule: String,
    /// What is wrong.
    pub why: &'static str,
}

/// The list's rules, ready to match names against.
///
/// A suffix is found by a hash of its labels fed one at a time from the right, so the
/// walk extends the hash of the last suffix by one label rather than hashing each
/// longer suffix from its start, and the texts sit back to back in one block rather
/// than one allocation each. On the resolver mix that saved 19-21 instructions a frame
/// (docs/performance.md, "The hot path's fourth pass").
#[derive(Clone, Debug)]
pub struct PublicSuffixes {
    /// One entry per suffix, found by [`suffix_hash`](Self::suffix_hash).
    entries: HashTable<SuffixEntry>,
    /// Every suffix's text (lower-case ASCII, IDN labels in their `xn--` form, or the
    /// list's UTF-8), back to back.
    texts: Vec<u8>,
    /// Keyed per process: who chooses names cannot aim them at one chain of the table.
    hasher: foldhash::fast::RandomState,
}

/// A suffix of the table: its flags and where its text is.
#[derive(Clone, Copy, Debug)]
struct SuffixEntry {
    hash: u64,
    at: u32,
    len: u32,
    flags: u8,
}

impl SuffixEntry {
    /// The suffix's text, in the table's `texts`.
    fn text<'t>(&self, texts: &'t [u8]) -> &'t [u8] {
        let at = self.at as usize;
        &texts[at..at + self.len as usize]
    }
}

/// The rule a line of the list holds: its first word, unless the line is blank or a
/// comment (comments take whole lines).
fn rule_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .next()
        .filter(|r| !r.starts_with("//"))
}

impl PublicSuffixes {
    /// Reads the list's text, without its private section unless `include_private`.
    pub fn parse(text: &str, include_private: bool) -> Result<Self, RuleError> {
        let mut rules = Self::empty();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !include_private && line.contains(PRIVATE_MARKER) {
                break;
            }
            let Some(rule) = rule_of(line) else {
                continue;
            };
            let bad = |why| RuleError {
                line: i + 1,
                rule: rule.to_owned(),
                why,
            };
            let (kind, body) = if let Some(body) = rule.strip_prefix('!') {
                (EXCEPTION, body)
            } else if let Some(body) = rule.strip_prefix("*.") {
                (WILDCARD, body)
            } else {
                (RULE, rule)
            };
            if body.contains('*') {
                return Err(bad("a wildcard that is not the leftmost label"));
            }
            let ascii = idna::domain_to_ascii(body).map_err(|_| bad("not a domain name"))?;
            if ascii.is_empty() || ascii.split('.').any(str::is_empty) {
                return Err(bad("an empty label"));
            }
            // Names on the wire carry IDN labels in their `xn--` form; a few (mDNS, odd
            // clients) carry them as UTF-8, which the list's own spelling matches.
            let unicode = body.to_lowercase();
            for form in [ascii.as_str(), unicode.as_str()] {
                rules.add_flags(form.as_bytes(), kind);
                // Every shorter suffix leads the walk towards this rule.
                let mut rest = form;
                while let Some((_, parent)) = rest.split_once('.') {
                    rules.add_flags(parent.as_bytes(), INNER);
                    rest = parent;
                }
            }
        }
        if rules.is_empty() {
            return Err(RuleError {
                line: 0,
                rule: String::new(),
                why: "no rule at all",
            });
        }
        Ok(rules)
    }

    fn empty() -> Self {
        Self {
            entries: HashTable::new(),
            texts: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The hash [`walk`](Self::walk) finds `suffix` by: its labels, each with the dot
    /// after it, fed from the right.
    fn suffix_hash(&self, suffix: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        let mut labels = RevLabels::new(suffix);
        let mut end = suffix.len();
        while let Some(start) = labels.next_start() {
            hasher.write(&suffix[start..end]);
            end = start;
        }
        hasher.finish()
    }

    /// `suffix`'s flags, found by its hash; 0 for a suffix the table does not hold.
    #[inline(always)]
    fn flags_hashed(&self, hash: u64, suffix: &[u8]) -> u8 {
        self.entries
            .find(hash, |e| {
                e.hash == hash && same_bytes(e.text(&self.texts), suffix)
            })
            .map_or(0, |e| e.flags)
    }

    /// Sets `flags` on `suffix`, adding it if new.
    fn add_flags(&mut self, suffix: &[u8], flags: u8) {
        let hash = self.suffix_hash(suffix);
        let texts = &self.texts;
        let found = self
            .entries
            .find_mut(hash, |e| e.hash == hash && e.text(texts) == suffix);
        if let Some(entry) = found {
            entry.flags |= flags;
            return;
        }
        // The list and a whitelist are kilobytes to megabytes: offsets fit in 32 bits.
        let entry = SuffixEntry {
            hash,
            at: self.texts.len() as u32,
            len: suffix.len() as u32,
            flags,
        };
        self.texts.extend_from_slice(suffix);
        self.entries.insert_unique(hash, entry, |e| e.hash);
    }

    #[cfg(test)]
    fn flags(&self, suffix: &[u8]) -> u8 {
        self.flags_hashed(self.suffix_hash(suffix), suffix)
    }

    /// Where `name`'s public suffix starts (a byte offset on a label boundary; 0 when the
    /// whole name is one), `None` for the empty name.
    pub fn suffix_start(&self, name: &[u8]) -> Option<usize> {
        let mut labels = LabelStarts::new(name);
        match self.suffix_labels(name, &mut labels) {
            0 => None,
            n => labels.get(n - 1),
        }
    }

    /// How many of `name`'s last labels make its public suffix (0 for the empty name).
    /// Allocates nothing; one hash probe per label from the right, until the name is
    /// past every rule.
    #[inline]
    pub(super) fn suffix_labels(&self, name: &[u8], labels: &mut LabelStarts<'_>) -> usize {
        match self.walk(name, labels) {
            Walk::Suffix(n) => n,
            // A table without whitelist entries never says so; with them, the suffix is
            // asked of `walk` instead.
            Walk::Whitelisted => 0,
        }
    }

    /// The table's rules with these whitelist entries added (normalised: lower-case,
    /// no trailing dot), so that one walk answers both questions.
    pub(super) fn with_whitelist<'e>(&self, entries: impl IntoIterator<Item = &'e [u8]>) -> Self {
        let mut rules = self.clone();
        for entry in entries {
            rules.add_flags(entry, WHITELISTED);
            let mut rest = entry;
            while let Some(dot) = rest.iter().position(|&b| b == b'.') {
                rest = &rest[dot + 1..];
                rules.add_flags(rest, WHITELIST_INNER);
            }
        }
        rules
    }

    /// Walks `name` from its last label leftwards: whitelisted as soon as a suffix is a
    /// whitelist entry, else its public suffix once past every rule and every entry.
    /// One hash probe per label; allocates nothing.
    #[inline]
    pub(super) fn walk(&self, name: &[u8], labels: &mut LabelStarts<'_>) -> Walk {
        let mut suffix = 0;
        let mut hasher = self.hasher.build_hasher();
        let mut end = name.len();
        // The root's wildcard is the default rule: the last label is always a suffix.
        let mut parent_wildcard = true;
        // Whether longer rules may still change the suffix.
        let mut rules_open = true;
        let mut i = 0;
        while let Some(start) = labels.get(i) {
            let (Some(label), Some(tail)) = (name.get(start..end), name.get(start..)) else {
                break;
            };
            hasher.write(label);
            end = start;
            let flags = self.flags_hashed(hasher.finish(), tail);
            if flags & WHITELISTED != 0 {
                return Walk::Whitelisted;
            }
            if rules_open {
                if flags & EXCEPTION != 0 {
                    // An exception wins over every other rule: the suffix is its parent.
                    suffix = i;
                    rules_open = false;
                } else {
                    if flags & RULE != 0 || parent_wildcard {
                        suffix = i + 1;
                    }
                    rules_open = flags & (INNER | WILDCARD) != 0;
                    parent_wildcard = flags & WILDCARD != 0;
                }
            }
            if !rules_open && flags & WHITELIST_INNER == 0 {
                break;
            }
            i += 1;
        }
        Walk::Suffix(suffix)
    }

    /// How many suffixes the table holds (rules and the suffixes that lead to them).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use publicsuffix::{List, Psl};

    use super::*;
    use crate::domain::PUBLIC_SUFFIX_LIST;

    fn suffix<'n>(list: &PublicSuffixes, name: &'n str) -> Option<&'n str> {
        list.suffix_start(name.as_bytes())
            .map(|start| &name[start..])
    }

    #[test]
    fn the_list_algorithm_on_its_own_examples() {
        let list = PublicSuffixes::parse(
            "com\nuk\nco.uk\n*.ck\n!www.ck\n*.kawasaki.jp\n!city.kawasaki.jp\njp\n\
             // a comment\n// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n",
            true,
        )
        .expect("parses");
        assert_eq!(suffix(&list, "example.com"), Some("com"));
        assert_eq!(suffix(&list, "a.b.example.co.uk"), Some("co.uk"));
        assert_eq!(suffix(&list, "co.uk"), Some("co.uk"));
        assert_eq!(suffix(&list, "x.y.ck"), Some("y.ck"));
        assert_eq!(suffix(&list, "www.ck"), Some("ck"));
        assert_eq!(suffix(&list, "a.www.ck"), Some("ck"));
        assert_eq!(suffix(&list, "a.b.kawasaki.jp"), Some("b.kawasaki.jp"));
        assert_eq!(suffix(&list, "a.city.kawasaki.jp"), Some("kawasaki.jp"));
        assert_eq!(suffix(&list, "x.blogspot.com"), Some("blogspot.com"));
        // Not in the list: the default rule.
        assert_eq!(suffix(&list, "a.b.pirate.sea"), Some("sea"));
        assert_eq!(suffix(&list, "sea"), Some("sea"));
        assert_eq!(suffix(&list, ""), None);
        let icann =
            PublicSuffixes::parse("com\n// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n", false)
                .expect("parses");
        assert_eq!(suffix(&icann, "x.blogspot.com"), Some("com"));
    }

    #[test]
    fn bad_rules_name_their_line() {
        let err = PublicSuffixes::parse("com\nfoo.*.bar\n", true).expect_err("refused");
        assert_eq!(err.line, 2);
        assert!(PublicSuffixes::parse("com\na..b\n", true).is_err());
        assert!(PublicSuffixes::parse("// nothing\n", true).is_err());
    }

    /// The registered domain of `name` as the `publicsuffix` crate finds it, for
    /// comparison: the crate's suffix plus one label, or `None`.
    fn reference(list: &List, name: &str) -> Option<String> {
        let labels = name.rsplit('.').map(str::as_bytes);
        let len = list.find(labels).len;
        let rest = name.len().checked_sub(len + 1)?;
        let label_start = name[..rest].rfind('.').map_or(0, |d| d + 1);
        Some(name[label_start..].to_owned())
    }

    fn ours(list: &PublicSuffixes, name: &str) -> Option<String> {
        let start = list.suffix_start(name.as_bytes())?;
        let rest = start.checked_sub(1)?;
        let label_start = name[..rest].rfind('.').map_or(0, |d| d + 1);
        Some(name[label_start..].to_owned())
    }

    #[test]
    fn every_rule_of_the_embedded_list_matches_as_the_publicsuffix_crate_does() {
        for include_private in [true, false] {
            let text = if include_private {
                PUBLIC_SUFFIX_LIST
            } else {
                PUBLIC_SUFFIX_LIST
                    .find(PRIVATE_MARKER)
                    .map_or(PUBLIC_SUFFIX_LIST, |at| &PUBLIC_SUFFIX_LIST[..at])
            };
            let crate_list: List = text.parse().expect("the crate parses the list");
            let ours_list = PublicSuffixes::parse(PUBLIC_SUFFIX_LIST, include_private)
                .expect("we parse the list");
            let mut names = 0;
            let mut differ = std::collections::BTreeSet::new();
            for line in PUBLIC_SUFFIX_LIST.lines() {
                let Some(rule) = rule_of(line) else {
                    continue;
                };
                let body = rule.trim_start_matches('!').trim_start_matches("*.");
                let Ok(ascii) = idna::domain_to_ascii(body) else {
                    continue;
                };
                // The rule itself, one and two labels under it, and its parent.
                for name in [
                    ascii.clone(),
                    format!("w.{ascii}"),
                    format!("x.w.{ascii}"),
                    ascii
                        .split_once('.')
                        .map_or(ascii.clone(), |(_, p)| p.to_owned()),
                ] {
                    names += 1;
                    if ours(&ours_list, &name) != reference(&crate_list, &name) {
                        differ.insert(name);
                    }
                }
            }
            assert!(names > 30_000, "{names}");
            // Where the two differ, the crate is wrong: it ignores a wildcard rule for a
            // label that longer rules also name (`*.cloud.int.apple` beside
            // `*.r.cloud.int.apple` makes `r.cloud.int.apple` a public suffix; the crate
            // gives `int.apple`). Every such name is a public suffix by its parent's
            // wildcard, which the list's algorithm and the Python `publicsuffixlist`
            // 1.1.2.20261023 (the package the embedded list comes from) agree on: checked
            // for all 22 names on 2026-12-01.
            for name in &differ {
                let parent = name.split_once('.').map_or("", |(_, p)| p);
                let flags = |s: &str| ours_list.flags(s.as_bytes());
                assert!(
                    flags(parent) & WILDCARD != 0 && flags(name) & (RULE | EXCEPTION) == 0,
                    "{name}: not the crate's wildcard quirk"
                );
                assert_eq!(ours(&ours_list, name), None, "{name}");
            }
            let expected = if include_private { 22 } else { 0 };
            assert_eq!(differ.len(), expected, "{differ:?}");
        }
    }

    #[test]
    fn names_off_the_list_match_as_the_publicsuffix_crate_does() {
        use crate::synth::SplitMix64;
        let crate_list: List = PUBLIC_SUFFIX_LIST.parse().expect("parses");
        let ours_list = PublicSuffixes::parse(PUBLIC_SUFFIX_LIST, true).expect("parses");
        let tails = [
            "com",
            "co.uk",
            "uk",
            "ck",
            "www.ck",
            "kawasaki.jp",
            "city.kawasaki.jp",
            "jp",
            "blogspot.com",
            "github.io",
            "compute-1.amazonaws.com",
            "s3.amazonaws.com",
            "sea",
            "xn--p1ai",
            "arpa",
            "in-addr.arpa",
        ];
        let mut rng = SplitMix64::new(3);
        for _ in 0..20_000 {
            let tail = tails[rng.next_u64() as usize % tails.len()];
            let mut name = tail.to_owned();
            for _ in 0..rng.next_u64() % 4 {
                let label: String = (0..1 + rng.next_u64() % 8)
                    .map(|_| char::from(b'a' + (rng.next_u64() % 26) as u8))
                    .collect();
                name = format!("{label}.{name}");
            }
            assert_eq!(
                ours(&ours_list, &name),
                reference(&crate_list, &name),
                "{name}"
            );
        }
    }
}
