//! Ingest: the centre's half — gateways' MQTT stream into the time-series store.
//!
//! [`message`] checks each message against the contract's schemas and maps it to
//! points (pure), on the [`decoders`] (a thread per core); [`writer`] puts line
//! protocol into the store; [`service`] subscribes (shared subscription, through the
//! [`subscriber`] loop it shares with the screen), batches, retries and acknowledges
//! only what is stored; [`http`] serves health, metrics and the command-centre
//! [`screen`]. Schema of what is stored: `docs/storage.md`.

pub mod alarm_loop;
pub mod clock;
pub mod decoders;
pub mod gaps;
pub mod http;
pub mod journal;
pub mod ledger;
pub mod message;
pub mod points;
pub mod report;
pub mod schema;
pub mod screen;
pub mod service;
pub mod store_query;
pub mod subscriber;
pub mod tables;
pub mod writer;
