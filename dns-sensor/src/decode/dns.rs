//! The DNS header and first question, parsed without allocating.

/// Longest name [`Name`] holds: 255 wire bytes, with room for escaping `.` and `\`
/// inside labels.
pub const MAX_NAME_LEN: usize = 512;

/// A query name in the sensor's canonical form: labels joined by `.`, no trailing dot,
/// `A`-`Z` lower-cased (RFC 4343, nothing else), every other byte kept raw except that
/// `.` and `\` inside a label are written `\.` and `\\` so that label boundaries stay
/// unambiguous. The root name is empty.
pub struct Name {
    buf: [u8; MAX_NAME_LEN],
    len: usize,
}

impl Name {
    /// An empty name, ready to be filled by [`parse_question`].
    pub fn new() -> Self {
        Self {
            buf: [0; MAX_NAME_LEN],
            len: 0,
        }
    }

    /// The canonical bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Name {
    fn default() -> Self {
        Self::new()
    }
}

/// The header fields and first question of a DNS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    /// Transaction id.
    pub id: u16,
    /// QR bit: false for a query, true for a response.
    pub is_response: bool,
    /// Header opcode (0 = QUERY).
    pub opcode: u8,
    /// Header response code (low 4 bits).
    pub rcode: u8,
    /// Question count claimed by the header.
    pub qdcount: u16,
    /// QTYPE of the first question.
    pub qtype: u16,
    /// QCLASS of the first question.
    pub qclass: u16,
}

/// Why a message was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the 12-byte header.
    #[error("shorter than a DNS header")]
    ShortHeader,
    /// The header claims no question.
    #[error("no question")]
    NoQuestion,
    /// A label or the question runs past the end of the message.
    #[error("question runs past the end of the message")]
    Truncated,
    /// A compression pointer points at or after itself, or loops.
    #[error("bad compression pointer")]
    BadPointer,
    /// A label type other than a plain label or a pointer (0x40, 0x80).
    #[error("unsupported label type")]
    BadLabel,
    /// The name is longer than 255 bytes on the wire.
    #[error("name longer than 255 bytes")]
    NameTooLong,
}

/// Parses the header and the first question of `message`, writing the question's name
/// into `name` in canonical form.
pub fn parse_question(message: &[u8], name: &mut Name) -> Result<Question, DnsError> {
    let _ = (message, name);
    todo!()
}
