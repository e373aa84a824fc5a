//! The live run's Prometheus endpoint (`[metrics] listen`): `GET /metrics` answers
//! with every counter the stats line and the summary show, read at the scrape from
//! where the queues, the kernel program and the coordinator publish them, in the
//! Prometheus text format (the `metrics` facade's exporter writes it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use super::queue::QueueCounters;
use crate::capture::xdp::Counters;
use crate::pipeline::{WindowGauges, WorkerStats};

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the figures are read from at each scrape.
#[derive(Debug)]
pub struct MetricsSources {
    /// Each queue's frames, ring drops and worker counters.
    pub queues: Vec<Arc<QueueCounters>>,
    /// The kernel program's counters, as the run last read them.
    pub kernel: Arc<Mutex<Option<Counters>>>,
    /// The window, the evaluations and the outputs, as the coordinator published them.
    pub window: Arc<WindowGauges>,
}

/// The endpoint, served by a thread of its own until dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    serving: Option<JoinHandle<()>>,
    address: SocketAddr,
}

impl MetricsServer {
    /// Listens on `listen` and serves `sources` at `/metrics`. The error is the bind's
    /// (address in use, not this host's, a port below 1024 without the capability).
    pub fn start(listen: SocketAddr, sources: MetricsSources) -> std::io::Result<Self> {
        let server = tiny_http::Server::http(listen).map_err(std::io::Error::other)?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let server = Arc::new(server);
        let exporter = Exporter::new();
        let serving = {
            let server = Arc::clone(&server);
            std::thread::Builder::new()
                .name("dns-sensor-metrics".into())
                .spawn(move || serve(&server, &exporter, &sources))?
        };
        Ok(Self {
            server,
            serving: Some(serving),
            address,
        })
    }

    /// The address it listens on (the port chosen, when `listen` asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(serving) = self.serving.take() {
            let _ = serving.join();
        }
    }
}

/// Answers requests until the server is unblocked: `/metrics` with the figures as
/// they are, anything else with 404.
fn serve(server: &tiny_http::Server, exporter: &Exporter, sources: &MetricsSources) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default();
        let response = match (request.method(), path) {
            (tiny_http::Method::Get, "/metrics") => {
                tiny_http::Response::from_string(exporter.render(sources)).with_header(
                    tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
                        .expect("a valid header"),
                )
            }
            _ => tiny_http::Response::from_string("only GET /metrics is served here\n")
                .with_status_code(404),
        };
        // A scraper that went away is its own business.
        let _ = request.respond(response);
    }
}

/// Every metric, its kind and its help text.
const METRICS: &[(&str, Kind, &str)] = &[
    ("frames_received_total", Kind::Counter, "Frames received from each queue's AF_XDP socket."),
    ("ring_drops_total", Kind::Counter, "Frames the kernel dropped for a queue: its RX ring was full (the worker was too slow), or for another reason (a frame larger than a UMEM frame)."),
    ("fill_ring_empty_total", Kind::Counter, "Times the kernel found a queue's fill ring empty."),
    ("xdp_frames_total", Kind::Counter, "Frames the XDP program ran on, by what it did with them."),
    ("xdp_too_short_total", Kind::Counter, "Frames ending inside a header the XDP program needed."),
    ("xdp_fragments_total", Kind::Counter, "IP non-first fragments the XDP program sent to user space."),
    ("dns_messages_total", Kind::Counter, "DNS messages counted, by kind."),
    ("malformed_total", Kind::Counter, "Frames or DNS messages that did not parse, by layer."),
    ("not_counted_total", Kind::Counter, "Frames and messages read and not counted, by why."),
    ("ip_fragments_total", Kind::Counter, "IP fragments received."),
    ("ip_reassembled_total", Kind::Counter, "Datagrams completed from fragments."),
    ("ip_fragments_dropped_total", Kind::Counter, "Fragments or partial datagrams dropped (table full, timeout, overlap, too large)."),
    ("tcp_bytes_dropped_total", Kind::Counter, "TCP bytes dropped (gap, buffer or flow table full, timeout)."),
    ("window_domains", Kind::Gauge, "Domains in the window (a domain in several slots counts once per slot)."),
    ("shed_records_total", Kind::Counter, "Records lost because their domain was shed or refused for lack of room."),
    ("evicted_domains_total", Kind::Counter, "Domains shed to make room (one per slot it was shed from)."),
    ("late_shards_total", Kind::Counter, "Slots dropped because they arrived after leaving the window."),
    ("evaluations_total", Kind::Counter, "Evaluations of the rule."),
    ("last_evaluation_seconds", Kind::Gauge, "How long the latest evaluation of the rule took, its deliveries included."),
    ("alerts_total", Kind::Counter, "Alerts delivered."),
    ("delivery_failures_total", Kind::Counter, "Deliveries of an evaluation's alerts that an output refused."),
    ("snapshot_age_seconds", Kind::Gauge, "How long ago the window was last kept whole in the state directory (absent: not yet, or not kept)."),
    ("last_snapshot_seconds", Kind::Gauge, "How long the last snapshot of the window took to encode and write."),
    ("output_queued", Kind::Gauge, "Deliveries an output (email) holds in its queue or is making."),
    ("output_sent_total", Kind::Counter, "Deliveries an output that queues them (email) made."),
    ("output_failed_attempts_total", Kind::Counter, "Attempts at a delivery that failed (each is logged)."),
    ("output_given_up_total", Kind::Counter, "Deliveries given up after their last attempt."),
    ("output_dropped_total", Kind::Counter, "Deliveries dropped because the output's queue was full."),
    ("output_below_severity_total", Kind::Counter, "Alerts an output that queues them (email) left out: under its min_severity."),
];

