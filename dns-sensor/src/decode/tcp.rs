//! DNS over TCP: per-flow stream reassembly of length-prefixed messages, bounded in
//! flows and bytes.
