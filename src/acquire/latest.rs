//! The one place the latest reading of every point lives.
//!
//! Acquisition writes; the alarm stage, the uplink and the local API read. Two ways
//! to read, so nobody copies the world on every update:
//! - [`LatestStore::subscribe`] yields each poll's readings as one shared
//!   `Arc<[Reading]>` (a broadcast: every subscriber gets the same allocation);
//! - [`LatestStore::snapshot`] / [`LatestStore::get`] read the current table, for a
//!   newcomer, an HTTP request, or a subscriber that lagged and must resynchronise.
//!
//! Writes take a short write lock on a dense table indexed by [`PointIndex`]; the
//! broadcast happens after the table is updated, so a subscriber that sees a batch
//! and then reads the snapshot never sees older data than the batch.

use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

use crate::{model::PointIndex, reading::Reading};

/// Shared readings of one device poll.
pub type ReadingBatch = Arc<[Reading]>;

#[derive(Clone)]
pub struct LatestStore {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Vec<Option<Reading>>>,
    tx: broadcast::Sender<ReadingBatch>,
    capacity: usize,
}

impl LatestStore {
    /// `capacity` is how many batches a slow subscriber may fall behind before it is
    /// told it lagged (and should resynchronise from a snapshot).
    pub fn new(points: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                table: RwLock::new(vec![None; points]),
                tx,
                capacity,
            }),
        }
    }

    /// How many batches a subscriber may fall behind.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Records a batch and hands it to every subscriber.
    pub fn publish(&self, readings: Vec<Reading>) {
        if readings.is_empty() {
            return;
        }
        {
            let mut table = match self.inner.table.write() {
                Ok(t) => t,
                // A panic while holding the lock cannot leave a Reading half-written
                // (they are Copy), so the table is still consistent.
                Err(poisoned) => poisoned.into_inner(),
            };
            for r in &readings {
                if let Some(slot) = table.get_mut(r.point.get()) {
                    *slot = Some(*r);
                }
            }
        }
        // No subscriber is not an error: the table above is still current.
        let _ = self.inner.tx.send(readings.into());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ReadingBatch> {
        self.inner.tx.subscribe()
    }

    pub fn get(&self, point: PointIndex) -> Option<Reading> {
        let table = self.inner.table.read().unwrap_or_else(|p| p.into_inner());
        table.get(point.get()).copied().flatten()
    }

    pub fn snapshot(&self) -> Vec<Option<Reading>> {
        self.inner
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Quality, Raw, Timestamp, Value};

    fn r(i: u32, v: f64) -> Reading {
        Reading {
            point: PointIndex(i),
            value: Some(Value::Analog(v)),
            quality: Quality::Good,
            ts: Timestamp(i64::from(i)),
            raw: Raw::None,
            range: Default::default(),
        }
    }

    #[tokio::test]
    async fn subscribers_share_one_batch_and_snapshot_is_current() {
        let store = LatestStore::new(3, 8);
        let mut a = store.subscribe();
        let mut b = store.subscribe();
        store.publish(vec![r(0, 1.0), r(2, 3.0)]);
        let ba = a.recv().await.unwrap();
        let bb = b.recv().await.unwrap();
        assert!(Arc::ptr_eq(&ba, &bb), "batch must be shared, not copied");
        let snap = store.snapshot();
        assert_eq!(snap[0].unwrap().value, Some(Value::Analog(1.0)));
        assert!(snap[1].is_none());
        assert_eq!(
            store.get(PointIndex(2)).unwrap().value,
            Some(Value::Analog(3.0))
        );
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told() {
        let store = LatestStore::new(1, 2);
        let mut rx = store.subscribe();
        for i in 0..5 {
            store.publish(vec![r(0, f64::from(i))]);
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
        assert_eq!(
            store.get(PointIndex(0)).unwrap().value,
            Some(Value::Analog(4.0))
        );
    }
}
