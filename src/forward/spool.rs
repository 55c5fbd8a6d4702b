//! The durable store-and-forward spool of outgoing messages.
//!
//! Every message is written here before it is published and removed only after the
//! broker's PUBACK, so an uplink outage of hours, a restart or a `kill -9` loses nothing
//! that was committed.
//!
//! Why redb: pure Rust (no C to cross-compile for ARM gateways), ACID with one fsync per
//! commit, a file format pinned by its major version, and ordered u64 keys, which is all
//! a spool needs. (sled is unmaintained; SQLite would bring C.)
//!
//! Layout: two tables keyed by the message's `seq` — `events` (alarms, risk changes,
//! status; never dropped) and `telemetry` (dropped oldest-first when the spool is over
//! its byte budget, and counted) — plus `meta` holding the next `seq`, the bytes held
//! and the drop counter, updated in the same transaction as the records they describe.
//! So `seq` never repeats and never goes back, across restarts and crashes.
//!
//! fsync policy: one commit (one fsync) per [`Spool::append`] call; the forwarder calls
//! it once per collection window (≤ 200 ms). On power loss at most the messages of the
//! window being collected are lost; everything committed survives. Removals on PUBACK
//! ride on the next append's fsync ([`Spool::ack`]): a power loss can resend, never lose.

use std::path::Path;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
const TELEMETRY: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("telemetry");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// redb's page cache. Its default (1 GiB) lets resident memory grow with every page the
/// spool ever touched; an append-at-the-end, remove-from-the-front queue re-reads
/// little, so a few MiB hold its working set (measured: bench/sidebyside.sh).
const CACHE_BYTES: usize = 4 << 20;

const NEXT_SEQ: &str = "next_seq";
const NEXT_EVENT_SEQ: &str = "next_event_seq";
const NEXT_TELEMETRY_SEQ: &str = "next_telemetry_seq";
const BYTES: &str = "bytes";
const DROPPED: &str = "dropped_telemetry";

/// Which queue a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Alarms, risk changes, status: never dropped, sent first after a reconnect.
    Event,
    /// Readings: dropped oldest-first when the spool is full.
    Telemetry,
    /// A restated state (the retained list of standing alarms): queued with the events
    /// and never dropped, but in neither stream — it takes no `stream_seq`, so a centre
    /// that does not subscribe to it (before v1.6) sees no gap.
    State,
}

/// A message's numbers: `seq` counts every message of the gateway; `stream_seq` counts
/// the messages of its class (events or telemetry) alone. Events are sent before older
/// telemetry, so `seq` arrives out of order by design; within a class messages go out
/// in order, so a gap in `stream_seq` is a loss (telemetry: a counted drop) and
/// anything else a reordering. 0 where there is none (the Last Will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seq {
    pub seq: u64,
    pub stream_seq: u64,
}

impl From<u64> for Seq {
    fn from(seq: u64) -> Self {
        Self { seq, stream_seq: 0 }
    }
}

impl Class {}

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub class: Class,
    pub payload: Vec<u8>,
}

/// How full the spool is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub events: u64,
    pub telemetry: u64,
    pub bytes: u64,
    pub dropped_telemetry: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool storage: {0}")]
    Storage(#[from] redb::Error),
    /// The spool's thread has stopped (it panicked): nothing more can be spooled.
    #[error("the spool's thread has stopped")]
    Stopped,
}

fn storage<E: Into<redb::Error>>(e: E) -> SpoolError {
    SpoolError::Storage(e.into())
}

