//! IPv4 fragment reassembly, bounded in datagrams and bytes.
