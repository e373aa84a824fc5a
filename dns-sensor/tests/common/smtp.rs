//! A real SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd, which
//! `cargo xtask setup` installs) on a loopback port, writing each message it receives
//! to a folder, killed when dropped.
//!
//! Used by the end-to-end tests (`tests/common`) and, through `#[path]`, by the email
//! output's own tests in the library: std and serde_json only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server: one JSON argument says the port, the TLS mode and the AUTH account;
/// it prints the port it listens on once it does, and exits when its stdin closes (the
/// test process is gone). Each message is `NNNN.eml` (the bytes of DATA as received)
/// and then `NNNN.json` (envelope, whether TLS was on, the AUTH login).
const SERVER: &str = r#"
import asyncio, json, os, ssl, sys, threading
from aiosmtpd.smtp import SMTP, AuthResult

args = json.loads(sys.argv[1])
out = args["dir"]
count = 0

def exit_with_parent():
    sys.stdin.read()
    os._exit(0)

threading.Thread(target=exit_with_parent, daemon=True).start()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        base = os.path.join(out, "%04d" % count)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        login = None
        if session.authenticated and session.auth_data is not None:
            login = session.auth_data.login.decode("utf-8", "replace")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
        }
        with open(base + ".tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".tmp", base + ".json")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, data):
    user, password = args["auth"]
    ok = data.login.decode() == user and data.password.decode() == password
    # handled=False: aiosmtpd itself answers 535 to a refused login.
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

async def main():
    mode = args["mode"]
    ctx = None
    if mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args["cert"], args["key"])
    def factory():
        kw = {"hostname": "smtp.test"}
        if mode == "starttls":
            kw["tls_context"] = ctx
            kw["require_starttls"] = True
        if args["auth"]:
            kw["authenticator"] = authenticator
            kw["auth_required"] = True
            kw["auth_require_tls"] = mode == "starttls"
        return SMTP(Handler(), **kw)
    server = await asyncio.get_running_loop().create_server(
        factory, host="127.0.0.1", port=args["port"],
        ssl=ctx if mode == "smtps" else None)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// How the server secures its connections.
#[derive(Clone, Debug, Default)]
pub enum Security {
    /// Plain SMTP; no STARTTLS offered.
    #[default]
    Plain,
    /// STARTTLS offered and required before MAIL, with this certificate (PEM) and key.
    Starttls {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file.
        key: PathBuf,
    },
    /// TLS from the first byte (SMTPS).
    Smtps {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file.
        key: PathBuf,
    },
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// The port; 0 for any free one.
    pub port: u16,
    /// TLS.
    pub security: Security,
    /// When set, AUTH (PLAIN or LOGIN) with this user name and password is required.
    pub auth: Option<(String, String)>,
}

/// A running aiosmtpd.
pub struct SmtpServer {
    child: Child,
    _stdin: ChildStdin,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// MAIL FROM.
    pub mail_from: String,
    /// Every RCPT TO.
    pub rcpt_tos: Vec<String>,
    /// Whether the connection was TLS when the message came.
    pub tls: bool,
    /// The AUTH user name, when the client authenticated.
    pub login: Option<String>,
    /// The message's bytes, exactly as they came (CRLF line ends, transfer-encoded).
    pub raw: Vec<u8>,
}

/// A Python with aiosmtpd: Debian's first (python3-aiosmtpd), else the one on PATH.
fn python() -> &'static str {
    static FOUND: OnceLock<&'static str> = OnceLock::new();
    FOUND.get_or_init(|| {
        ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|python| {
                Command::new(python)
                    .args(["-c", "import aiosmtpd.smtp"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("no python3 with aiosmtpd: run `cargo xtask setup` (python3-aiosmtpd)")
    })
}

/// A loopback port nothing listens on now (to start a server on later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl SmtpServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start(options: &ServerOptions) -> Self {
        static SERVERS: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dns-sensor-smtp-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server dir");
        let (mode, cert, key) = match &options.security {
            Security::Plain => ("plain", None, None),
            Security::Starttls { cert, key } => ("starttls", Some(cert), Some(key)),
            Security::Smtps { cert, key } => ("smtps", Some(cert), Some(key)),
        };
        let args = serde_json::json!({
            "dir": dir,
            "port": options.port,
            "mode": mode,
            "cert": cert,
            "key": key,
            "auth": options.auth.as_ref().map(|(u, p)| [u, p]),
        });
        let stderr = std::fs::File::create(dir.join("server.log")).expect("log file");
        let mut child = Command::new(python())
            .args(["-c", SERVER, &args.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let mut server = Self {
            child,
            _stdin: stdin,
            port: 0,
            dir,
        };
        server.port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("aiosmtpd did not start: {}", server.log()));
        server
    }

    /// What the server wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut metas: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("server dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        metas.sort();
        metas.iter().map(|meta| read_received(meta)).collect()
    }

    /// Waits until at least `count` messages have come (or `within` has passed) and
    /// returns them all.
    pub fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() >= deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_received(meta: &Path) -> Received {
    let text = std::fs::read_to_string(meta).expect("meta");
    let meta_json: serde_json::Value = serde_json::from_str(&text).expect("meta JSON");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Received {
        mail_from: meta_json["mail_from"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        rcpt_tos: strings(&meta_json["rcpt_tos"]),
        tls: meta_json["tls"].as_bool().unwrap_or(false),
        login: meta_json["login"].as_str().map(String::from),
        raw: std::fs::read(meta.with_extension("eml")).expect("message"),
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Received {
    /// The header section, as received (folded lines, CRLF).
    pub fn head(&self) -> String {
        let raw = String::from_utf8_lossy(&self.raw);
        raw.split_once("\r\n\r\n")
            .map_or_else(|| raw.to_string(), |(head, _)| head.to_owned())
    }

    /// The values of header `name` (any case), each unfolded.
    pub fn header(&self, name: &str) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        for line in self.head().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.push_str(line);
                }
            } else {
                fields.push(line.to_owned());
            }
        }
        fields
            .iter()
            .filter_map(|field| {
                let (n, value) = field.split_once(':')?;
                n.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .collect()
    }

    /// The body, its transfer encoding (7bit or quoted-printable) undone, with `\n`
    /// line ends.
    pub fn body(&self) -> String {
        let raw = String::from_utf8_lossy(&self.raw).into_owned();
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let qp = self
            .header("Content-Transfer-Encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("quoted-printable"));
        let body = if qp {
            quoted_printable(body)
        } else {
            body.to_owned()
        };
        body.replace("\r\n", "\n")
    }
}

/// Undoes quoted-printable (RFC 2045 6.7): `=` CRLF joins lines, `=XX` is a byte.
fn quoted_printable(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
