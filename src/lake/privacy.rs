//! What leaves the head node: the fields dropped from the lake's copies and the names
//! replaced by keyed pseudonyms (`[lake] drop_fields`, `pseudonymise`,
//! `pseudonym_key_file`; `docs/security.md`).
//!
//! The local archive always keeps everything; only the copy uploaded is rewritten:
//! - a dropped raw field (`SubmitLine`, `WorkDir`, `Comment` by default) is absent from the
//!   lake's raw partitions, and its processed equivalent (`JobName` -> `job_name`) from the
//!   processed ones;
//! - a pseudonymised name (`user`, `account`, `group`) becomes `HMAC-SHA256(key, kind ":"
//!   value)`, 16 hex digits behind a kind prefix (`user-3fa4...`), in every column that
//!   holds it (raw `User` and `UID`, processed `user`; ...). The same name gives the same
//!   pseudonym on every day and cluster under one key, so analysts can still group by it;
//!   a different key gives different pseudonyms.
//!
//! The key never leaves the head node. It is created (32 random bytes, hex, mode 0600) the
//! first time a pseudonymised upload needs it; once uploads were made with a key, a missing
//! or different key stops uploads instead of uploading clear names or mixing pseudonyms of
//! two keys in one lake (`lake sync --rewrite` re-uploads everything under a new key).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::store::Kind;

/// Names that can be pseudonymised, and the columns that hold each: (name, raw fields,
/// processed columns).
pub const PSEUDONYMS: &[(&str, &[&str], &[&str])] = &[
    ("user", &["User", "UID"], &["user"]),
    ("account", &["Account"], &["account"]),
    ("group", &["Group", "GID"], &["group"]),
];

/// Raw fields with a processed column holding the same text: dropping the field drops it.
pub const PROCESSED_EQUIVALENT: &[(&str, &str)] = &[("JobName", "job_name")];

/// Raw fields that identify a row or the partition; they cannot be dropped.
pub const KEPT: &[&str] = &["JobID", "JobIDRaw", "Cluster"];

/// The default `drop_fields`: free text that can hold paths, project names and secrets.
pub fn default_drop_fields() -> Vec<String> {
    ["SubmitLine", "WorkDir", "Comment"]
        .map(String::from)
        .to_vec()
}

/// The default key file.
pub fn default_key_file() -> PathBuf {
    PathBuf::from("/etc/slurm-usage/pseudonym.key")
}

/// Why the rewrite or the key failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(
        "pseudonym key {path} is missing; uploads stop so no clear name leaves this node \
         (the lake holds pseudonyms of key {key_id}: restore the file, or put a new key \
         there and run `slurm-usage lake sync --rewrite` to re-upload everything under it)"
    )]
    KeyMissing { path: PathBuf, key_id: String },
    #[error(
        "pseudonym key {path} is not the key the lake's pseudonyms were made with (it is \
         {found}, the lake holds {recorded}); uploads stop so pseudonyms of two keys never \
         mix (hint: restore the old key, or run `slurm-usage lake sync --rewrite`)"
    )]
    KeyChanged {
        path: PathBuf,
        found: String,
        recorded: String,
    },
    #[error("pseudonym key {path}: {message}")]
    KeyUnusable { path: PathBuf, message: String },
    #[error("cannot rewrite {what} for the lake: {message}")]
    Rewrite { what: String, message: String },
}

/// The site's pseudonym key.
#[derive(Clone)]
pub struct Key {
    key: ring::hmac::Key,
    /// A short, public fingerprint of the key (itself a MAC), recorded with the uploads.
    pub id: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {})", self.id)
    }
}

impl Key {
    /// A key from its secret bytes.
    pub fn from_secret(secret: &[u8]) -> Key {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let id = hex(&ring::hmac::sign(&key, b"slurm-usage pseudonym key id").as_ref()[..4]);
        Key { key, id }
    }

