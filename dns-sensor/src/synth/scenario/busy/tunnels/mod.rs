//! The tunnels: generated ones shaped like the classic tools, Cobalt Strike's DNS
//! beacons, dnstt and an exfiltration channel over A queries, loud (thousands of names
//! in an hour or a few) and quiet (low and slow, under the reference threshold); and the
//! real captures of `../shared/captures/` spliced in as they were recorded. Each module
//! names the documentation or capture its shapes follow, and labels its registered
//! domains as tunnels.

mod beacons;
mod captures;
mod dnstt;
mod exfil;
mod shape;
mod tools;

pub(super) use captures::spliced;

use super::{Network, Reply, Truth};

/// Every generated tunnel over the window, in a fixed order (the choices of each
/// depend on those before it).
pub(super) fn generated(net: &mut Network) {
    tools::tools(net);
    beacons::beacons(net);
    dnstt::dnstt(net);
    exfil::exfil(net);
}
