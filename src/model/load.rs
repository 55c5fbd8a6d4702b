//! Reading a site file: TOML through the `config` crate, with `HAZGATE__…`
//! environment overrides layered on top (e.g. `HAZGATE__GATEWAY__GATEWAY_ID=gw-02`).

use std::{fmt, path::Path};

use config::{Config, Environment, File, FileFormat};

use super::{file::SiteFile, problems::FieldError, site::Site, validate::compile};

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
    let file = load_site_file(source, true)?;
    let (name, site_file) = file;
    compile(&site_file).map_err(|errors| LoadError { file: name, errors })
}

/// Loads the raw file (no cross-field checks). `env` applies `HAZGATE__` overrides.
pub fn load_site_file(source: SiteSource<'_>, env: bool) -> Result<(String, SiteFile), LoadError> {
    load_toml(source, env)
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
            "not UTF-8 at byte {at} (line {line}): save the file as UTF-8 (a GBK or GB18030 file would show every Chinese name garbled)"
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
