//! Domain: from a query name to the registered domain (eTLD+1) it is counted under,
//! using the Public Suffix List embedded in the binary, and the whitelist.

use std::path::Path;

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
}

/// Maps canonical names (see [`crate::decode::Name`]) to registered domains.
pub struct Classifier {}

impl Classifier {
    /// Builds the classifier from the embedded list and the settings.
    pub fn new(settings: &DomainSettings) -> Result<Self, DomainError> {
        let _ = settings;
        todo!()
    }

    /// Classifies one canonical name. Allocates nothing.
    pub fn classify<'n>(&self, name: &'n [u8]) -> Verdict<'n> {
        let _ = name;
        todo!()
    }
}

/// Reads a whitelist file: one domain per line, `#` starts a comment, blank lines ignored.
/// Errors name the file and line.
pub fn read_whitelist_file(path: &Path) -> Result<Vec<String>, DomainError> {
    let _ = path;
    todo!()
}
