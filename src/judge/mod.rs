//! Judge: alarms (ISA-18.2 states) and four-colour risk per hazard source and enterprise.
//!
//! [`settings`] holds limits, defaults and the GB/T 50493 guardrails; [`alarm`] one
//! alarm's state machine; [`risk`] the colour rule table; [`engine`] owns the state of
//! a whole site and is a pure function of (state, input, now) → (state, events);
//! [`service`] runs it as a task between acquisition and the uplink.

pub mod alarm;
pub mod engine;
pub mod risk;
pub mod service;
pub mod settings;
pub mod state;

pub use engine::{Command, CommandError, Engine, Event};
pub use risk::{Colour, RiskConfig};
