//! Judge: alarms (ISA-18.2 states) and four-colour risk per hazard source and enterprise.
//!
//! Its configuration (limits, defaults, the GB/T 50493 guardrails, the colour rule
//! table) lives in [`crate::model`]. Here [`alarm`] is one alarm's state machine,
//! [`risk`] applies the colour rule table, [`engine`] owns the state of a whole site
//! and is a pure function of (state, input, now) → (state, events), [`state`] keeps it
//! across restarts and [`service`] runs it as a task between acquisition and the uplink.

pub mod alarm;
pub mod engine;
#[cfg(feature = "edge")]
mod files;
#[cfg(feature = "edge")]
mod persist;
pub mod risk;
#[cfg(feature = "edge")]
pub mod service;
pub mod state;
pub mod wire;

pub use engine::{Command, CommandError, Engine, Event};
