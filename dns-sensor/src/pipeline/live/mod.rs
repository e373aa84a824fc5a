//! Live capture: the XDP program and one AF_XDP socket per receive queue feed one
//! [`Worker`] each (a thread per queue, pinned to a core), and the [`Coordinator`] of the
//! replay path merges their slots. Live and replay differ only in where frames come from
//! and which clock cuts the slots: here the arrival clock, which also closes slots when
//! no frame arrives.
//!
//! Needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN for
//! both) and CAP_IPC_LOCK (or an unlimited RLIMIT_MEMLOCK); [`run`] names the missing
//! ones before touching anything.

use crate::files::shown;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    alert::Sink,
    capture::{
        afxdp::{self, AfXdpError, AfXdpSettings, OpenAllError, QueueSocket, RingStats},
        xdp::{self, AttachMode, Counters, XdpError, XdpProgram, XdpSettings},
    },
    domain::Classifier,
    pipeline::{
        state::{self, StateWriter},
        Coordinator, PipelineError, ReadSettings, Reload, RunSummary, Settings, ToCoordinator,
        WindowGauges, Worker, WorkerSettings, WorkerUpdates,
    },
};

mod metrics;
mod queue;
mod signals;
mod stats;
mod supervisor;

pub use metrics::{MetricsServer, MetricsSources};
use queue::queue_loop;
pub use queue::QueueCounters;
pub use signals::{reload_on_hangup, stop_on_signals};
use stats::{log_stats, Losses};
pub use supervisor::{Supervisor, Unsupervised};

/// Live-only settings (the rule, decoding and domains come from [`Settings`]).
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// The interface to watch.
    pub interface: String,
    /// The XDP program: ports, mirror or inline, attach mode.
    pub xdp: XdpSettings,
    /// Ring and UMEM sizes, zero-copy policy.
    pub afxdp: AfXdpSettings,
    /// Queues to open (default: all the interface's rx queues).
    pub queues: Option<u32>,
    /// How often the stats line is logged.
    pub stats_every: Duration,
    /// Pin queue `n`'s worker to core `n % cores`.
    pub pin: bool,
    /// Where to serve the Prometheus endpoint (none: nowhere).
    pub metrics: Option<std::net::SocketAddr>,
    /// Where the window is kept across restarts (none: nowhere).
    pub state_directory: Option<std::path::PathBuf>,
    /// Where closed slots are shipped for the fleet's rule (none: nowhere).
    pub fleet: Option<crate::fleet::FleetSettings>,
}

impl LiveSettings {
    /// Defaults for `interface`: port 53, mirror mode, native-then-generic, every queue,
    /// a stats line every minute, pinned workers.
    pub fn new(interface: &str) -> Self {
        Self {
            interface: interface.to_owned(),
            xdp: XdpSettings::default(),
            afxdp: AfXdpSettings::default(),
            queues: None,
            stats_every: Duration::from_secs(60),
            pin: true,
            metrics: None,
            state_directory: None,
            fleet: None,
        }
    }
}

