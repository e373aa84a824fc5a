//! A live run's news for systemd, through its notify socket (`Type=notify` units;
//! outside systemd, `NOTIFY_SOCKET` is unset and nothing is sent):
//!
//! - `READY=1` once the XDP program is attached and every socket bound, with the
//!   first `STATUS=`;
//! - `STATUS=` refreshed with every beat (frames/s, ring drops, domains, alerts);
//! - `WATCHDOG=1` from the coordinator's loop while every worker makes progress, a
//!   third of `WatchdogSec=` apart, so a stuck pipeline is killed and restarted;
//! - `EXTEND_TIMEOUT_USEC=` and `STATUS=` while start-up waits for the interface, so
//!   `TimeoutStartSec=` does not fail a NIC that comes up late;
//! - `STOPPING=1` on SIGTERM.

use std::time::Duration;

use dns_sensor::pipeline::live::Supervisor;
use sd_notify::NotifyState;

/// Talks to systemd's notify socket.
pub(crate) struct Systemd {
    /// `WatchdogSec=` of the unit, when it has one.
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Reads the watchdog settings systemd passed (`WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub(crate) fn from_env() -> Self {
        Self {
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    fn notify(&self, states: &[NotifyState<'_>]) {
        // A lost notification is retried by the next beat; nothing else to do.
        if let Err(e) = sd_notify::notify(states) {
            log::debug!("sd_notify: {e}");
        }
    }
}

/// What `EXTEND_TIMEOUT_USEC` grants per message while start-up waits: several of the
/// once-a-second messages may be lost before the start times out.
const WAIT_EXTENSION_USEC: u32 = 10_000_000;

impl Supervisor for Systemd {
    fn ready(&self, status: &str) {
        self.notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    fn status(&self, status: &str) {
        self.notify(&[NotifyState::Status(status)]);
    }

    fn alive(&self) {
        self.notify(&[NotifyState::Watchdog]);
    }

    fn waiting(&self, status: &str) {
        self.notify(&[
            NotifyState::Status(status),
            NotifyState::ExtendTimeoutUsec(WAIT_EXTENSION_USEC),
            NotifyState::Watchdog,
        ]);
    }

    fn stopping(&self) {
        self.notify(&[NotifyState::Stopping]);
    }

    fn beat_every(&self) -> Duration {
        self.watchdog.map_or(Duration::from_secs(10), |w| {
            (w / 3).max(Duration::from_millis(100))
        })
    }
}
