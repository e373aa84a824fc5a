//! A real ClickHouse server for the tests: Debian's `clickhouse-server` (18.16, which
//! `cargo xtask setup` installs) on a loopback HTTP port, its data in a directory of
//! its own, stopped and removed when dropped.
//!
//! Two users: `default`, without a password, and `fleet`, whose password is
//! [`FLEET_PASSWORD`].
//!
//! The server will not run as root: when the tests are root it runs as `nobody`, and
//! its directory is handed to that user. It listens on loopback only: the HTTP port,
//! and a native-protocol port for the cluster [`TWO_SHARDS`], whose shards are this
//! server's databases `shard_1` and `shard_2` (ports left out of the configuration
//! stay closed).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/sbin/clickhouse-server";

/// The cluster of two shards on this one server: a `Distributed` table over it with an
/// empty database name reads and writes `shard_1.TABLE` and `shard_2.TABLE`.
pub const TWO_SHARDS: &str = "two_shards";

/// The password of the server's user `fleet`.
pub const FLEET_PASSWORD: &str = "s3cret pass";

/// The user the server runs as when the tests are root.
const NOBODY: u32 = 65534;

/// A running ClickHouse server.
pub struct ClickHouse {
    dir: PathBuf,
    port: u16,
    native_port: u16,
    child: Option<Child>,
}

impl ClickHouse {
    /// Starts a server; `None` when `clickhouse-server` is not installed.
    pub fn start() -> Option<ClickHouse> {
        if !std::path::Path::new(SERVER).exists() {
            return None;
        }
        static MADE: AtomicU32 = AtomicU32::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dns-sensor-clickhouse-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["data", "tmp", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("clickhouse dir");
        }
        let port = free_port();
        let native_port = free_port();
        let mut server = ClickHouse {
            dir,
            port,
            native_port,
            child: None,
        };
        server.write_config();
        server.restart();
        Some(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s), keeping its data.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server (SIGKILL: no shutdown, whatever it was writing is cut short),
    /// keeping its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and port, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let config = self.dir.join("config.xml");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut command = if root {
            chown_tree(&self.dir);
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", SERVER]);
            c
        } else {
            Command::new(SERVER)
        };
        command
            .arg(format!("--config-file={}", config.display()))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.join("log/stderr"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            );
        self.child = Some(command.spawn().expect("clickhouse-server starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(http(self.port, "GET", "/ping", ""), Ok((200, _))) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("clickhouse-server exited ({status}): {}", self.log_tail());
                }
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not answer in 30 s: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `sql` and returns the answer; panics on an error.
    pub fn query(&self, sql: &str) -> String {
        // 64-bit integers as JSON numbers, as the sensor asks for them too.
        match http(
            self.port,
            "POST",
            "/?output_format_json_quote_64bit_integers=0",
            sql,
        ) {
            Ok((200, body)) if !body.contains("DB::Exception") => body,
            Ok((status, body)) => panic!("clickhouse: {sql}: HTTP {status}: {body}"),
            Err(e) => panic!("clickhouse: {sql}: {e}"),
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for file in ["log/clickhouse-server.err.log", "log/stderr"] {
            let read = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
            let start = read.len().saturating_sub(2000);
            text.push_str(read.get(start..).unwrap_or_default());
        }
        text
    }

    fn write_config(&self) {
        let dir = self.dir.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{dir}/log/clickhouse-server.log</log>
        <errorlog>{dir}/log/clickhouse-server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{port}</http_port>
    <tcp_port>{native_port}</tcp_port>
    <remote_servers>
        <{TWO_SHARDS}>
            <shard><replica><host>127.0.0.1</host><port>{native_port}</port><default_database>shard_1</default_database></replica></shard>
            <shard><replica><host>127.0.0.1</host><port>{native_port}</port><default_database>shard_2</default_database></replica></shard>
        </{TWO_SHARDS}>
    </remote_servers>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
</yandex>
"#,
            port = self.port,
            native_port = self.native_port,
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <fleet>
            <password>s3cret pass</password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </fleet>
    </users>
    <quotas><default></default></quotas>
</yandex>
"#;
        std::fs::write(self.dir.join("config.xml"), config).expect("config.xml");
        std::fs::write(self.dir.join("users.xml"), users).expect("users.xml");
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Hands `dir` and everything in it to `nobody`, and lets it reach `dir`.
fn chown_tree(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY));
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                chown_tree(&path);
            } else {
                let _ = std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY));
            }
        }
    }
}

/// One HTTP/1.0 request (so the answer is never chunked) to the server: status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}
