//! `hazgate check`: validate site files (and central ingest files) and report every
//! problem with its field path.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;

use crate::{
    model::central::IngestConfig,
    model::gas::GasTable,
    model::load::load_site_file,
    model::points_csv::{self, PointRow},
    model::{load_site, SiteSource},
};

/// A central ingest file has a `[store]` table; a site file never does.
fn is_ingest_config(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("store") && !t.contains_key("gateway"))
}

/// `hazgate points export`: the site's points as one CSV table (UTF-8 with BOM, so a
/// spreadsheet opens it as UTF-8), each row naming its hazard source.
pub fn export_points(config: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (_, file, _) =
        load_site_file(SiteSource::Path(config), true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows = file.hazard_sources.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| PointRow::from_point(p, Some(&s.id)))
    });
    match out {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            points_csv::write(std::io::BufWriter::new(f), rows)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => points_csv::write(std::io::stdout().lock(), rows)
            .context("cannot write the table to standard output")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `hazgate gases`: the table guardrails and defaults use, with the site's own entries.
pub fn gases(config: Option<&Path>) -> anyhow::Result<ExitCode> {
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
