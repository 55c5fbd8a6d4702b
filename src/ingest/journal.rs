//! The alarm journal: the ledger's entries, one JSON line each, appended and fsynced
//! before anything is acknowledged or answered, in one file a month
//! (`alarms-2026-11.jsonl`, by the entry's UTC time) so old months can be archived.
//! Replaying every file in name order rebuilds the ledger.

use std::{
    fs::{self, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use tracing::warn;

use super::ledger::Entry;

pub struct Journal {
    dir: PathBuf,
    writing: Mutex<()>,
}

/// What a replay found.
#[derive(Debug, Default, PartialEq)]
pub struct Replayed {
    pub entries: usize,
    /// Lines that could not be read (each logged with file and line): a torn last line
    /// after a power cut, or a file edited by hand.
    pub bad_lines: usize,
}

impl Journal {
    /// Opens the journal in `dir` (made if missing), checking that it can be written:
    /// a journal that cannot be written is an error at start-up, not at the first alarm.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let probe = dir.join(".hazgate-write-check");
        fs::write(&probe, b"")?;
        fs::remove_file(&probe)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            writing: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file an entry at `at` goes to.
    fn file_for(&self, e: &Entry<'_>) -> PathBuf {
        let month: String = e.at().to_rfc3339().chars().take(7).collect();
        self.dir.join(format!("alarms-{month}.jsonl"))
    }

    /// Appends `e` and syncs it to disk.
    pub fn append(&self, e: &Entry<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file_for(e))?;
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Reads every month's file in order, handing each entry to `apply`.
    pub fn replay(dir: &Path, mut apply: impl FnMut(&Entry<'_>)) -> std::io::Result<Replayed> {
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(d) => d
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("alarms-") && n.ends_with(".jsonl"))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        files.sort();
        let mut r = Replayed::default();
        for path in files {
            let reader = BufReader::new(fs::File::open(&path)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Entry<'_>>(&line) {
                    Ok(e) => {
                        apply(&e);
                        r.entries += 1;
                    }
                    Err(e) => {
                        r.bad_lines += 1;
                        warn!(file = %path.display(), line = n + 1, error = %e,
                            "alarm journal: a line cannot be read; skipped");
                    }
                }
            }
        }
        Ok(r)
    }
}
