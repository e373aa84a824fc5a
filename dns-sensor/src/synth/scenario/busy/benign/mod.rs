//! The busy benign services of a network of a few thousand endpoints: each collects
//! hundreds or thousands of names a day doing its job, which is what makes a rule that
//! counts names cry wolf. Each module follows its service's public documentation (named
//! in its doc) and labels the registered domains it fills as benign.

mod acme;
mod adtech;
mod cdn;
mod directory;
mod mail;
mod ptr;
mod reputation;
mod storage;

use super::{Network, Reply, Truth};

/// Every benign service over the whole window, in a fixed order (the choices of each
/// depend on those before it).
pub(super) fn all(net: &mut Network) {
    mail::blocklists(net);
    reputation::reputation(net);
    cdn::cdn(net);
    adtech::adtech(net);
    storage::storage(net);
    directory::directory(net);
    ptr::ptr_sweeps(net);
    acme::acme(net);
}
