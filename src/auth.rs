//! Who may use hazgate's HTTP sides — the gateway's local API and the centre's screen —
//! named bearer tokens, each with a [`Role`].
//!
//! A token is 32 random bytes (`hzg_` + 64 hex digits), shown once when it is made
//! (`hazgate token add NAME --role R`) and stored only as its SHA-256, in a JSON file
//! beside the site file (or where `[api] tokens_path` says) that only its owner may read
//! (mode 0600, checked). A presented token is hashed and compared with every stored
//! hash in constant time. The file is read at each check, so `hazgate token revoke`
//! takes effect at once. Failed attempts are answered ever more slowly, per address.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::reading::Timestamp;

/// Who may send what. Each role may do what the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Acknowledge, shelve and unshelve alarms; start and stop special operations.
    Operator,
    /// Also change thresholds and take points out of service.
    Engineer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
        }
    }
}

/// One stored token: never the token itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredToken {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    pub created: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFile {
    pub tokens: Vec<StoredToken>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the tokens file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the tokens file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
    #[error("the tokens file {path} may be read by others (mode {mode:o}): chmod 600 {path} (or 640, with the service's group, for a packaged gateway)")]
    Exposed { path: String, mode: u32 },
    #[error("cannot write the tokens file {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("a token named `{0}` exists already (revoke it first)")]
    Exists(String),
    #[error("a token name is 1-64 letters, digits, `-`, `_` or `.`; got `{0}`")]
    BadName(String),
}

/// The default tokens file of a configuration file: `{file}.tokens.json`.
pub fn beside(config: &Path) -> PathBuf {
    crate::model::beside(config, ".tokens.json")
}

fn hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TokenFile {
    /// The file's tokens; none when it does not exist. Refused when others may read it.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let p = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(AuthError::Read { path: p, source }),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|source| AuthError::Read {
                    path: p.clone(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o777;
            // Group read is allowed: a packaged gateway's tokens are root's, readable
            // by the service's group (0640 root:hazgate). Nothing more.
            if mode & 0o037 != 0 {
                return Err(AuthError::Exposed { path: p, mode });
            }
        }
        serde_json::from_slice(&bytes).map_err(|e| AuthError::Invalid {
            path: p,
            message: e.to_string(),
        })
    }

    /// Who a presented token is, if it is one of ours. Every stored hash is compared,
    /// in constant time, whatever matches first.
    pub fn verify(&self, presented: &str) -> Option<(&str, Role)> {
        let h = hash(presented);
        let mut found = None;
        for t in &self.tokens {
            let stored = unhex(&t.sha256).unwrap_or([0; 32]);
            if bool::from(stored.ct_eq(&h)) {
                found = Some((t.name.as_str(), t.role));
            }
        }
        found
    }

    /// Writes the file (mode 0600, by rename: never a torn file).
    fn save(&self, path: &Path) -> Result<(), AuthError> {
        let write = |source| AuthError::Write {
            path: path.display().to_string(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        crate::durable::replace(path, &bytes, crate::durable::Access::Owner).map_err(write)
    }
}

/// Makes a new token for `name` with `role`; returns the token (shown once).
pub fn add(path: &Path, name: &str, role: Role) -> Result<String, AuthError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        return Err(AuthError::BadName(name.to_string()));
    }
    let mut file = TokenFile::load(path)?;
    if file.tokens.iter().any(|t| t.name == name) {
        return Err(AuthError::Exists(name.to_string()));
    }
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).map_err(
        |_| AuthError::Write {
            path: path.display().to_string(),
            source: std::io::Error::other("no randomness from the system"),
        },
    )?;
    let token = format!("hzg_{}", hex(&secret));
    file.tokens.push(StoredToken {
        name: name.to_string(),
        role,
        sha256: hex(&hash(&token)),
        created: Timestamp::now(),
    });
    file.save(path)?;
    Ok(token)
}