    /// Reads the key file: hex text (whitespace ignored), at least 16 bytes. Refuses a
    /// file others can read.
    pub fn read(path: &Path) -> Result<Option<Key>, PrivacyError> {
        use std::os::unix::fs::PermissionsExt;
        let unusable = |message: String| PrivacyError::KeyUnusable {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unusable(e.to_string())),
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| unusable(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(unusable(format!(
                "mode {:04o} lets others read it; it must be 0600 (chmod 600 {})",
                mode & 0o7777,
                path.display()
            )));
        }
        let hexdigits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let secret = unhex(&hexdigits)
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| unusable("not a key: expected at least 32 hex digits".to_string()))?;
        Ok(Some(Key::from_secret(&secret)))
    }

    /// Creates a new key file (mode 0600, never over an existing file).
    pub fn create(path: &Path) -> Result<Key, PrivacyError> {
        let unusable = |message: String| PrivacyError::KeyUnusable {
            path: path.to_path_buf(),
            message,
        };
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| unusable("no random bytes from the system".to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                unusable(format!(
                    "cannot create it: {e} (hint: create it as root: umask 077; \
                     head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {p}; \
                     chown slurm-usage {p})",
                    p = path.display()
                ))
            })?;
        file.write_all(format!("{}\n", hex(&secret)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| unusable(e.to_string()))?;
        tracing::info!(path = %path.display(), "created a new pseudonym key (0600)");
        Ok(Key::from_secret(&secret))
    }

    /// The pseudonym of `value`, a name of kind `kind` (`user`, `uid`, `account`, ...).
    pub fn pseudonym(&self, kind: &str, value: &str) -> String {
        let mut msg = Vec::with_capacity(kind.len() + 1 + value.len());
        msg.extend_from_slice(kind.as_bytes());
        msg.push(b':');
        msg.extend_from_slice(value.as_bytes());
        let tag = ring::hmac::sign(&self.key, &msg);
        format!("{kind}-{}", hex(&tag.as_ref()[..8]))
    }
}

/// How the copies of one data dir are rewritten for its lake.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    /// Raw fields left out.
    pub drop_raw: Vec<String>,
    /// Processed columns left out.
    pub drop_processed: Vec<String>,
    /// Column -> the pseudonym kind its values get (raw and processed names).
    pub raw_names: BTreeMap<String, String>,
    pub processed_names: BTreeMap<String, String>,
    pub key: Option<Key>,
}

impl Transform {
    /// From the `[lake]` lists (validated by the config) and the key, when one is needed.
    pub fn new(drop_fields: &[String], pseudonymise: &[String], key: Option<Key>) -> Transform {
        let mut t = Transform {
            drop_raw: drop_fields.to_vec(),
            key,
            ..Transform::default()
        };
        t.drop_raw.sort();
        t.drop_raw.dedup();
        for (field, column) in PROCESSED_EQUIVALENT {
            if t.drop_raw.iter().any(|f| f == field) {
                t.drop_processed.push(column.to_string());
            }
        }
        for (name, raw, processed) in PSEUDONYMS {
            if pseudonymise.iter().any(|p| p == name) {
                for f in *raw {
                    let kind = if f.ends_with("ID") {
                        f.to_ascii_lowercase()
                    } else {
                        name.to_string()
                    };
                    t.raw_names.insert(f.to_string(), kind);
                }
                for c in *processed {
                    t.processed_names.insert(c.to_string(), name.to_string());
                }
            }
        }
        t
    }

    /// Whether pseudonyms are made (so a key is needed).
    pub fn needs_key(&self) -> bool {
        !self.raw_names.is_empty() || !self.processed_names.is_empty()
    }

    /// What the lake's copies leave out and pseudonymise, for the record (the key apart):
    /// changing it re-uploads everything.
    pub fn settings(&self) -> String {
        let mut names: Vec<&str> = self.processed_names.values().map(String::as_str).collect();
        names.sort();
        names.dedup();
        format!(
            "drop={};pseudonymise={}",
            self.drop_raw.join(","),
            names.join(",")
        )
    }

    /// [`Transform::settings`] and the key's id, stored in each rewritten copy.
    pub fn signature(&self) -> String {
        format!(
            "{};key={}",
            self.settings(),
            self.key.as_ref().map_or("", |k| k.id.as_str())
        )
    }

    fn for_kind(&self, kind: Kind) -> (&[String], &BTreeMap<String, String>) {
        match kind {
            Kind::Raw => (&self.drop_raw, &self.raw_names),
            Kind::Processed => (&self.drop_processed, &self.processed_names),
        }
    }

    /// Whether `kind`'s copies differ from the local files at all.
    pub fn changes(&self, kind: Kind) -> bool {
        let (drop, names) = self.for_kind(kind);
        !drop.is_empty() || !names.is_empty()
    }

