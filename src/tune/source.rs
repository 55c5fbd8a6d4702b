//! Where a replay's readings come from, a chunk at a time in time order: held in
//! memory (an export, the centre's answer), or the gateway's history read a segment at
//! a time.

use std::path::PathBuf;

use crate::{history::store, reading::Reading};

/// What takes the readings: a replay, the look at a few points.
pub trait Feed: Send {
    fn feed(&mut self, readings: &[Reading]);
}

/// Readings handed to the feeders' threads at a time: below glibc's mmap threshold
/// (128 KiB), so the batches' memory is reused rather than mapped afresh.
const BATCH: usize = 2_048;

/// One pass over `source`, every feeder on a thread of its own (a 2-core gateway, or an
/// engineer's laptop, replays candidates side by side); the number of readings.
pub fn fan_out(source: &mut dyn Source, feeders: Vec<&mut dyn Feed>) -> anyhow::Result<usize> {
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        for f in feeders {
            let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<Reading>>>(64);
            senders.push(tx);
            s.spawn(move || {
                for batch in rx {
                    f.feed(&batch);
                }
            });
        }
        let mut count = 0;
        let mut batch = Vec::with_capacity(BATCH);
        let send = |batch: &mut Vec<Reading>| {
            let b = std::sync::Arc::new(std::mem::replace(batch, Vec::with_capacity(BATCH)));
            for tx in &senders {
                let _ = tx.send(b.clone());
            }
        };
        let read = source.each(&mut |chunk| {
            count += chunk.len();
            let mut rest = chunk;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(rest.len().min(BATCH - batch.len()));
                batch.extend_from_slice(now);
                rest = later;
                if batch.len() == BATCH {
                    send(&mut batch);
                }
            }
        });
        if !batch.is_empty() {
            send(&mut batch);
        }
        read.map(|()| count)
    })
}

pub trait Source: Send {
    /// Hands every reading to `f`, in time order, a chunk at a time.
    fn each(&mut self, f: &mut dyn FnMut(&[Reading])) -> anyhow::Result<()>;
}

/// Readings already in memory, in time order.
pub struct Memory(pub Vec<Reading>);

impl Source for Memory {
    fn each(&mut self, f: &mut dyn FnMut(&[Reading])) -> anyhow::Result<()> {
        for c in self.0.chunks(65_536) {
            f(c);
        }
        Ok(())
    }
}

/// The gateway's history directory, from `from` to `to` (ms).
pub struct History {
    pub dir: PathBuf,
    pub from: i64,
    pub to: i64,
}

impl Source for History {
    fn each(&mut self, f: &mut dyn FnMut(&[Reading])) -> anyhow::Result<()> {
        let notes = store::each_reading_chunk(&self.dir, self.from, self.to, f)?;
        for d in notes.damaged {
            eprintln!("hazgate: left out, damaged: {d}");
        }
        Ok(())
    }
}