/// Which kind of metric.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// What the values are recorded with.
const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The exporter's recorder, which renders what was last set in it.
struct Exporter {
    recorder: PrometheusRecorder,
}

impl Exporter {
    fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        for &(name, kind, help) in METRICS {
            let name = format!("dns_sensor_{name}");
            match kind {
                Kind::Counter => recorder.describe_counter(name.into(), None, help.into()),
                Kind::Gauge => recorder.describe_gauge(name.into(), None, help.into()),
            }
        }
        Self { recorder }
    }

    fn key(name: &str, labels: &[(&'static str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|&(k, v)| Label::new(k, v.to_owned()))
            .collect();
        Key::from_parts(format!("dns_sensor_{name}"), labels)
    }

    fn counter(&self, name: &str, labels: &[(&'static str, &str)], value: u64) {
        let key = Self::key(name, labels);
        self.recorder
            .register_counter(&key, &METADATA)
            .absolute(value);
    }

    fn gauge(&self, name: &str, labels: &[(&'static str, &str)], value: f64) {
        let key = Self::key(name, labels);
        self.recorder.register_gauge(&key, &METADATA).set(value);
    }

    /// Sets every metric from `sources` as they are now, and renders them all.
    fn render(&self, sources: &MetricsSources) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut workers = WorkerStats::default();
        for (i, q) in sources.queues.iter().enumerate() {
            let queue = i.to_string();
            let queue = [("queue", queue.as_str())];
            self.counter("frames_received_total", &queue, load(&q.frames));
            self.counter("fill_ring_empty_total", &queue, load(&q.fill_ring_empty));
            for (reason, value) in [
                ("rx_ring_full", load(&q.rx_ring_full)),
                ("rx_dropped", load(&q.rx_dropped)),
            ] {
                let labels = [queue[0], ("reason", reason)];
                self.counter("ring_drops_total", &labels, value);
            }
            workers.add(&q.worker.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let kernel = *sources.kernel.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kernel {
            for (verdict, value) in [
                ("redirected", k.redirected),
                ("redirect_failed", k.redirect_failed),
                ("not_dns", k.not_dns),
            ] {
                self.counter("xdp_frames_total", &[("verdict", verdict)], value);
            }
            self.counter("xdp_too_short_total", &[], k.too_short);
            self.counter("xdp_fragments_total", &[], k.fragments);
        }
        let d = &workers.decode;
        for (kind, value) in [("query", workers.queries), ("response", workers.responses)] {
            self.counter("dns_messages_total", &[("kind", kind)], value);
        }
        for (layer, value) in [
            ("frame", d.malformed_frames),
            ("dns", workers.malformed_dns),
        ] {
            self.counter("malformed_total", &[("layer", layer)], value);
        }
        for (reason, value) in [
            ("not_ip", d.not_ip),
            ("not_dns", d.not_dns),
            ("no_question", workers.no_question),
            ("whitelisted", workers.whitelisted),
            ("no_registered_domain", workers.no_domain),
        ] {
            self.counter("not_counted_total", &[("reason", reason)], value);
        }
        self.counter("ip_fragments_total", &[], d.ip_fragments);
        self.counter("ip_reassembled_total", &[], d.ip_reassembled);
        self.counter("ip_fragments_dropped_total", &[], d.ip_fragments_dropped);
        self.counter("tcp_bytes_dropped_total", &[], d.tcp_bytes_dropped);
        let w = &*sources.window;
        self.gauge(
            "window_domains",
            &[],
            w.domains.load(Ordering::Relaxed) as f64,
        );
        self.counter("shed_records_total", &[], load(&w.shed_records));
        self.counter("evicted_domains_total", &[], load(&w.evicted_domains));
        self.counter("late_shards_total", &[], load(&w.late_shards));
        self.counter("evaluations_total", &[], load(&w.evaluations));
        self.gauge(
            "last_evaluation_seconds",
            &[],
            load(&w.last_evaluation_nanos) as f64 / 1e9,
        );
        self.counter("alerts_total", &[], load(&w.alerts));
        self.counter("delivery_failures_total", &[], load(&w.delivery_failures));
        let kept_at = load(&w.last_snapshot_at);
        if kept_at > 0 {
            let now = crate::clock::wall_clock();
            let age = now.saturating_sub(kept_at) as f64 / 1e9;
            self.gauge("snapshot_age_seconds", &[], age);
            let took = load(&w.last_snapshot_nanos) as f64 / 1e9;
            self.gauge("last_snapshot_seconds", &[], took);
        }
        let queues = w.queues.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for q in queues {
            let output = [("output", q.output)];
            self.gauge("output_queued", &output, q.queued as f64);
            self.counter("output_sent_total", &output, q.sent);
            self.counter("output_failed_attempts_total", &output, q.failed_attempts);
            self.counter("output_given_up_total", &output, q.given_up);
            self.counter("output_dropped_total", &output, q.dropped);
            self.counter("output_below_severity_total", &output, q.below_severity);
        }
        self.recorder.handle().render()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// The body of `GET path` from `address`, and the status line.
    fn get(address: SocketAddr, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    }

    /// `promtool check metrics` on `text`: its complaints, none when it is valid.
    fn promtool_check(text: &str) -> String {
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool, from Debian's prometheus package: cargo xtask setup installs it");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("written");
        let out = child.wait_with_output().expect("promtool ran");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            said
        } else {
            format!("promtool failed: {said}")
        }
    }

    #[test]
    fn a_scrape_reads_every_source_as_it_is_then() {
        let queues: Vec<Arc<QueueCounters>> = (0..2).map(|_| Arc::default()).collect();
        queues[1].frames.store(1234, Ordering::Relaxed);
        queues[1].rx_ring_full.store(7, Ordering::Relaxed);
        {
            let mut stats = queues[0].worker.lock().expect("not poisoned");
            stats.queries = 40;
            stats.responses = 38;
            stats.malformed_dns = 3;
            stats.decode.tcp_bytes_dropped = 99;
        }
        queues[1].worker.lock().expect("not poisoned").queries = 2;
        let kernel = Arc::new(Mutex::new(Some(Counters {
            seen: 2000,
            redirected: 1241,
            not_dns: 759,
            ..Counters::default()
        })));
        let window = Arc::new(WindowGauges::default());
        window.domains.store(17, Ordering::Relaxed);
        let now = crate::clock::wall_clock();
        window
            .last_snapshot_at
            .store(now - 5_000_000_000, Ordering::Relaxed);
        window
            .last_snapshot_nanos
            .store(2_500_000_000, Ordering::Relaxed);
        *window.queues.lock().expect("not poisoned") = vec![crate::alert::QueueStats {
            output: "email",
            sent: 3,
            given_up: 1,
            queued: 2,
            below_severity: 5,
            ..Default::default()
        }];
        window
            .last_evaluation_nanos
            .store(1_500_000_000, Ordering::Relaxed);
        let sources = MetricsSources {
            queues: queues.clone(),
            kernel,
            window: Arc::clone(&window),
        };
        let server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), sources).expect("listens");
        let (status, text) = get(server.address(), "/metrics");
        assert!(status.contains("200"), "{status}");
        for line in [
            "dns_sensor_frames_received_total{queue=\"1\"} 1234",
            "dns_sensor_ring_drops_total{queue=\"1\",reason=\"rx_ring_full\"} 7",
            "dns_sensor_xdp_frames_total{verdict=\"redirected\"} 1241",
            "dns_sensor_dns_messages_total{kind=\"query\"} 42",
            "dns_sensor_malformed_total{layer=\"dns\"} 3",
            "dns_sensor_tcp_bytes_dropped_total 99",
            "dns_sensor_window_domains 17",
            "dns_sensor_last_evaluation_seconds 1.5",
            "dns_sensor_last_snapshot_seconds 2.5",
            "dns_sensor_output_queued{output=\"email\"} 2",
            "dns_sensor_output_given_up_total{output=\"email\"} 1",
            "dns_sensor_output_below_severity_total{output=\"email\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("dns_sensor_snapshot_age_seconds "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(age.is_some_and(|a| (5.0..60.0).contains(&a)), "{text}");
        // Read at the scrape, not at the start.
        window.alerts.store(5, Ordering::Relaxed);
        let (_, again) = get(server.address(), "/metrics");
        assert!(
            again.lines().any(|l| l == "dns_sensor_alerts_total 5"),
            "{again}"
        );
        let said = promtool_check(&text);
        assert!(!said.contains("failed"), "{said}\n{text}");
        let (status, _) = get(server.address(), "/");
        assert!(status.contains("404"), "{status}");
        drop(server);
    }
}
