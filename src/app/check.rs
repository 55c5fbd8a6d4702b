//! `hazgate check`: validate site files and report every problem with its field path.

use std::{path::PathBuf, process::ExitCode};

use crate::model::{load_site, SiteSource};

pub fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for path in files {
        match load_site(SiteSource::Path(path)) {
            Ok(site) => println!(
                "{}: ok ({} hazard sources, {} channels, {} devices, {} points)",
                path.display(),
                site.hazard_sources.len(),
                site.channels.len(),
                site.devices().count(),
                site.points.len()
            ),
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
