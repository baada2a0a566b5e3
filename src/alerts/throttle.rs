//! The throttle record: who was mailed when (`alerts-state.json` in the data dir), so nobody
//! gets two mails in one `[alerts] every` period.
//!
//! Read and written through the archive ([`Archive::read_alerts_state`],
//! [`Archive::write_alerts_state`]: a temp file, fsync, rename), and only under the alerts
//! lock ([`Archive::try_lock_alerts`]), so a daemon's round and a manual `alerts --send`
//! never both send. Each delivered mail is recorded and saved at once, before the next one
//! goes out: a failure later in the round (or a crash) never loses the record of a mail
//! that went.
//!
//! An unreadable record is an error, not an empty one: starting over would mail everyone
//! again.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::Archive;

/// The record's format version.
const VERSION: u32 = 1;

/// Why the record could not be read or saved. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a throttle record we can read: {message} (hint: fix it, or move it aside to start over, which may mail everyone again)")]
    Parse { path: String, message: String },
    #[error("cannot save {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: crate::store::atomic::WriteError,
    },
}

/// Who was last mailed when, by throttle key (`user:alice`, `group:physics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    pub version: u32,
    pub sent: BTreeMap<String, DateTime<Utc>>,
}

impl Throttle {
    /// The record in `archive`, or an empty one when there is none yet.
    pub fn load(archive: &Archive) -> Result<Throttle, ThrottleError> {
        let path = archive.alerts_state_name().display().to_string();
        let bytes = archive
            .read_alerts_state()
            .map_err(|source| ThrottleError::Read {
                path: path.clone(),
                source,
            })?;
        let Some(bytes) = bytes else {
            return Ok(Throttle {
                version: VERSION,
                sent: BTreeMap::new(),
            });
        };
        let t: Throttle = serde_json::from_slice(&bytes).map_err(|e| ThrottleError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if t.version != VERSION {
            return Err(ThrottleError::Parse {
                path,
                message: format!("version {} (this slurm-usage writes {VERSION})", t.version),
            });
        }
        Ok(t)
    }

    /// When `key` was last mailed, if it was inside the period before `now`.
    pub fn blocked_since(
        &self,
        key: &str,
        now: DateTime<Utc>,
        every: Duration,
    ) -> Option<DateTime<Utc>> {
        let last = *self.sent.get(key)?;
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        (now.signed_duration_since(last) < every).then_some(last)
    }

    /// Notes that `key` was mailed at `at` and saves the record at once.
    pub fn record(
        &mut self,
        archive: &Archive,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ThrottleError> {
        self.sent.insert(key.to_string(), at);
        self.version = VERSION;
        // Serialising a map of strings to timestamps cannot fail.
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        archive
            .write_alerts_state(&bytes)
            .map_err(|source| ThrottleError::Write {
                path: archive.alerts_state_name().display().to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_reload_and_blocks_for_one_period() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        let mut t = Throttle::load(&a).unwrap();
        assert!(t.sent.is_empty());
        let now = Utc::now();
        t.record(&a, "user:alice", now).unwrap();
        let t = Throttle::load(&a).unwrap();
        let week = Duration::from_secs(7 * 86_400);
        assert!(t.blocked_since("user:alice", now, week).is_some());
        assert!(t
            .blocked_since("user:alice", now + chrono::Duration::days(7), week)
            .is_none());
        assert!(t.blocked_since("user:bob", now, week).is_none());
    }

    #[test]
    fn an_unreadable_record_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        std::fs::write(a.alerts_state_name(), b"{not json").unwrap();
        let e = Throttle::load(&a).unwrap_err().to_string();
        assert!(e.contains("alerts-state.json") && e.contains("hint"), "{e}");
    }
}
