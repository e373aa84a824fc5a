//! The stats line a live run logs every `stats_every`, and a warning when frames were
//! lost since the last one (a full ring: the worker is too slow; a failed redirect: no
//! socket for a queue), so `journalctl -p warning` shows the loss.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::queue::QueueCounters;
use crate::capture::xdp::Counters;
use crate::pipeline::WindowGauges;

/// Losses at the last stats line, to tell rising ones.
#[derive(Debug, Default)]
pub(super) struct Losses {
    per_queue: Vec<u64>,
    redirect_failed: u64,
}

impl Losses {
    /// Warns about every loss that grew since the last call, and remembers them.
    pub(super) fn warn_if_rising(
        &mut self,
        queues: &[Arc<QueueCounters>],
        kernel: Option<&Counters>,
    ) {
        self.per_queue.resize(queues.len(), 0);
        for (i, q) in queues.iter().enumerate() {
            let dropped =
                q.rx_dropped.load(Ordering::Relaxed) + q.rx_ring_full.load(Ordering::Relaxed);
            if dropped > self.per_queue[i] {
                log::warn!(
                    "queue {i}: {} frames dropped by the kernel since the last stats line \
                     ({dropped} in all): the ring was full or a frame did not fit",
                    dropped - self.per_queue[i]
                );
            }
            self.per_queue[i] = dropped;
        }
        if let Some(k) = kernel {
            if k.redirect_failed > self.redirect_failed {
                log::warn!(
                    "XDP: {} DNS frames could not be redirected to a socket since the last \
                     stats line ({} in all): they arrived on a receive queue with no socket \
                     (the interface has more queues than were opened: --queues, or \
                     `ethtool -l`)",
                    k.redirect_failed - self.redirect_failed,
                    k.redirect_failed
                );
            }
            self.redirect_failed = k.redirect_failed;
        }
    }
}

/// The stats line: per queue its frames and ring drops, the kernel program's counters,
/// the window's domains and what it lost (records shed, domains evicted, shards too
/// late for it), and the resident memory.
pub(super) struct StatsLine<'a> {
    pub(super) queues: &'a [Arc<QueueCounters>],
    pub(super) kernel: Option<Counters>,
    pub(super) window: &'a WindowGauges,
    pub(super) rss_kib: Option<u64>,
}

impl std::fmt::Display for StatsLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stats:")?;
        for (i, q) in self.queues.iter().enumerate() {
            write!(
                f,
                " q{i} frames={} rx_dropped={} rx_ring_full={} fill_empty={};",
                q.frames.load(Ordering::Relaxed),
                q.rx_dropped.load(Ordering::Relaxed),
                q.rx_ring_full.load(Ordering::Relaxed),
                q.fill_ring_empty.load(Ordering::Relaxed),
            )?;
        }
        if let Some(k) = &self.kernel {
            write!(
                f,
                " xdp seen={} redirected={} not_dns={} redirect_failed={} too_short={} \
                 fragments={};",
                k.seen, k.redirected, k.not_dns, k.redirect_failed, k.too_short, k.fragments
            )?;
        }
        let w = self.window;
        write!(
            f,
            " domains tracked={} shed_records={} evicted_domains={} late_shards={};",
            w.domains.load(Ordering::Relaxed),
            w.shed_records.load(Ordering::Relaxed),
            w.evicted_domains.load(Ordering::Relaxed),
            w.late_shards.load(Ordering::Relaxed),
        )?;
        if let Some(rss) = self.rss_kib {
            write!(f, " rss={} MiB", rss / 1024)?;
        }
        Ok(())
    }
}

/// Logs the stats line.
pub(super) fn log_stats(
    queues: &[Arc<QueueCounters>],
    kernel: Option<Counters>,
    window: &WindowGauges,
) {
    let line = StatsLine {
        queues,
        kernel,
        window,
        rss_kib: resident_kib(),
    };
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
    fn losses_are_told_only_when_they_grow() {
        let queues: Vec<Arc<QueueCounters>> = (0..2).map(|_| Arc::default()).collect();
        let mut losses = Losses::default();
        losses.warn_if_rising(&queues, Some(&Counters::default()));
        assert_eq!(losses.per_queue, [0, 0]);
        queues[1].rx_ring_full.store(5, Ordering::Relaxed);
        queues[1].rx_dropped.store(2, Ordering::Relaxed);
        let kernel = Counters {
            redirect_failed: 3,
            ..Counters::default()
        };
        losses.warn_if_rising(&queues, Some(&kernel));
        assert_eq!(losses.per_queue, [0, 7]);
        assert_eq!(losses.redirect_failed, 3);
    }

    #[test]
    fn the_stats_line_names_every_figure() {
        let queues: Vec<Arc<QueueCounters>> = (0..2).map(|_| Arc::default()).collect();
        let window = WindowGauges::default();
        window.domains.store(7, Ordering::Relaxed);
        window.shed_records.store(11, Ordering::Relaxed);
        window.evicted_domains.store(5, Ordering::Relaxed);
        window.late_shards.store(1, Ordering::Relaxed);
        queues[1].frames.store(42, Ordering::Relaxed);
        queues[1].rx_ring_full.store(3, Ordering::Relaxed);
        let line = StatsLine {
            queues: &queues,
            kernel: Some(Counters {
                seen: 50,
                redirected: 45,
                ..Counters::default()
            }),
            window: &window,
            rss_kib: Some(20 * 1024),
        }
        .to_string();
        assert_eq!(
            line,
            "stats: q0 frames=0 rx_dropped=0 rx_ring_full=0 fill_empty=0; \
             q1 frames=42 rx_dropped=0 rx_ring_full=3 fill_empty=0; \
             xdp seen=50 redirected=45 not_dns=0 redirect_failed=0 too_short=0 fragments=0; \
             domains tracked=7 shed_records=11 evicted_domains=5 late_shards=1; rss=20 MiB"
        );
    }

    #[test]
    fn rss_is_read() {
        assert!(resident_kib().is_some_and(|k| k > 0));
    }
}
