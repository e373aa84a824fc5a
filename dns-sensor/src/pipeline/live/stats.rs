//! The stats line a live run logs every `stats_every`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::queue::QueueCounters;
use crate::capture::xdp::Counters;

pub(super) fn log_stats(queues: &[Arc<QueueCounters>], kernel: Option<Counters>, domains: usize) {
    use std::fmt::Write as _;
    let mut line = String::from("stats:");
    for (i, q) in queues.iter().enumerate() {
        let _ = write!(
            line,
            " q{i} frames={} rx_dropped={} rx_ring_full={} fill_empty={};",
            q.frames.load(Ordering::Relaxed),
            q.rx_dropped.load(Ordering::Relaxed),
            q.rx_ring_full.load(Ordering::Relaxed),
            q.fill_ring_empty.load(Ordering::Relaxed),
        );
    }
    if let Some(k) = kernel {
        let _ = write!(
            line,
            " xdp seen={} redirected={} not_dns={} redirect_failed={} too_short={} fragments={};",
            k.seen, k.redirected, k.not_dns, k.redirect_failed, k.too_short, k.fragments
        );
    }
    let _ = write!(line, " domains tracked={domains};");
    if let Some(rss) = resident_kib() {
        let _ = write!(line, " rss={} MiB", rss / 1024);
    }
    log::info!("{line}");
}

/// Resident memory of this process, from /proc/self/status.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read() {
        assert!(resident_kib().is_some_and(|k| k > 0));
    }
}
