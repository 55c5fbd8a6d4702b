//! Forward: what leaves the gateway for the park's monitoring centre.
//!
//! [`collect`] turns readings (by exception) and judge events into framed messages in
//! the durable [`spool`]; [`session`] publishes them over MQTT through [`link`] (3.1.1
//! or 5) and removes each on its PUBACK; [`command`] validates and audits remote
//! commands. [`contract`] is the topic and payload contract of `docs/mqtt.md`.

pub mod collect;
pub mod collector;
pub mod delivery;
pub mod encode;
pub mod health;
pub mod link;
pub mod session;
pub mod spool;
pub mod spool_thread;