/// Removes the token named `name`; false when there was none.
pub fn revoke(path: &Path, name: &str) -> Result<bool, AuthError> {
    let mut file = TokenFile::load(path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.name != name);
    if file.tokens.len() == before {
        return Ok(false);
    }
    file.save(path)?;
    Ok(true)
}

/// Why a presented token was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// The tokens file cannot be used: every token is refused until it is mended.
    Unusable(AuthError),
    /// Not one of ours (answered after the back-off's wait).
    NotRecognised,
}

/// Who presents `token` from `peer`, per the tokens file at `path`: its name and role.
/// A bad token is answered late ([`Backoff`]), counted and logged; `side` names the
/// HTTP side in logs and metrics.
pub async fn authenticate(
    path: &Path,
    backoff: &Backoff,
    peer: IpAddr,
    token: &str,
    side: &'static str,
) -> Result<(String, Role), Refusal> {
    let owned = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || TokenFile::load(&owned)).await;
    let loaded = loaded.unwrap_or_else(|e| {
        Err(AuthError::Read {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })
    });
    let file = match loaded {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(side, error = %e, "the tokens file cannot be used; every token is refused");
            return Err(Refusal::Unusable(e));
        }
    };
    if let Some((name, role)) = file.verify(token) {
        backoff.succeeded(peer);
        return Ok((name.to_string(), role));
    }
    let wait = backoff.failed(peer);
    metrics::counter!("hazgate_auth_failures_total", "side" => side).increment(1);
    tracing::warn!(side, %peer, "a token was refused");
    tokio::time::sleep(wait).await;
    Err(Refusal::NotRecognised)
}

/// Slows down whoever keeps presenting bad tokens: each failure from an address doubles
/// the wait before its next answer (from 100 ms, at most 5 s); a success clears it.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<IpAddr, u32>>,
}

impl Backoff {
    /// Records a failure; returns how long to wait before answering it.
    pub fn failed(&self, from: IpAddr) -> Duration {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood from many addresses cannot grow memory without limit.
        if m.len() > 10_000 {
            m.clear();
        }
        let n = m.entry(from).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_millis(100u64.saturating_mul(1 << (*n - 1).min(6)))
            .min(Duration::from_secs(5))
    }

    pub fn succeeded(&self, from: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_verified_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let op = add(&path, "op-zhang", Role::Operator).unwrap();
        let eng = add(&path, "eng-wu", Role::Engineer).unwrap();
        assert!(op.starts_with("hzg_") && op.len() == 68);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&op[4..]), "the token itself is never stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let f = TokenFile::load(&path).unwrap();
        assert_eq!(f.verify(&op), Some(("op-zhang", Role::Operator)));
        assert_eq!(f.verify(&eng), Some(("eng-wu", Role::Engineer)));
        assert_eq!(f.verify("hzg_00"), None);
        assert_eq!(f.verify(&op[..67]), None, "one character short");
        assert!(matches!(
            add(&path, "op-zhang", Role::Viewer),
            Err(AuthError::Exists(_))
        ));
        assert!(matches!(
            add(&path, "a b", Role::Viewer),
            Err(AuthError::BadName(_))
        ));
        assert!(revoke(&path, "op-zhang").unwrap());
        assert!(!revoke(&path, "op-zhang").unwrap());
        assert_eq!(TokenFile::load(&path).unwrap().verify(&op), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_tokens_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        add(&path, "op", Role::Operator).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = TokenFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        for refused in [0o660, 0o604, 0o650] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(refused)).unwrap();
            assert!(TokenFile::load(&path).is_err(), "mode {refused:o}");
        }
        // The service's group may read it (a packaged gateway: 0640 root:hazgate).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(TokenFile::load(&path).unwrap().tokens.len(), 1);
    }

    #[test]
    fn failures_slow_down_and_a_success_resets() {
        let b = Backoff::default();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let waits: Vec<u64> = (0..9).map(|_| b.failed(ip).as_millis() as u64).collect();
        assert_eq!(
            waits,
            vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        b.succeeded(ip);
        assert_eq!(b.failed(ip), Duration::from_millis(100));
    }
}
