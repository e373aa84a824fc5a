//! Whitelist entries as written (settings, files): normalised, checked, read.

use crate::files::shown;
use std::path::Path;

use super::DomainError;

/// Most labels a whitelist entry may have: DNS allows 127 in 255 bytes.
const MAX_ENTRY_LABELS: usize = 127;

/// Normalises a whitelist entry: lower-case, no trailing dot, no leading `*.` or `.`.
/// Entries are written as text, so escapes, non-ASCII (write IDNs as `xn--`) and
/// spaces are refused rather than guessed at.
pub(super) fn normalise_entry(entry: &str) -> Result<String, &'static str> {
    let mut e = entry.trim();
    e = e.strip_suffix('.').unwrap_or(e);
    e = e
        .strip_prefix("*.")
        .or_else(|| e.strip_prefix('.'))
        .unwrap_or(e);
    if e.is_empty() {
        return Err("empty");
    }
    if !e.is_ascii() {
        return Err("not ASCII (write internationalised names in their xn-- form)");
    }
    if e.len() > 253 {
        return Err("longer than 253 characters");
    }
    let mut labels = 0;
    for label in e.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if label
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'\\' || b == b'*')
        {
            return Err("contains a space, control character, '\\' or '*'");
        }
    }
    if labels > MAX_ENTRY_LABELS {
        return Err("too many labels");
    }
    Ok(e.to_ascii_lowercase())
}

/// Reads a whitelist file: one domain per line, `#` starts a comment, blank lines ignored.
/// Errors name the file and line.
pub fn read_whitelist_file(path: &Path) -> Result<Vec<String>, DomainError> {
    let text = crate::files::read_text_limited(path, crate::files::MAX_WHITELIST_BYTES).map_err(
        |source| DomainError::Io {
            path: shown(path),
            source,
        },
    )?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        // Normalised here only to report the file and line; the classifier
        // normalises again (entries from the config file go through it too).
        if let Err(why) = normalise_entry(entry) {
            return Err(DomainError::BadEntry {
                origin: format!("{}:{}", shown(path), i + 1),
                entry: entry.to_string(),
                why,
            });
        }
        entries.push(entry.to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Classifier, DomainSettings};

    #[test]
    fn bad_whitelist_entries() {
        for bad in [
            "",
            ".",
            "*.",
            "a..b",
            "a b.com",
            "ex\\.com",
            "a.*.com",
            "münchen.de",
        ] {
            let e = Classifier::new(&DomainSettings {
                include_private: true,
                whitelist: vec![bad.to_string()],
            })
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
            match e {
                DomainError::BadEntry { origin, entry, .. } => {
                    assert_eq!(origin, "config");
                    assert_eq!(entry, bad);
                }
                other => panic!("{other}"),
            }
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(normalise_entry(&long_label).is_err());
        assert_eq!(
            normalise_entry(" WWW.Example.com. ").unwrap(),
            "www.example.com"
        );
    }

    #[test]
    fn whitelist_file() {
        let dir = std::env::temp_dir().join(format!("dns-sensor-wl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(
            &good,
            "# trusted\n\namazonaws.com   # cloud\n  *.Example.org.\n\t\n",
        )
        .unwrap();
        assert_eq!(
            read_whitelist_file(&good).unwrap(),
            ["amazonaws.com", "*.Example.org."]
        );
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "ok.com\n# fine\nbad..com # oops\n").unwrap();
        let err = read_whitelist_file(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:3: ", bad.display())), "{err}");
        assert!(err.contains("bad..com"), "{err}");
        let missing = dir.join("missing.txt");
        let err = read_whitelist_file(&missing).unwrap_err();
        assert!(matches!(err, DomainError::Io { .. }));
        assert!(err.to_string().starts_with(&missing.display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
