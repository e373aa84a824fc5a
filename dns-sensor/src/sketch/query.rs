//! The query message as the counts take it.

use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64;

/// One query: its question's name and what else the counts read from the message.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The canonical name asked.
    pub name: &'a [u8],
    /// Where `name`'s labels start, if the parser knew (it saves finding the dots again).
    pub label_starts: Option<&'a [u8]>,
    /// `name`'s XXH3-64 hash, which the worker computes once for the verdict cache and
    /// the counts.
    pub hash: u64,
    /// Who asked.
    pub client: IpAddr,
    /// The question's type.
    pub qtype: u16,
    /// The message's size in bytes.
    pub size: u32,
}

impl<'a> Query<'a> {
    /// A query for `name`, hashed here, its labels left to be found.
    pub fn new(name: &'a [u8], client: IpAddr, qtype: u16, size: u32) -> Self {
        Self {
            name,
            label_starts: None,
            hash: xxh3_64(name),
            client,
            qtype,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_query_hashes_its_name_as_the_sets_do() {
        let query = Query::new(b"a.pirate.sea", IpAddr::from([10, 0, 0, 1]), 16, 60);
        assert_eq!(query.hash, xxh3_64(b"a.pirate.sea"));
        assert_ne!(query.hash, xxh3_64(b"b.pirate.sea"));
        assert_eq!(query.label_starts, None);
    }
}
