//! `hazgate run` under a service manager. The test holds the `NOTIFY_SOCKET` a systemd
//! `Type=notify` unit with `WatchdogSec=` gives its service, and checks what the
//! gateway tells it (sd_notify(3)): `READY=1` only once it serves, `RELOADING=1` …
//! `READY=1` around a SIGHUP, `STOPPING=1` at SIGTERM, and `WATCHDOG=1` only while the
//! judge works. The judge is made to hang for real: its state write blocks on a FIFO
//! nobody reads, as a write to a dead mount would.

mod common;

use std::{
    os::unix::net::UnixDatagram,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{mqtt::*, *};

/// What the gateway sent the "service manager", with when it arrived.
type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(path: &Path) -> Notes {
    let sock = UnixDatagram::bind(path).unwrap();
    let notes: Notes = Arc::default();
    let n = notes.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(len) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            n.lock().unwrap().push((Instant::now(), text));
        }
    });
    notes
}

fn count(notes: &Notes, line: &str) -> usize {
    notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == line))
        .count()
}

/// Arrival times of the watchdog pings after `since`.
fn pings_after(notes: &Notes, since: Instant) -> Vec<Instant> {
    notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, m)| *t > since && m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tells_the_service_manager_ready_reload_stop_and_starves_its_watchdog_while_the_judge_hangs(
) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let broker = Broker::start(dir);
    let port = free_port();
    let (_peer, control) = detector(dir, &PeerAt::Tcp(port), 5.0);
    let site = one_detector_site(dir, &PeerAt::Tcp(port), broker.port, "");
    let notes = listen(&dir.join("notify.sock"));
    let api = free_port();
    let log = dir.join("gateway.log");
    let child = Command::new(BIN)
        .args(["run", "--api", &format!("127.0.0.1:{api}"), "--config"])
        .arg(&site)
        .env("NOTIFY_SOCKET", dir.join("notify.sock"))
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut gw = Proc {
        child,
        name: "hazgate run".into(),
    };

    // READY only once it serves: the local API answers the moment READY arrives.
    eventually(Duration::from_secs(20), "READY=1", || {
        count(&notes, "READY=1") == 1
    })
    .await;
    let (code, _) = try_http(api, "GET", "/healthz", None).expect("the API serves at READY");
    assert!(code == 200, "healthz {code} at READY");
    let ready = notes.lock().unwrap().clone();
    assert!(
        ready
            .iter()
            .any(|(_, m)| m.contains("STATUS=1 points on 1 channels")),
        "{ready:?}"
    );
    // Fed at a quarter of the interval while all is well.
    let t = Instant::now();
    eventually(Duration::from_secs(5), "three watchdog pings", || {
        pings_after(&notes, t).len() >= 3
    })
    .await;

    // SIGHUP: RELOADING=1 (with the monotonic time systemd asks for), then READY=1 again.
    Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .unwrap();
    eventually(Duration::from_secs(20), "READY=1 after RELOADING=1", || {
        count(&notes, "READY=1") == 2
    })
    .await;
    let reload = notes
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m.contains("RELOADING=1"))
        .map(|(_, m)| m.clone())
        .expect("RELOADING=1 sent");
    assert!(reload.contains("MONOTONIC_USEC="), "{reload}");

    // The judge hangs: its next state write opens a FIFO that nobody reads. A detector
    // reading 60 %LEL makes it decide (alarms), and so write.
    let fifo = dir.join("site.toml.state.json.tmp");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    set_detector(&control, 60.0);
    eventually(Duration::from_secs(15), "the hung judge logged", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("stage hung")
    })
    .await;
    let hung = Instant::now();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stage=judge"), "{text}");
    // No ping for longer than the watchdog interval: systemd would kill and restart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pings_after(&notes, hung),
        Vec::<Instant>::new(),
        "the watchdog was fed while the judge hung"
    );
    // /healthz says so at once, without waiting on the hung judge.
    let (code, body) = http(api, "GET", "/healthz", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("judge busy for"), "{body}");

    // The write goes through: the judge works again and the watchdog is fed again.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let back = Instant::now();
    eventually(Duration::from_secs(10), "pings again", || {
        !pings_after(&notes, back).is_empty()
    })
    .await;
    assert!(!reader.join().unwrap().is_empty(), "the state was written");
    // (Its fsync fails on a FIFO — logged as a state not saved — so the FIFO stays: a
    // clean stop would write into it again.)
    std::fs::remove_file(&fifo).unwrap();
    eventually(Duration::from_secs(5), "the recovery logged", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("stage working again")
    })
    .await;

    // SIGTERM: STOPPING=1, and a clean exit.
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(count(&notes, "STOPPING=1"), 1);
    assert_no_panic(&log);
}
