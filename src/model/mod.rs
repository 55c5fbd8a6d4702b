//! The site model: gateway identity, hazard sources, channels, devices and points.
//!
//! [`file`] is the TOML as written; [`validate::compile`] checks it and builds the
//! [`site::Site`] that every other stage reads.

pub mod file;
pub mod gas;
pub mod load;
pub mod site;
pub mod validate;

pub use load::{load_site, LoadError, SiteSource};
pub use site::*;

/// The built-in demo site, embedded so `hazgate demo` needs no files.
pub const DEMO_SITE_TOML: &str = include_str!("../../firmware-config/demo-site.toml");
