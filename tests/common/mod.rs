//! Shared helpers for integration tests: real peers started as child processes.
//!
//! Peers are installed by `tests/setup-peers.sh` (socat from Debian, pymodbus in the
//! project's `.venv`). A missing peer is a test failure with a message saying how to
//! install it, never a silent skip.

#![allow(dead_code)]

pub mod mqtt;
pub mod store;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use hazgate::model::{load_site, Site, SiteSource};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("HAZGATE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} not found: run tests/setup-peers.sh first (installs socat and pymodbus)",
        p.display()
    );
    p
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A graceful stop: SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> std::io::Result<ExitStatus> {
        terminate(&mut self.child)
    }
}

/// Sends SIGTERM to `child` (the way systemd stops hazgate) and waits for its exit.
pub fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `child` prints a line containing `marker` on stdout.
fn wait_for_line(child: &mut Child, marker: &str, name: &str, timeout: Duration) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker) {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(timeout).is_err() {
        let _ = child.kill();
        let out = child.wait_with_output_lossy();
        panic!("{name} did not become ready within {timeout:?}: {out}");
    }
}

trait WaitLossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl WaitLossy for Child {
    fn wait_with_output_lossy(&mut self) -> String {
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// Where the pymodbus peer listens.
#[derive(Debug, Clone)]
pub enum PeerAt {
    Tcp(u16),
    RtuOverTcp(u16),
    Serial(PathBuf),
}

/// Options of the pymodbus peer.
#[derive(Debug, Clone, Default)]
pub struct PeerOpts {
    pub garble: Option<(&'static str, u8)>,
    /// A JSON file of register changes the peer applies when it appears or changes.
    pub control: Option<PathBuf>,
}

/// Starts the pymodbus peer with `map` (JSON), logging requests to `log`.
pub fn pymodbus(map: &serde_json::Value, at: &PeerAt, dir: &Path, opts: &PeerOpts) -> Proc {
    let map_path = dir.join(format!("map-{}.json", free_port()));
    std::fs::write(&map_path, serde_json::to_vec(map).unwrap()).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/peers/modbus_peer.py"))
        .arg("--map")
        .arg(&map_path)
        .arg("--log")
        .arg(dir.join("requests.log"));
    match at {
        PeerAt::Tcp(p) => cmd.arg("--tcp").arg(p.to_string()),
        PeerAt::RtuOverTcp(p) => cmd.arg("--rtu-over-tcp").arg(p.to_string()),
        PeerAt::Serial(path) => cmd.arg("--rtu").arg(path),
    };
    if let Some(path) = &opts.control {
        cmd.arg("--control").arg(path);
    }
    if let Some((mode, unit)) = opts.garble {
        cmd.arg("--garble")
            .arg(mode)
            .arg("--garble-unit")
            .arg(unit.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pymodbus peer");
    wait_for_line(
        &mut child,
        "READY",
        "pymodbus peer",
        Duration::from_secs(20),
    );
    Proc {
        child,
        name: "pymodbus".into(),
    }
}

/// Requests the peer logged: (unit, function code, address, count).
pub fn peer_requests(dir: &Path) -> Vec<(u8, u8, u16, u16)> {
    let text = std::fs::read_to_string(dir.join("requests.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 4).then(|| (v[0] as u8, v[1] as u8, v[2] as u16, v[3] as u16))
        })
        .collect()
}

/// A socat pseudo-terminal pair: `a` for hazgate, `b` for the peer.
pub struct PtyPair {
    pub a: PathBuf,
    pub b: PathBuf,
    _proc: Proc,
}

pub fn socat_pair(dir: &Path) -> PtyPair {
    let a = dir.join("ttyA");
    let b = dir.join("ttyB");
    let child = Command::new("socat")
        .arg("-d")
        .arg("-d")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start socat: run tests/setup-peers.sh first");
    let proc = Proc {
        child,
        name: "socat".into(),
    };
    let start = Instant::now();
    while !(a.exists() && b.exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "socat pty pair did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    PtyPair { a, b, _proc: proc }
}

pub fn site_from_toml(toml: &str) -> Arc<Site> {
    match load_site(SiteSource::Text {
        name: "test.toml",
        toml,
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("test site invalid:\n{e}\n---\n{toml}"),
    }
}

/// A `[[channels]]` header for a transport, for building test sites.
pub fn channel_toml(id: &str, at: &PeerAt) -> String {
    match at {
        PeerAt::Tcp(p) => format!("[[channels]]\nid = \"{id}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {p}\n"),
        PeerAt::RtuOverTcp(p) => {
            format!("[[channels]]\nid = \"{id}\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = {p}\n")
        }
        PeerAt::Serial(path) => format!(
            "[[channels]]\nid = \"{id}\"\nkind = \"rtu\"\npath = \"{}\"\nbaud = 9600\ninter_frame_delay_ms = 5\n",
            path.display()
        ),
    }
}

pub const GATEWAY_TOML: &str = r#"
[gateway]
park_id = "P1"
enterprise_id = "E1"
enterprise_name = "Test enterprise"
gateway_id = "GW-T"
"#;

/// Starts `hazgate ingest` on `conf`, logging to `log`, and waits for its HTTP side.
pub fn start_central(conf: &Path, http: u16, log: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["ingest", "--log-level", "warn", "--config"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(http, "ingest", Duration::from_secs(15));
    Proc {
        child,
        name: "ingest".into(),
    }
}

/// Polls until `f` is true or `timeout` passes.
/// Waits until something listens on 127.0.0.1:`port`; `what` names it in the failure.
pub fn wait_for_port(port: u16, what: &str, timeout: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "{what} (port {port}) did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian installs the broker in /usr/sbin, often not on a user's PATH.
pub fn mosquitto_bin() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    }
}

pub async fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal HTTP/1.1 client: (status, body).
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    try_http(port, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

/// One HTTP/1.1 request; an error while the server is not (yet) listening.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    try_http_as(port, method, path, body, None)
}

/// [`http`] with a bearer token.
pub fn http_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: &str,
) -> (u16, String) {
    try_http_as(port, method, path, body, Some(token))
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

pub fn try_http_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A log that shows a panic fails the test with it.
pub fn assert_no_panic(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        !text.contains("panicked"),
        "{} shows a panic:\n{text}",
        log.display()
    );
}