/// What stops a live run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Interface, capabilities, program load or attach.
    #[error(transparent)]
    Xdp(#[from] XdpError),
    /// An AF_XDP socket could not be opened or read.
    #[error(transparent)]
    Socket(#[from] AfXdpError),
    /// The pipeline failed (domain list, alert delivery).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A thread could not be started or died.
    #[error("thread {0}: could not start or panicked")]
    Thread(String),
    /// The state directory cannot be used.
    #[error("state_directory {path}: {source}")]
    State {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics endpoint could not listen.
    #[error("metrics: cannot listen on {address}: {source}")]
    Metrics {
        /// Where it was to listen.
        address: std::net::SocketAddr,
        /// Why it cannot.
        source: std::io::Error,
    },
}

impl LiveError {
    /// Whether the error is a start-up condition the operator fixes (missing or down
    /// interface, capabilities, another XDP program, bad sizes): exit status 2.
    pub fn is_start_up(&self) -> bool {
        matches!(
            self,
            LiveError::Xdp(
                XdpError::InterfaceMissing(_)
                    | XdpError::InterfaceDown(_)
                    | XdpError::MissingCapabilities(_)
                    | XdpError::AlreadyAttached(_)
                    | XdpError::BadName(_)
                    | XdpError::QueueOutOfRange(_)
            ) | LiveError::Socket(AfXdpError::BadSettings(_))
                | LiveError::Pipeline(PipelineError::Domain(_))
                | LiveError::Metrics { .. }
                | LiveError::State { .. }
        )
    }
}

impl From<OpenAllError> for LiveError {
    fn from(e: OpenAllError) -> Self {
        match e {
            OpenAllError::Socket(e) => LiveError::Socket(e),
            OpenAllError::Register(e) => LiveError::Xdp(e),
        }
    }
}

/// A finished live run.
#[derive(Debug)]
pub struct LiveReport {
    /// Totals of the pipeline.
    pub summary: RunSummary,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The XDP program's counters at the end.
    pub kernel: Counters,
    /// Per queue: frames and ring drops at the end.
    pub queues: Vec<(u64, RingStats)>,
    /// How the program was attached.
    pub attach: AttachMode,
    /// Whether the sockets are zero-copy.
    pub zero_copy: bool,
}

/// How a live run is steered and watched from outside.
#[derive(Clone)]
pub struct Control<'a> {
    /// Set to stop the run (SIGINT, SIGTERM: [`stop_on_signals`]).
    pub stop: &'a AtomicBool,
    /// Set to reload (SIGHUP: [`reload_on_hangup`]): the settings are read again with
    /// `reload`, and the outputs reopen their files even when that fails.
    pub hangup: Option<&'static AtomicBool>,
    /// Reads the settings again for a reload (none: a hangup only reopens the outputs).
    pub reload: Option<Arc<ReadSettings>>,
    /// Told when the run is ready, how it goes, that it is alive, that it stops.
    pub supervisor: Arc<dyn Supervisor>,
}

impl<'a> Control<'a> {
    /// Stopped by `stop` only, watched by nobody.
    pub fn stop_only(stop: &'a AtomicBool) -> Self {
        Self {
            stop,
            hangup: None,
            reload: None,
            supervisor: Arc::new(Unsupervised),
        }
    }
}

/// How often a waiting start-up reminds the log that it still waits.
const WAIT_REMINDER: Duration = Duration::from_secs(600);

/// Waits until `interface` exists and is up (a NIC that comes up late at boot), telling
/// `control.supervisor` about once a second, with a log line when the wait starts, every
/// ten minutes while it lasts and when it ends. `None` when stopped while waiting; any
/// other problem with the interface is an error at once.
pub fn wait_for_interface(
    interface: &str,
    control: &Control<'_>,
) -> Result<Option<xdp::InterfaceInfo>, XdpError> {
    let started = Instant::now();
    let mut next_reminder: Option<Instant> = None;
    loop {
        match xdp::check_interface(interface) {
            Ok(info) => {
                if next_reminder.is_some() {
                    log::info!(
                        "interface {interface} is up after {} s of waiting",
                        started.elapsed().as_secs()
                    );
                }
                return Ok(Some(info));
            }
            Err(e @ (XdpError::InterfaceMissing(_) | XdpError::InterfaceDown(_))) => {
                let now = Instant::now();
                match next_reminder {
                    None => log::warn!("{e}: waiting for it"),
                    Some(at) if now >= at => log::warn!(
                        "{e}: still waiting for it after {} min",
                        started.elapsed().as_secs() / 60
                    ),
                    Some(_) => {}
                }
                if next_reminder.is_none_or(|at| now >= at) {
                    next_reminder = Some(now + WAIT_REMINDER);
                }
                control
                    .supervisor
                    .waiting(&format!("waiting for interface {interface}: {e}"));
            }
            Err(e) => return Err(e),
        }
        for _ in 0..10 {
            if control.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Watches `live.interface` until `control.stop` is set, sending alerts to `sinks`. Logs
/// a stats line every `live.stats_every`, tells `control.supervisor` once it watches and
/// beats it from the coordinator's loop. Detaches the program and frees the rings on
/// return.
pub fn run(
    settings: &Settings,
    live: &LiveSettings,
    sinks: Vec<Box<dyn Sink>>,
    control: &Control<'_>,
) -> Result<LiveReport, LiveError> {
    let stop = control.stop;
    let started = Instant::now();
    let info = xdp::check_interface(&live.interface)?;
    xdp::check_capabilities()?;
    let queues = live.queues.unwrap_or(info.rx_queues).max(1);
    let classifier = Arc::new(Classifier::new(&settings.domain).map_err(PipelineError::from)?);
    let gauges = Arc::new(WindowGauges::default());
    let state = match &live.state_directory {
        Some(dir) => Some(StateWriter::start(dir, Some(Arc::clone(&gauges))).map_err(
            |source| LiveError::State {
                path: shown(dir),
                source,
            },
        )?),
        None => None,
    };

    let mut program = XdpProgram::load(&live.xdp)?;
    let attach = program.attach(&live.interface, live.xdp.attach)?;
    let sockets = afxdp::open_all(&live.interface, queues, &live.afxdp, &mut program)?;
    let zero_copy = sockets.iter().any(QueueSocket::is_zero_copy);
    log::info!(
        "watching {} ({} rx queues, XDP {:?}, {} mode, AF_XDP {}, ports {:?})",
        live.interface,
        queues,
        attach,
        match live.xdp.capture {
            xdp::CaptureMode::Mirror => "mirror",
            xdp::CaptureMode::Inline => "inline",
        },
        if zero_copy { "zero-copy" } else { "copy" },
        live.xdp.ports
    );

    let (to_coordinator, from_workers) = crossbeam_channel::bounded(64 * queues as usize);
    let counters: Vec<Arc<QueueCounters>> = (0..sockets.len()).map(|_| Arc::default()).collect();
    let kernel_counters = Arc::new(std::sync::Mutex::new(program.counters().ok()));
    let metrics = match live.metrics {
        Some(address) => {
            let sources = MetricsSources {
                queues: counters.clone(),
                kernel: Arc::clone(&kernel_counters),
                window: Arc::clone(&gauges),
            };
            let server = MetricsServer::start(address, sources)
                .map_err(|source| LiveError::Metrics { address, source })?;
            log::info!("metrics at http://{}/metrics", server.address());
            if !address.ip().is_loopback() {
                log::warn!(
                    "metrics listen on {address}, not a loopback address: whoever reaches \
                     it reads the sensor's figures"
                );
            }
            Some(server)
        }
        None => None,
    };
    let mut coordinator = Coordinator::new(&settings.rule, sockets.len(), sinks)
        .with_gauges(Arc::clone(&gauges))
        .with_heartbeat(supervisor::heartbeat(
            Arc::clone(&control.supervisor),
            counters.clone(),
            started,
            live.interface.clone(),
        ));
    if let (Some(dir), Some(state)) = (&live.state_directory, state) {
        let now = crate::clock::arrival_now();
        if let Some(restored) = state::restore(dir, &settings.rule, &settings.sketch, Some(now)) {
            coordinator = coordinator.with_restored(restored);
        }
        coordinator = coordinator.with_state(state);
    }
    if let Some(fleet) = &live.fleet {
        let shipper = crate::fleet::SlotShipper::start(fleet, live.state_directory.as_deref())
            .map_err(PipelineError::Fleet)?;
        coordinator = coordinator.with_fleet(shipper, fleet);
    }
    let coordinating = thread::Builder::new()
        .name("dns-sensor-coordinator".into())
        .spawn(move || coordinator.run(from_workers))
        .map_err(|_| LiveError::Thread("coordinator".into()))?;

    let updates = Arc::new(WorkerUpdates::default());
    let workers_stop = Arc::new(AtomicBool::new(false));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let shared = Arc::clone(&counters[i]);
        let worker = Worker::new(i, settings, Arc::clone(&classifier), to_coordinator.clone())
            .with_updates(Arc::clone(&updates));
        let stop = Arc::clone(&workers_stop);
        let pin = live.pin.then_some(i % cores);
        let name = format!("dns-sensor-q{}", socket.queue());
        let handle = thread::Builder::new()
            .name(name.clone())
            .spawn(move || queue_loop(socket, worker, &shared, &stop, pin, started))
            .map_err(|_| LiveError::Thread(name))?;
        handles.push(handle);
    }
    control.supervisor.ready(&supervisor::status_line(
        &live.interface,
        0.0,
        &counters,
        &Default::default(),
        &[],
    ));

    let mut next_stats = Instant::now() + live.stats_every;
    let mut next_kernel_read = Instant::now() + Duration::from_secs(1);
    let mut losses = Losses::default();
    let mut running = settings.clone();
    while !stop.load(Ordering::Relaxed) && !workers_stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
        if control
            .hangup
            .is_some_and(|flag| flag.swap(false, Ordering::Relaxed))
        {
            let reload = control.reload.as_deref();
            let told = reload_settings(reload, handles.len(), &mut running, &updates);
            // The coordinator is gone only once the run is over.
            let _ = to_coordinator.send(told);
        }
        if metrics.is_some() && Instant::now() >= next_kernel_read {
            next_kernel_read += Duration::from_secs(1);
            *kernel_counters.lock().unwrap_or_else(|e| e.into_inner()) = program.counters().ok();
        }
        if Instant::now() >= next_stats {
            next_stats += live.stats_every;
            let kernel = program.counters().ok();
            losses.warn_if_rising(&counters, kernel.as_ref());
            log_stats(&counters, kernel, &gauges);
        }
    }

    control.supervisor.stopping();
    workers_stop.store(true, Ordering::Relaxed);
    let mut first_error = None;
    let mut queue_totals = Vec::new();
    for (handle, shared) in handles.into_iter().zip(&counters) {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(LiveError::Socket(e));
            }
            Err(_) => {
                first_error.get_or_insert(LiveError::Thread("worker".into()));
            }
        }
        queue_totals.push((
            shared.frames.load(Ordering::Relaxed),
            RingStats {
                rx_dropped: shared.rx_dropped.load(Ordering::Relaxed),
                rx_ring_full: shared.rx_ring_full.load(Ordering::Relaxed),
                fill_ring_empty: shared.fill_ring_empty.load(Ordering::Relaxed),
                rx_invalid_descs: 0,
            },
        ));
    }
    // The workers' senders are gone with them: the coordinator ends with this one.
    drop(to_coordinator);
    let summary = coordinating
        .join()
        .map_err(|_| LiveError::Thread("coordinator".into()))??;
    let kernel = program.counters().unwrap_or_default();
    drop(metrics);
    // Dropping the program detaches it (its bpf_link goes with it).
    drop(program);
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(LiveReport {
        summary,
        elapsed: started.elapsed(),
        kernel,
        queues: queue_totals,
        attach,
        zero_copy,
    })
}