    /// The lake's copy of a local partition of `kind`: the same file when nothing changes
    /// for it, else the file rewritten without the dropped columns and with pseudonyms,
    /// its key-value metadata kept plus `slurm_usage.lake_transform`. `what` names it for
    /// errors.
    pub fn apply(&self, kind: Kind, local: Bytes, what: &str) -> Result<Bytes, PrivacyError> {
        if !self.changes(kind) {
            return Ok(local);
        }
        let fail = |message: String| PrivacyError::Rewrite {
            what: what.to_string(),
            message,
        };
        let (drop, names) = self.for_kind(kind);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(local).map_err(|e| fail(e.to_string()))?;
        let file_meta = builder.metadata().file_metadata().clone();
        let row_group_rows = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows() as usize)
            .max()
            .unwrap_or(1)
            .max(1);
        let schema = builder.schema().clone();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| !drop.iter().any(|d| d == schema.field(i).name()))
            .collect();
        let out_schema = Arc::new(Schema::new_with_metadata(
            keep.iter()
                .map(|&i| {
                    let f = schema.field(i);
                    if names.contains_key(f.name()) {
                        f.as_ref().clone().with_data_type(DataType::Utf8)
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let mut kv: Vec<KeyValue> = file_meta
            .key_value_metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            // The Arrow schema is stored again by the writer, from `out_schema`.
            .filter(|kv| kv.key != "ARROW:schema")
            .collect();
        kv.push(KeyValue::new(
            "slurm_usage.lake_transform".to_string(),
            self.signature(),
        ));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).expect("level 1 is valid"),
            ))
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_key_value_metadata(Some(kv))
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, out_schema.clone(), Some(props))
            .map_err(|e| fail(e.to_string()))?;
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| fail(e.to_string()))?;
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(keep.len());
            for &i in &keep {
                let name = schema.field(i).name();
                let col = batch.column(i);
                columns.push(match names.get(name) {
                    None => col.clone(),
                    Some(kind) => self.pseudonymise_column(col, kind).map_err(&fail)?,
                });
            }
            let out_batch = RecordBatch::try_new(out_schema.clone(), columns)
                .map_err(|e| fail(e.to_string()))?;
            writer.write(&out_batch).map_err(|e| fail(e.to_string()))?;
        }
        writer.close().map_err(|e| fail(e.to_string()))?;
        Ok(Bytes::from(out))
    }

    fn pseudonymise_column(&self, col: &ArrayRef, kind: &str) -> Result<ArrayRef, String> {
        let key = self
            .key
            .as_ref()
            .ok_or("pseudonyms need the key, which was not loaded")?;
        let text = arrow_cast::cast(col, &DataType::Utf8).map_err(|e| e.to_string())?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("not text")?;
        // Names repeat (a user has many jobs): one HMAC per distinct name.
        let mut memo: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
        let out: StringArray = (0..text.len())
            .map(|i| {
                if text.is_null(i) {
                    return None;
                }
                let v = text.value(i);
                if v.is_empty() {
                    return Some(String::new());
                }
                Some(
                    memo.entry(v)
                        .or_insert_with(|| key.pseudonym(kind, v))
                        .clone(),
                )
            })
            .collect();
        Ok(Arc::new(out))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys_and_kinds() {
        let a = Key::from_secret(&[1; 32]);
        let b = Key::from_secret(&[2; 32]);
        assert_eq!(a.pseudonym("user", "alice"), a.pseudonym("user", "alice"));
        assert_ne!(a.pseudonym("user", "alice"), b.pseudonym("user", "alice"));
        assert_ne!(
            a.pseudonym("user", "alice"),
            a.pseudonym("account", "alice")
        );
        assert!(a.pseudonym("user", "alice").starts_with("user-"));
        assert_eq!(a.pseudonym("user", "alice").len(), "user-".len() + 16);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_key_file_is_created_0600_and_read_back_and_a_loose_one_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        assert!(Key::read(&p).unwrap().is_none());
        let k = Key::create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Key::read(&p).unwrap().unwrap().id, k.id);
        assert!(Key::create(&p).is_err(), "never over an existing key");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Key::read(&p).unwrap_err().to_string();
        assert!(e.contains("0644") && e.contains("0600"), "{e}");
    }

    #[test]
    fn drop_and_pseudonymise_map_to_the_columns_of_each_kind() {
        let t = Transform::new(
            &["WorkDir".into(), "JobName".into()],
            &["user".into(), "group".into()],
            Some(Key::from_secret(&[1; 32])),
        );
        assert_eq!(t.drop_processed, ["job_name"]);
        assert_eq!(t.raw_names["User"], "user");
        assert_eq!(t.raw_names["UID"], "uid");
        assert_eq!(t.raw_names["GID"], "gid");
        assert_eq!(t.processed_names["group"], "group");
        assert!(!t.raw_names.contains_key("Account"));
        assert!(t.needs_key());
        let none = Transform::new(&[], &[], None);
        assert!(!none.changes(Kind::Raw) && !none.changes(Kind::Processed));
    }
}
