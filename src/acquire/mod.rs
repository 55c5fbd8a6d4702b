//! Acquire: Modbus polling of a site's devices into quality-flagged readings.
//!
//! [`plan`] groups points into requests, [`link`] performs them over TCP, RTU or
//! RTU-over-TCP with timeouts and reconnects, [`decode`] turns registers into values,
//! [`device`] polls one device, [`scheduler`] runs one task per channel, and
//! [`latest`] is where every later stage reads from.

pub mod decode;
pub mod device;
pub mod latest;
pub mod link;
pub mod plan;
pub mod scheduler;

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use latest::{LatestStore, ReadingBatch};
pub use scheduler::AcquireStats;

use crate::model::Site;

/// Starts one polling task per channel of `site`, publishing into `store`.
pub fn spawn_acquisition(
    site: Arc<Site>,
    store: LatestStore,
    stats: Arc<AcquireStats>,
    cancel: CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for channel in 0..site.channels.len() {
        tasks.spawn(scheduler::run_channel(
            site.clone(),
            channel,
            store.clone(),
            stats.clone(),
            cancel.clone(),
        ));
    }
    tasks
}