pub struct Spool {
    db: Database,
    max_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool at `path`, holding at most `max_bytes` of payload.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        {
            txn.open_table(EVENTS).map_err(storage)?;
            txn.open_table(TELEMETRY).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            for key in [NEXT_SEQ, NEXT_EVENT_SEQ, NEXT_TELEMETRY_SEQ, BYTES, DROPPED] {
                if meta.get(key).map_err(storage)?.is_none() {
                    let first = u64::from(key.starts_with("next"));
                    meta.insert(key, first).map_err(storage)?;
                }
            }
        }
        txn.commit().map_err(storage)?;
        Ok(Self { db, max_bytes })
    }

    /// Spools `messages` in one durable commit, assigning each its [`Seq`] (the `seq`s
    /// are returned in order) through `make(i, seq)`, which builds the payload carrying
    /// them.
    ///
    /// When the payload bytes exceed the budget, the oldest telemetry is dropped (and
    /// counted) until they fit; events are never dropped, even over budget.
    pub fn append<F>(&self, messages: &[Class], mut make: F) -> Result<Vec<u64>, SpoolError>
    where
        F: FnMut(usize, Seq) -> Vec<u8>,
    {
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate).map_err(storage)?;
        let mut seqs = Vec::with_capacity(messages.len());
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let mut events = txn.open_table(EVENTS).map_err(storage)?;
            let mut telemetry = txn.open_table(TELEMETRY).map_err(storage)?;
            let get = |meta: &redb::Table<'_, &str, u64>, k| -> Result<u64, SpoolError> {
                Ok(meta
                    .get(k)
                    .map_err(storage)?
                    .map(|g| g.value())
                    .unwrap_or(0))
            };
            let mut next = get(&meta, NEXT_SEQ)?.max(1);
            let mut next_event = get(&meta, NEXT_EVENT_SEQ)?.max(1);
            let mut next_telemetry = get(&meta, NEXT_TELEMETRY_SEQ)?.max(1);
            let mut bytes = get(&meta, BYTES)?;
            let mut dropped = get(&meta, DROPPED)?;
            for (i, class) in messages.iter().enumerate() {
                let seq = next;
                next += 1;
                let stream = match class {
                    Class::Event => Some(&mut next_event),
                    Class::Telemetry => Some(&mut next_telemetry),
                    Class::State => None,
                };
                let stream_seq = stream.map_or(0, |n| {
                    *n += 1;
                    *n - 1
                });
                let payload = make(i, Seq { seq, stream_seq });
                bytes += payload.len() as u64;
                match class {
                    Class::Event | Class::State => events.insert(seq, payload.as_slice()),
                    Class::Telemetry => telemetry.insert(seq, payload.as_slice()),
                }
                .map_err(storage)?;
                seqs.push(seq);
            }
            while bytes > self.max_bytes {
                let Some((_, v)) = telemetry.pop_first().map_err(storage)? else {
                    break; // only events left: they are kept over budget
                };
                bytes -= v.value().len() as u64;
                dropped += 1;
            }
            meta.insert(NEXT_SEQ, next).map_err(storage)?;
            meta.insert(NEXT_EVENT_SEQ, next_event).map_err(storage)?;
            meta.insert(NEXT_TELEMETRY_SEQ, next_telemetry)
                .map_err(storage)?;
            meta.insert(BYTES, bytes).map_err(storage)?;
            meta.insert(DROPPED, dropped).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(seqs)
    }

    /// Up to `limit` records to send: all events first (oldest first), then telemetry
    /// (oldest first), skipping `seq`s for which `in_flight` is true.
    pub fn pending(
        &self,
        limit: usize,
        in_flight: impl Fn(u64) -> bool,
    ) -> Result<Vec<Record>, SpoolError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let mut out = Vec::new();
        for (def, class) in [(EVENTS, Class::Event), (TELEMETRY, Class::Telemetry)] {
            let table = txn.open_table(def).map_err(storage)?;
            for item in table.iter().map_err(storage)? {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, v) = item.map_err(storage)?;
                let seq = k.value();
                if !in_flight(seq) {
                    out.push(Record {
                        seq,
                        class,
                        payload: v.value().to_vec(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The oldest record of each queue (events, telemetry), where there is one.
    pub fn first(&self) -> Result<Vec<Record>, SpoolError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let mut out = Vec::new();
        for (def, class) in [(EVENTS, Class::Event), (TELEMETRY, Class::Telemetry)] {
            let table = txn.open_table(def).map_err(storage)?;
            let first = table.first().map_err(storage)?;
            if let Some((k, v)) = first {
                out.push(Record {
                    seq: k.value(),
                    class,
                    payload: v.value().to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Removes acknowledged records (missing ones, e.g. dropped telemetry, are ignored).
    ///
    /// Without an fsync of its own: the removal becomes durable with the next append
    /// (every commit window) or a clean close. A power loss before that resends the
    /// records it removed — at-least-once delivery allows it, consumers deduplicate on
    /// (`gateway`, `seq`) — and spares the gateway's flash an fsync per PUBACK batch.
    pub fn ack(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::None).map_err(storage)?;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let mut events = txn.open_table(EVENTS).map_err(storage)?;
            let mut telemetry = txn.open_table(TELEMETRY).map_err(storage)?;
            let mut freed = 0u64;
            for &seq in seqs {
                if let Some(v) = events.remove(seq).map_err(storage)? {
                    freed += v.value().len() as u64;
                } else if let Some(v) = telemetry.remove(seq).map_err(storage)? {
                    freed += v.value().len() as u64;
                }
            }
            let bytes = meta
                .get(BYTES)
                .map_err(storage)?
                .map(|g| g.value())
                .unwrap_or(0);
            meta.insert(BYTES, bytes.saturating_sub(freed))
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(())
    }

    pub fn depth(&self) -> Result<Depth, SpoolError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let meta = txn.open_table(META).map_err(storage)?;
        let get = |k| -> Result<u64, SpoolError> {
            Ok(meta
                .get(k)
                .map_err(storage)?
                .map(|g| g.value())
                .unwrap_or(0))
        };
        Ok(Depth {
            events: txn
                .open_table(EVENTS)
                .map_err(storage)?
                .len()
                .map_err(storage)?,
            telemetry: txn
                .open_table(TELEMETRY)
                .map_err(storage)?
                .len()
                .map_err(storage)?,
            bytes: get(BYTES)?,
            dropped_telemetry: get(DROPPED)?,
        })
    }

    /// Takes a `seq` for a message that is not spooled (the Last Will, registered with the
    /// broker at connect time), so it too never repeats.
    pub fn reserve_seq(&self) -> Result<Seq, SpoolError> {
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate).map_err(storage)?;
        let mut taken = Seq::default();
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            for (key, slot) in [
                (NEXT_SEQ, &mut taken.seq),
                (NEXT_EVENT_SEQ, &mut taken.stream_seq),
            ] {
                let n = meta
                    .get(key)
                    .map_err(storage)?
                    .map(|g| g.value())
                    .unwrap_or(1)
                    .max(1);
                meta.insert(key, n + 1).map_err(storage)?;
                *slot = n;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(taken)
    }

    /// The `seq` the next message will get.
    pub fn next_seq(&self) -> Result<u64, SpoolError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let meta = txn.open_table(META).map_err(storage)?;
        Ok(meta
            .get(NEXT_SEQ)
            .map_err(storage)?
            .map(|g| g.value())
            .unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: usize) -> impl FnMut(usize, Seq) -> Vec<u8> {
        move |_, seq| {
            let mut v = seq.seq.to_be_bytes().to_vec();
            v.resize(n, 0);
            v
        }
    }

    #[test]
    fn seq_is_persistent_and_never_repeats_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let s = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(
            s.append(&[Class::Telemetry, Class::Event], payload(16))
                .unwrap(),
            vec![1, 2]
        );
        s.ack(&[1, 2]).unwrap();
        drop(s);
        let s = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(s.next_seq().unwrap(), 3);
        assert_eq!(s.append(&[Class::Event], payload(16)).unwrap(), vec![3]);
    }

    #[test]
    fn events_drain_before_older_telemetry_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let s = Spool::open(&path, 1 << 20).unwrap();
        s.append(
            &[
                Class::Telemetry,
                Class::Telemetry,
                Class::Event,
                Class::Telemetry,
                Class::Event,
            ],
            payload(8),
        )
        .unwrap();
        drop(s);
        let s = Spool::open(&path, 1 << 20).unwrap();
        let order: Vec<u64> = s
            .pending(10, |_| false)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(order, vec![3, 5, 1, 2, 4]);
        let skip_in_flight: Vec<u64> = s
            .pending(2, |seq| seq == 3)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(skip_in_flight, vec![5, 1]);
        s.ack(&[3, 1]).unwrap();
        let d = s.depth().unwrap();
        assert_eq!((d.events, d.telemetry, d.bytes), (1, 2, 24));
    }

    #[test]
    fn full_spool_drops_oldest_telemetry_first_and_never_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(&dir.path().join("spool.redb"), 100).unwrap();
        // 10 × 20 bytes of telemetry into a 100-byte budget: the 5 oldest go.
        s.append(&[Class::Telemetry; 10], payload(20)).unwrap();
        let d = s.depth().unwrap();
        assert_eq!((d.telemetry, d.bytes, d.dropped_telemetry), (5, 100, 5));
        let left: Vec<u64> = s
            .pending(100, |_| false)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(left, vec![6, 7, 8, 9, 10]);
        // Events beyond the budget push all telemetry out but are all kept.
        s.append(&[Class::Event; 8], payload(20)).unwrap();
        let d = s.depth().unwrap();
        assert_eq!((d.events, d.telemetry, d.dropped_telemetry), (8, 0, 10));
        assert_eq!(d.bytes, 160, "events are kept over budget");
    }
}
