//! Forward: what leaves the gateway for the park's monitoring centre.
//!
//! [`spool`] is the durable store-and-forward queue every outgoing message passes
//! through. The MQTT session, topic contract, payloads and remote commands build on it
//! (issue 4, in progress).

pub mod collect;
pub mod command;
pub mod config;
pub mod contract;
pub mod session;
pub mod spool;
