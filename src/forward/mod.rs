//! Forward: what leaves the gateway for the park's monitoring centre.
//!
//! The [`collector`] task turns readings (by exception, [`collect`]) and judge events
//! into messages ([`encode`], in the contract's types) committed to the durable
//! [`spool`], which one thread owns ([`spool_thread`]). The [`session`] publishes them
//! over MQTT through [`link`] (3.1.1 or 5); [`delivery`] is its pure bookkeeping of
//! what is in flight and what a PUBACK releases. [`health`] is what `/healthz` and
//! `/metrics` say of it. Remote commands enter by `crate::commands`.

pub mod collect;
pub mod collector;
pub mod delivery;
pub mod encode;
pub mod health;
pub mod link;
pub mod session;
pub mod spool;
pub mod spool_thread;
