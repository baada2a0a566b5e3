//! Delivery: a [`Mail`] becomes a MIME message (plain text and HTML alternatives) and goes
//! out over SMTP or through a sendmail program. Blocking: call it from a blocking thread.
//!
//! - SMTP (`[alerts] smtp = "host:port"`): lettre's client, STARTTLS when the server offers
//!   it (rustls on the ring provider, the system's CA roots), plain otherwise, as a local
//!   relay on port 25 usually is. Credentials only from `SLURM_USAGE_SMTP_USER` and
//!   `SLURM_USAGE_SMTP_PASSWORD`, never from the config file (which is world-readable).
//! - sendmail (`[alerts] sendmail = "/usr/sbin/sendmail"`): `sendmail -t -i` with the whole
//!   message on stdin (recipients from its headers; a line with a single dot is not the
//!   end), no shell; its stderr is kept for the error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};

use super::mail::Mail;
use crate::config::{smtp_host_port, AlertsConfig};

/// The environment variable with the SMTP user name.
pub const SMTP_USER_ENV: &str = "SLURM_USAGE_SMTP_USER";
/// The environment variable with the SMTP password.
pub const SMTP_PASSWORD_ENV: &str = "SLURM_USAGE_SMTP_PASSWORD";

/// How long one SMTP command or one sendmail run may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a mail did not go out. Each names the server or program, or the address.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(
        "{address:?} is not a mail address: {source} (hint: fix it in [alerts] of the config)"
    )]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot build the mail: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("cannot use TLS towards {server}: {source}")]
    Tls {
        server: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP server {server}: {source}")]
    Smtp {
        server: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error(
        "failed to start {program:?}: {source} (hint: set [alerts] sendmail to the program's path)"
    )]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program:?} exited with {status}:\n{stderr}")]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{program:?} did not finish within {}s and was killed", TIMEOUT.as_secs())]
    Timeout { program: PathBuf },
}

impl DeliverError {
    /// Whether the rest of the round should wait for the next one: the server is down or
    /// busy, or the program cannot run. A mail the server refused for good (a 5xx for that
    /// recipient) or that sendmail rejected does not stop the others.
    pub fn stops_round(&self) -> bool {
        match self {
            DeliverError::Smtp { source, .. } => !source.is_permanent(),
            DeliverError::Tls { .. }
            | DeliverError::Spawn { .. }
            | DeliverError::Timeout { .. } => true,
            DeliverError::Address { .. } | DeliverError::Build(_) | DeliverError::Failed { .. } => {
                false
            }
        }
    }
}

/// Where mails go.
pub enum Transport {
    Smtp {
        server: String,
        transport: Box<SmtpTransport>,
    },
    Sendmail(PathBuf),
}

impl Transport {
    /// The transport `[alerts]` names. Credentials, when set, come from the environment.
    pub fn from_config(config: &AlertsConfig) -> Result<Transport, DeliverError> {
        if let Some(program) = &config.sendmail {
            return Ok(Transport::Sendmail(program.clone()));
        }
        let server = config.smtp.clone().unwrap_or_default();
        // Validated with the config, so this only fails for a config built by hand.
        let (host, port) = smtp_host_port(&server).unwrap_or((server.clone(), 25));
        let tls = TlsParameters::new(host.clone()).map_err(|source| DeliverError::Tls {
            server: server.clone(),
            source,
        })?;
        let mut builder = SmtpTransport::builder_dangerous(&host)
            .port(port)
            .tls(Tls::Opportunistic(tls))
            .timeout(Some(TIMEOUT));
        if let (Ok(user), Ok(password)) = (
            std::env::var(SMTP_USER_ENV),
            std::env::var(SMTP_PASSWORD_ENV),
        ) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Transport::Smtp {
            server,
            transport: Box::new(builder.build()),
        })
    }

    /// What it is, for messages: `SMTP 127.0.0.1:25` or `/usr/sbin/sendmail`.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { server, .. } => format!("SMTP {server}"),
            Transport::Sendmail(p) => p.display().to_string(),
        }
    }

    /// Delivers one mail from `from`.
    pub fn send(&self, mail: &Mail, from: &str) -> Result<(), DeliverError> {
        let message = message(mail, from)?;
        match self {
            Transport::Smtp { server, transport } => {
                transport
                    .send(&message)
                    .map(|_| ())
                    .map_err(|source| DeliverError::Smtp {
                        server: server.clone(),
                        source,
                    })
            }
            Transport::Sendmail(program) => sendmail(program, &message.formatted()),
        }
    }
}

/// The MIME message of `mail`: plain text and HTML as alternatives, UTF-8.
pub fn message(mail: &Mail, from: &str) -> Result<Message, DeliverError> {
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|source| DeliverError::Address {
                address: a.to_string(),
                source,
            })
    };
    Ok(Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(&mail.to)?)
        .subject(mail.subject.clone())
        .header(lettre::message::header::UserAgent::from(format!(
            "slurm-usage {}",
            env!("CARGO_PKG_VERSION")
        )))
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))?)
}

/// Runs `program -t -i` with `bytes` on stdin, killed after [`TIMEOUT`].
fn sendmail(program: &Path, bytes: &[u8]) -> Result<(), DeliverError> {
    let mut child = Command::new(program)
        .args(["-t", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| DeliverError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits without reading all of it is judged by its exit status.
        let _ = stdin.write_all(bytes);
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DeliverError::Timeout {
                    program: program.to_path_buf(),
                });
            }
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(DeliverError::Failed {
            program: program.to_path_buf(),
            status,
            stderr: stderr.trim_end().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            key: "user:alice".into(),
            to: "alice@example.org".into(),
            subject: "Your jobs".into(),
            text: "Ask for `--mem=4G`.\n.\nend".into(),
            html: "<p>Ask for <code>--mem=4G</code>.</p>".into(),
        }
    }

    #[test]
    fn a_message_has_both_parts_and_the_headers() {
        let m = message(&mail(), "hpc@example.org").unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("To: alice@example.org"), "{text}");
        assert!(text.contains("From: hpc@example.org"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("text/plain") && text.contains("text/html"),
            "{text}"
        );
        assert!(message(
            &Mail {
                to: "not an address".into(),
                ..mail()
            },
            "hpc@example.org"
        )
        .is_err());
    }

    #[test]
    fn sendmail_gets_the_message_on_stdin_and_its_failure_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.eml");
        let ok = dir.path().join("ok.sh");
        std::fs::write(
            &ok,
            format!(
                "#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\n",
                out.display()
            ),
        )
        .unwrap();
        let bad = dir.path().join("bad.sh");
        std::fs::write(
            &bad,
            "#!/bin/sh\ncat >/dev/null\necho 'no such user' >&2\nexit 67\n",
        )
        .unwrap();
        for p in [&ok, &bad] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Transport::Sendmail(ok)
            .send(&mail(), "hpc@example.org")
            .unwrap();
        let sent = std::fs::read_to_string(&out).unwrap();
        assert!(sent.contains("To: alice@example.org"), "{sent}");
        let args = std::fs::read_to_string(dir.path().join("out.eml.args")).unwrap();
        assert_eq!(args.trim(), "-t -i");
        let e = Transport::Sendmail(bad)
            .send(&mail(), "hpc@example.org")
            .unwrap_err();
        assert!(e.to_string().contains("no such user"), "{e}");
        assert!(!e.stops_round());
        let e = Transport::Sendmail(dir.path().join("missing"))
            .send(&mail(), "hpc@example.org")
            .unwrap_err();
        assert!(e.stops_round(), "{e}");
    }
}
