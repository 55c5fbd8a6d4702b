//! hazgate — an edge gateway that keeps watch over major hazard sources
//! (重大危险源) at chemical sites, and the centre that stores and shows what the
//! gateways send.
//!
//! Data flows one way: [`acquire`] (Modbus polling) → [`judge`] (alarms, four-colour
//! risk) → [`forward`] (durable spool, MQTT) → [`ingest`] at the centre (time-series
//! store, the command-centre screen). Operator commands enter the judge by one path,
//! [`commands`], from MQTT and the local [`api`] alike. [`model`] (configuration and the
//! compiled site) is at the bottom of the graph; [`contract`] is the one home of the
//! MQTT topics and payloads both sides speak; [`sim`] serves a site's devices for
//! demos, training and load tests. The `edge` and `centre` features build either half
//! alone; `docs/architecture.md` has the picture and what each module may import.

// `unwrap()` / `expect()` only where the invariant is proven on the spot (and said so
// in an `allow` beside it); tests may unwrap.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "edge")]
pub mod acquire;
#[cfg(feature = "edge")]
pub mod api;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod cli;
#[cfg(feature = "edge")]
pub mod commands;
pub mod contract;
pub mod durable;
#[cfg(feature = "edge")]
pub mod forward;
#[cfg(feature = "edge")]
pub mod history;
#[cfg(feature = "centre")]
pub mod ingest;
pub mod judge;
pub mod line;
pub mod model;
pub mod reading;
#[cfg(feature = "edge")]
pub mod sim;
#[cfg(feature = "edge")]
pub mod tune;
pub mod vitals;
