//! The time-series store tests write to: a real VictoriaMetrics (installed by
//! `tests/setup-peers.sh`), not a mock.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use super::{free_port, wait_for_port, Proc};
use std::time::Instant;

/// A VictoriaMetrics server on a free port with a throw-away data directory.
pub struct Store {
    pub port: u16,
    data: PathBuf,
    proc: Option<Proc>,
}

impl Store {
    pub fn start(dir: &Path) -> Self {
        let mut s = Store {
            port: free_port(),
            data: dir.join("vm-data"),
            proc: None,
        };
        s.restart();
        s
    }

    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.data.with_extension("log")).unwrap();
        let child = Command::new("/usr/bin/victoria-metrics")
            .arg(format!("-storageDataPath={}", self.data.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .args([
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-retentionPeriod=100y",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start victoria-metrics: run tests/setup-peers.sh first");
        self.proc = Some(Proc {
            child,
            name: "victoria-metrics".into(),
        });
        wait_for_port(self.port, "victoria-metrics", Duration::from_secs(15));
    }

    /// A graceful stop (SIGTERM): the store flushes what it accepted. (A SIGKILL loses
    /// its last second of accepted points — the store's durability, not ingest's.)
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.terminate();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every sample of the series matching `selector`: (labels, timestamp ms) → value.
    pub fn export(&self, selector: &str) -> BTreeMap<(BTreeMap<String, String>, i64), f64> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .arg(format!("{}/api/v1/export", self.url()))
            .arg("--data-urlencode")
            .arg(format!("match[]={selector}"))
            .output()
            .expect("curl");
        let mut samples = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            let ts = v["timestamps"].as_array().unwrap();
            let vals = v["values"].as_array().unwrap();
            for (t, x) in ts.iter().zip(vals) {
                samples.insert((labels.clone(), t.as_i64().unwrap()), x.as_f64().unwrap());
            }
        }
        samples
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's InfluxDB 1.6 on free ports with throw-away directories.
pub fn influxdb(dir: &Path) -> (Proc, u16) {
    let (http, rpc) = (free_port(), free_port());
    let d = dir.join("influx");
    let conf = dir.join("influxdb.conf");
    std::fs::write(
        &conf,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n",
            d = d.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/bin/influxd")
        .arg("-config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("influxd.log")).unwrap())
        .spawn()
        .expect("influxd: run tests/setup-peers.sh first");
    let start = Instant::now();
    while http_get(http, "/ping").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "influxd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        Proc {
            child,
            name: "influxd".into(),
        },
        http,
    )
}

pub fn http_get(port: u16, path_and_query: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-f", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}{path_and_query}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A centre (`hazgate ingest`) on `broker`, writing to `store`, its screen on `http`.
pub fn central_toml(dir: &Path, broker: u16, store: &Store, http: u16) -> PathBuf {
    let conf = dir.join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nclient_id = \"centre-1\"\n\
             [store]\nurl = \"{}\"\norg = \"park\"\nbucket = \"hazgate\"\ntoken = \"unused\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntokens_path = \"{}\"\n\
             [alarm_loop]\njournal_dir = \"{}\"\nstore_every_s = 1\n",
            store.url(),
            dir.join("tokens.json").display(),
            dir.join("alarms").display(),
        ),
    )
    .unwrap();
    conf
}
