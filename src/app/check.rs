//! `hazgate check`: validate site files (and central ingest files) and report every
//! problem with its field path.

use std::{path::PathBuf, process::ExitCode};

use crate::{
    model::central::IngestConfig,
    model::gas::GasTable,
    model::{load_site, SiteSource},
};

/// A central ingest file has a `[store]` table; a site file never does.
fn is_ingest_config(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("store") && !t.contains_key("gateway"))
}

/// `hazgate gases`: the table guardrails and defaults use, with the site's own entries.
pub fn gases(config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let table = match config {
        Some(path) => load_site(SiteSource::Path(path))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .gases
            .clone(),
        None => GasTable::default(),
    };
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for path in files {
        if is_ingest_config(path) {
            match IngestConfig::load(path) {
                Ok(c) => println!(
                    "{}: ok (ingest: {}:{} group {} → {} bucket {})",
                    path.display(),
                    c.mqtt.host,
                    c.mqtt.port,
                    c.mqtt.group,
                    c.store.url,
                    c.store.bucket
                ),
                Err(e) => {
                    ok = false;
                    eprintln!("{e}");
                }
            }
            continue;
        }
        match load_site(SiteSource::Path(path)) {
            Ok(site) => {
                let name = path
                    .file_name()
                    .unwrap_or(path.as_os_str())
                    .to_string_lossy();
                for w in &site.warnings {
                    eprintln!("{name}: warning: {w}");
                }
                println!(
                    "{}: ok ({} hazard sources, {} channels, {} devices, {} points)",
                    path.display(),
                    site.hazard_sources.len(),
                    site.channels.len(),
                    site.devices().count(),
                    site.points.len()
                )
            }
            Err(e) => {
                ok = false;
                eprintln!("{e}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
