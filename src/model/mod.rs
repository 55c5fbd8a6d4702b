//! Configuration, at the bottom of the dependency graph: the site model (gateway
//! identity, hazard sources, channels, devices and points) and every section of the
//! gateway's and the centre's files.
//!
//! [`mod@file`] is the site file as written, with its sections beside it ([`alarm`],
//! [`risk`], [`uplink`], [`mqtt`]; [`central`] is the centre's file);
//! [`validate::compile`] checks it — every problem collected by [`problems`] with its
//! field path — and builds the [`site::Site`] that every other stage reads.

pub mod alarm;
pub mod alarm_loop;
pub mod central;
pub mod file;
pub mod gas;
pub mod history;
pub mod load;
pub mod mqtt;
pub mod plain;
pub mod points_csv;
pub mod problems;
pub mod risk;
pub mod site;
pub mod uplink;
pub mod validate;

pub use load::{load_site, LoadError, SiteSource};
pub use site::*;

/// `{config file}{suffix}`: where a file of the gateway's (or the centre's) own lives by
/// default — beside the configuration it belongs to, e.g. `site.toml.state.json`.
pub fn beside(config: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// The built-in demo site, embedded so `hazgate demo` needs no files.
pub const DEMO_SITE_TOML: &str = include_str!("../../firmware-config/demo-site.toml");