/// What a hangup tells the coordinator: new settings, read with `reload`, and for the
/// workers left in `updates`; or, when there is no `reload` or it fails (logged, the
/// running settings stay), only to reopen the outputs' files.
fn reload_settings(
    reload: Option<&ReadSettings>,
    workers: usize,
    running: &mut Settings,
    updates: &WorkerUpdates,
) -> ToCoordinator {
    let Some(reload) = reload else {
        return ToCoordinator::ReopenOutputs;
    };
    let read = reload(workers).and_then(|(settings, sinks)| {
        let classifier = Classifier::new(&settings.domain)?;
        Ok((settings, sinks, classifier))
    });
    let (settings, sinks, classifier) = match read {
        Ok(read) => read,
        Err(e) => {
            log::error!("reload: {e}; the running settings stay");
            return ToCoordinator::ReopenOutputs;
        }
    };
    if settings.decode.ports != running.decode.ports {
        // The kernel program filters on the ports it was loaded with.
        log::warn!(
            "reload: ports {:?} -> {:?} takes a restart; still watching {:?}",
            running.decode.ports,
            settings.decode.ports,
            running.decode.ports
        );
    }
    updates.publish(WorkerSettings::new(&settings, Arc::new(classifier)));
    let rule = settings.rule.clone();
    *running = Settings {
        decode: running.decode.clone(),
        ..settings
    };
    ToCoordinator::Reload(Box::new(Reload { rule, sinks }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_errors_are_classified_for_exit_status_2() {
        assert!(LiveError::Xdp(XdpError::InterfaceMissing("x".into())).is_start_up());
        assert!(LiveError::Xdp(XdpError::AlreadyAttached("x".into())).is_start_up());
        assert!(!LiveError::Thread("w".into()).is_start_up());
    }

    #[test]
    fn missing_interface_fails_before_anything_is_loaded() {
        let stop = AtomicBool::new(true);
        let settings = crate::config::Config::default()
            .settings()
            .expect("defaults");
        let err = run(
            &settings,
            &LiveSettings::new("dnss-none1"),
            Vec::new(),
            &Control::stop_only(&stop),
        )
        .expect_err("no such interface");
        assert!(err.is_start_up(), "{err:?}");
        assert!(
            err.to_string().contains("dnss-none1 does not exist"),
            "{err}"
        );
    }
}
