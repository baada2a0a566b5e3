//! [`LakeUrl`]: where a lake is (`s3://bucket/prefix` or `file:///srv/lake`), and
//! [`connect`]: the object store it names, with credentials from the AWS environment and
//! files (never from the config, never logged).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

/// A parsed lake URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeUrl {
    /// As written, without a trailing `/`, for messages.
    pub text: String,
    pub place: Place,
    /// The prefix inside the bucket or directory (may be empty).
    pub prefix: ObjPath,
}

/// The kind of store a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    S3 { bucket: String },
    File { root: PathBuf },
}

/// Why a lake could not be reached or used. Never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("lake {url}: {message}")]
    Config { url: String, message: String },
    #[error("lake {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake {url}: cannot create {root}: {source}")]
    Create {
        url: String,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LakeUrl {
    /// Parses `s3://bucket[/prefix]` or `file:///absolute/path`.
    pub fn parse(url: &str) -> Result<LakeUrl, String> {
        let text = url.trim().trim_end_matches('/').to_string();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("no bucket (expected s3://bucket/prefix)".into());
            }
            let prefix = ObjPath::parse(prefix).map_err(|e| format!("bad prefix: {e}"))?;
            return Ok(LakeUrl {
                place: Place::S3 {
                    bucket: bucket.to_string(),
                },
                prefix,
                text,
            });
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err("a file:// lake needs an absolute path (file:///srv/lake)".into());
            }
            return Ok(LakeUrl {
                place: Place::File {
                    root: PathBuf::from(if rest.is_empty() { "/" } else { rest }),
                },
                prefix: ObjPath::default(),
                text,
            });
        }
        Err("expected s3://bucket/prefix or file:///path".into())
    }

    /// The URL of an object or prefix of this lake, for messages.
    pub fn object_url(&self, key: &ObjPath) -> String {
        match &self.place {
            Place::S3 { bucket } => format!("s3://{bucket}/{key}"),
            Place::File { root } => format!("file://{}/{key}", root.display()),
        }
    }

    /// Whether `text` looks like a lake URL rather than a local path (`--data-dir`).
    pub fn is_url(text: &Path) -> bool {
        let s = text.to_string_lossy();
        s.starts_with("s3://") || s.starts_with("file://")
    }
}

/// Opens the store a URL names. `create`: a `file://` lake's directory is created if
/// missing (writers); readers get an error instead.
///
/// S3 settings come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`), then from `~/.aws/credentials` and `~/.aws/config` (profile
/// `AWS_PROFILE`, default `default`) for what the environment lacks. Requests time out
/// after 60 s (5 s to connect) and are retried 3 times within 30 s, so an endpoint that is
/// down costs a cycle about half a minute, not the object_store default of three.
pub fn connect(url: &LakeUrl, create: bool) -> Result<Arc<dyn ObjectStore>, ConnectError> {
    match &url.place {
        Place::File { root } => {
            if create {
                std::fs::create_dir_all(root).map_err(|source| ConnectError::Create {
                    url: url.text.clone(),
                    root: root.clone(),
                    source,
                })?;
            }
            let fs =
                LocalFileSystem::new_with_prefix(root).map_err(|source| ConnectError::Store {
                    url: url.text.clone(),
                    source,
                })?;
            Ok(Arc::new(fs))
        }
        Place::S3 { bucket } => {
            // Timeouts as keys, not `with_client_options`, which would replace the client
            // settings `from_env` read (AWS_ALLOW_HTTP among them).
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    "5s",
                )
                .with_retry(RetryConfig {
                    backoff: BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(30),
                });
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
            if env("AWS_ACCESS_KEY_ID").is_none() {
                let file = env("AWS_SHARED_CREDENTIALS_FILE")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
                if let Some(creds) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
                    let section = ini_section(&creds, &profile);
                    if let Some(v) = section.get("aws_access_key_id") {
                        b = b.with_access_key_id(v);
                    }
                    if let Some(v) = section.get("aws_secret_access_key") {
                        b = b.with_secret_access_key(v);
                    }
                    if let Some(v) = section.get("aws_session_token") {
                        b = b.with_token(v);
                    }
                }
            }
            if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
                let file = env("AWS_CONFIG_FILE")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws/config")));
                if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
                    let name = if profile == "default" {
                        profile.clone()
                    } else {
                        format!("profile {profile}")
                    };
                    if let Some(region) = ini_section(&text, &name).get("region") {
                        b = b.with_region(region);
                    }
                }
            }
            let s3 = b.build().map_err(|source| ConnectError::Store {
                url: url.text.clone(),
                source,
            })?;
            Ok(Arc::new(s3))
        }
    }
}

/// The `key = value` pairs of `[section]` in an AWS-style INI file.
fn ini_section(text: &str, section: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_and_file_urls() {
        let u = LakeUrl::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!(
            u.place,
            Place::S3 {
                bucket: "bucket".into()
            }
        );
        assert_eq!(u.prefix.as_ref(), "some/prefix");
        assert_eq!(u.text, "s3://bucket/some/prefix");
        let u = LakeUrl::parse("s3://bucket").unwrap();
        assert_eq!(u.prefix.as_ref(), "");
        let u = LakeUrl::parse("file:///srv/lake").unwrap();
        assert_eq!(
            u.place,
            Place::File {
                root: "/srv/lake".into()
            }
        );
        assert!(LakeUrl::parse("s3:///x").unwrap_err().contains("bucket"));
        assert!(LakeUrl::parse("file://rel")
            .unwrap_err()
            .contains("absolute"));
        assert!(LakeUrl::parse("/srv/lake").is_err());
        assert!(LakeUrl::is_url(Path::new("s3://b/p")));
        assert!(!LakeUrl::is_url(Path::new("/var/lib/slurm-usage")));
    }

    #[test]
    fn reads_a_profile_from_an_aws_ini_file() {
        let text = "[default]\naws_access_key_id = A\n# note\n[other]\nAWS_ACCESS_KEY_ID=B\naws_secret_access_key = S\n";
        assert_eq!(ini_section(text, "default")["aws_access_key_id"], "A");
        let o = ini_section(text, "other");
        assert_eq!(o["aws_access_key_id"], "B");
        assert_eq!(o["aws_secret_access_key"], "S");
        assert!(ini_section(text, "missing").is_empty());
    }
}
