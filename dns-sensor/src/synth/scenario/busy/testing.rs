//! Reading a busy network's frames back, for the services' tests: each query with its
//! response, through the sensor's own decoder.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::decode::{parse_question, DecodeSettings, Decoder, Name};
use crate::synth::scenario::Traffic;
use crate::Nanos;

/// One query as the sensor sees it, and its response if one came.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// When the query was sent.
    pub ts: Nanos,
    /// Who asked.
    pub client: IpAddr,
    /// Whom.
    pub resolver: IpAddr,
    /// The name, canonical (lower case, escaped).
    pub name: String,
    /// Its type.
    pub qtype: u16,
    /// Size of the query message.
    pub query_len: usize,
    /// The response's RCODE, if it came.
    pub rcode: Option<u8>,
    /// Its answer count.
    pub answers: u16,
    /// Its size.
    pub response_len: Option<usize>,
    /// Its delay after the query.
    pub answered_after: Option<Nanos>,
}

/// Every query of `frames` (sorted by time) in order, with its response.
pub fn exchanges(frames: &[(Nanos, Vec<u8>)]) -> Vec<Exchange> {
    let mut decoder = Decoder::new(DecodeSettings::default());
    let mut name = Name::new();
    let mut out: Vec<Exchange> = Vec::new();
    let mut pending: HashMap<(IpAddr, u16, u16), usize> = HashMap::new();
    for frame in Traffic::frames_of(frames) {
        decoder.decode(&frame, |packet| {
            let question =
                parse_question(packet.message, &mut name).expect("a well-formed message");
            let text = String::from_utf8_lossy(name.as_bytes()).into_owned();
            if question.is_response {
                let key = (packet.dst, packet.dst_port, question.id);
                let at = pending
                    .remove(&key)
                    .expect("a response to a query sent before");
                let asked = &mut out[at];
                assert_eq!(asked.name, text, "the response repeats the question");
                asked.rcode = Some(question.rcode);
                asked.answers = u16::from_be_bytes([packet.message[6], packet.message[7]]);
                asked.response_len = Some(packet.message.len());
                asked.answered_after = Some(packet.ts - asked.ts);
            } else {
                pending.insert((packet.src, packet.src_port, question.id), out.len());
                out.push(Exchange {
                    ts: packet.ts,
                    client: packet.src,
                    resolver: packet.dst,
                    name: text,
                    qtype: question.qtype,
                    query_len: packet.message.len(),
                    rcode: None,
                    answers: 0,
                    response_len: None,
                    answered_after: None,
                });
            }
        });
    }
    out
}

/// The exchanges whose name ends with `.suffix`.
pub fn under<'e>(all: &'e [Exchange], suffix: &str) -> Vec<&'e Exchange> {
    let dotted = format!(".{suffix}");
    all.iter().filter(|e| e.name.ends_with(&dotted)).collect()
}
