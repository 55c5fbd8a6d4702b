//! The gateway's own history (40号令: 30 days and more): every reading the judge sees,
//! by exception and in full every snapshot period, and every alarm, risk, special-
//! operation and threshold event, on local disk — for `hazgate export`, the local
//! API's trends and `hazgate tune`'s replays.
//!
//! [`codec`] packs a commit window's readings (pure), [`segment`] frames them into
//! append-only files, [`store`] writes with retention and reads back, and [`task`]
//! feeds it from the running gateway. Why this storage: docs/history.md.

pub mod codec;
pub mod filter;
pub mod segment;
pub mod store;
pub mod task;
