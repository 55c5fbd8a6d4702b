//! Reading a site file: TOML through the `config` crate, with `HAZGATE__…`
//! environment overrides layered on top (e.g. `HAZGATE__GATEWAY__GATEWAY_ID=gw-02`).

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use config::{Config, Environment, File, FileFormat};

use super::{
    file::SiteFile,
    points_csv,
    problems::{FieldError, Problems},
    site::Site,
    validate::compile,
};

/// Why a configuration could not be used. Each line names the file and the field.
#[derive(Debug)]
pub struct LoadError {
    pub file: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Where the text of a site comes from.
pub enum SiteSource<'a> {
    Path(&'a Path),
    /// Embedded text (the built-in demo site), with a name for messages.
    Text {
        name: &'a str,
        toml: &'a str,
    },
}

/// Loads, overrides from the environment, validates and compiles a site.
pub fn load_site(source: SiteSource<'_>) -> Result<Site, LoadError> {
    let (name, site_file, origins) = load_site_file(source, true)?;
    compile_site(name, &site_file, &origins)
}

/// Validates and compiles what [`load_site_file`] read; problems in tabled points are
/// reported at their table's line and column.
pub fn compile_site(name: String, file: &SiteFile, origins: &Origins) -> Result<Site, LoadError> {
    compile(file).map_err(|errors| LoadError {
        file: name,
        errors: origins.locate(errors),
    })
}

/// Loads the file and its CSV point tables (no cross-field checks). `env` applies
/// `HAZGATE__` overrides.
pub fn load_site_file(
    source: SiteSource<'_>,
    env: bool,
) -> Result<(String, SiteFile, Origins), LoadError> {
    let base = match &source {
        SiteSource::Path(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        SiteSource::Text { .. } => PathBuf::new(),
    };
    let (name, mut file) = load_toml::<SiteFile>(source, env)?;
    let mut errors = Problems::default();
    let origins = attach_point_tables(&mut file, &base, &mut errors);
    if errors.is_empty() {
        Ok((name, file, origins))
    } else {
        Err(LoadError {
            file: name,
            errors: errors.into_vec(),
        })
    }
}

/// Where the points that came from CSV tables came from, so a problem found when the
/// site is compiled is reported at the table's line and column, not at a point path
/// the site file does not have.
#[derive(Debug, Default)]
pub struct Origins(Vec<SourceOrigins>);

#[derive(Debug, Default)]
struct SourceOrigins {
    /// Points written in the site file; those after them came from tables.
    written: usize,
    rows: Vec<(Arc<str>, u64)>,
}

impl Origins {
    /// Rewrites `hazard_sources[s].points[p].field` of a tabled point as
    /// `table.csv:line` with the column.
    pub fn locate(&self, errors: Vec<FieldError>) -> Vec<FieldError> {
        errors.into_iter().map(|e| self.locate_one(e)).collect()
    }

    fn locate_one(&self, e: FieldError) -> FieldError {
        let Some((si, pi, rest)) = point_path(&e.path) else {
            return e;
        };
        let Some(origin) = self.0.get(si) else {
            return e;
        };
        let Some((file, line)) = pi
            .checked_sub(origin.written)
            .and_then(|i| origin.rows.get(i))
        else {
            return e;
        };
        let message = match rest {
            "" => e.message,
            field => format!("column `{}`: {}", points_csv::column_of(field), e.message),
        };
        FieldError {
            path: format!("{file}:{line}"),
            message,
        }
    }
}

/// `hazard_sources[1].points[40].alarms.h` → (1, 40, "alarms.h").
fn point_path(path: &str) -> Option<(usize, usize, &str)> {
    let rest = path.strip_prefix("hazard_sources[")?;
    let (si, rest) = rest.split_once("].points[")?;
    let (pi, rest) = rest.split_once(']')?;
    Some((
        si.parse().ok()?,
        pi.parse().ok()?,
        rest.strip_prefix('.').unwrap_or(rest),
    ))
}

/// Appends each source's `points_csv` rows to its points, then the site-wide table's
/// rows to the sources they name.
fn attach_point_tables(file: &mut SiteFile, base: &Path, errors: &mut Problems) -> Origins {
    let mut origins: Vec<SourceOrigins> = file
        .hazard_sources
        .iter()
        .map(|s| SourceOrigins {
            written: s.points.len(),
            rows: Vec::new(),
        })
        .collect();
    for (si, source) in file.hazard_sources.iter_mut().enumerate() {
        let Some(csv) = source.points_csv.clone() else {
            continue;
        };
        let label: Arc<str> = csv.as_str().into();
        let table = points_csv::read(&base.join(&csv), &csv, source.points_encoding, errors);
        for (line, named, point) in table.rows {
            if let Some(other) = named.filter(|n| !n.is_empty() && *n != source.id) {
                errors.push(
                    format!("{csv}:{line}"),
                    format!(
                        "column `hazard_source`: `{other}` in the table of hazard source `{}`",
                        source.id
                    ),
                );
                continue;
            }
            source.points.push(point);
            origins[si].rows.push((Arc::clone(&label), line));
        }
    }
    if let Some(csv) = file.points_csv.clone() {
        let label: Arc<str> = csv.as_str().into();
        let table = points_csv::read(&base.join(&csv), &csv, file.points_encoding, errors);
        for (line, named, point) in table.rows {
            let at = format!("{csv}:{line}");
            let Some(named) = named.filter(|n| !n.is_empty()) else {
                errors.push(at, "column `hazard_source`: required in the site-wide table (points_csv at the top of the site file)");
                continue;
            };
            let Some(si) = file.hazard_sources.iter().position(|s| s.id == named) else {
                errors.push(
                    at,
                    format!(
                        "column `hazard_source`: no hazard source `{named}`; the site has {}",
                        file.hazard_sources
                            .iter()
                            .map(|s| s.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            file.hazard_sources[si].points.push(point);
            origins[si].rows.push((Arc::clone(&label), line));
        }
    }
    Origins(origins)
}

/// Reads any TOML configuration (site file, central ingest file) into `T`, with
/// `HAZGATE__…` environment overrides when `env`; a type error names its field path.
pub fn load_toml<T: serde::de::DeserializeOwned>(
    source: SiteSource<'_>,
    env: bool,
) -> Result<(String, T), LoadError> {
    let (name, builder) = match source {
        SiteSource::Path(p) => {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string());
            if !p.is_file() {
                return Err(single(
                    name,
                    "",
                    format!("cannot read {}: no such file", p.display()),
                ));
            }
            let bytes = std::fs::read(p).map_err(|e| {
                single(
                    name.clone(),
                    "",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            let text = utf8(bytes).map_err(|m| single(name.clone(), "", m))?;
            (
                name,
                Config::builder().add_source(File::from_str(&text, FileFormat::Toml)),
            )
        }
        SiteSource::Text { name, toml } => (
            name.to_string(),
            Config::builder().add_source(File::from_str(toml, FileFormat::Toml)),
        ),
    };
    let builder = if env {
        builder.add_source(
            Environment::with_prefix("HAZGATE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
    } else {
        builder
    };
    let cfg = builder
        .build()
        .map_err(|e| single(name.clone(), "", e.to_string()))?;
    let value: T = serde_path_to_error::deserialize(cfg).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // config appends its own, less precise "for key `…`"; the path above says it.
        let message = e.into_inner().to_string();
        let message = message.split(" for key `").next().unwrap_or(&message);
        let origin = if env {
            env_variable_for(&path).unwrap_or_else(|| name.clone())
        } else {
            name.clone()
        };
        let (path, message) = super::plain::located(&path, message);
        single(origin, &path, message)
    })?;
    Ok((name, value))
}

/// The `HAZGATE__…` variable that set `path` (or a section above it), if one did: an
/// error there is the variable's, not the file's, and the message should say so.
fn env_variable_for(path: &str) -> Option<String> {
    let path = path.to_ascii_lowercase();
    std::env::vars_os().find_map(|(k, _)| {
        let k = k.to_str()?;
        let key = k
            .strip_prefix("HAZGATE__")?
            .to_ascii_lowercase()
            .replace("__", ".");
        let hit = path == key
            || path.starts_with(&format!("{key}."))
            || key.starts_with(&format!("{path}."));
        hit.then(|| format!("environment variable {k}"))
    })
}

/// The file's text, or where it stops being UTF-8: a GBK / GB18030 file would put
/// every Chinese name on the screen and over MQTT garbled.
fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        format!(
            "not UTF-8 at byte {at} (line {line}): save the file as UTF-8 (a GBK or GB18030 file would show every Chinese name garbled); a CSV point table may stay GBK and say so with points_encoding = \"gbk\""
        )
    })
}

fn single(file: String, path: &str, message: String) -> LoadError {
    LoadError {
        file,
        errors: vec![FieldError {
            path: if path.is_empty() {
                "(file)".into()
            } else {
                path.into()
            },
            message,
        }],
    }
}
