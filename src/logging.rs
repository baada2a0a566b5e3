//! tracing setup: journald-friendly under systemd, readable on a terminal.
//!
//! Under systemd (`JOURNAL_STREAM` set) each event is one line prefixed with its syslog
//! priority (`<3>` error ... `<7>` debug), with no timestamp (journald adds its own) and no
//! colour, so `journalctl -p err -u slurm-usage` works. Elsewhere: time, level, fields.
//! `RUST_LOG` always wins over the configured level.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// An error and its causes on one line, `: `-joined like anyhow's `{:#}`, but a cause whose
/// text the line already holds is not said again: most of our messages name their cause
/// (`cannot create the data dir /x: Permission denied (os error 13)`) and also keep it as
/// the error's `source`, which `{:#}` would print a second time.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Prints events as `<priority>message key=value ...` for journald's stream parser.
struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// syslog priority of a tracing level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Whether stderr goes to the journal.
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the global subscriber. `level` is the default when `RUST_LOG` is unset.
/// Calling it twice is harmless (the second call does nothing).
pub fn init(level: &str, color: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    if under_journald() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(JournalFormat)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(color)
            .with_target(false)
            .try_init();
    }
}

/// The level for a CLI run: warnings by default, `-v` info, `-vv` debug, `-q` errors only.
pub fn cli_level(verbose: u8, quiet: u8) -> &'static str {
    match (verbose, quiet) {
        (_, q) if q > 0 => "error",
        (0, _) => "warn",
        (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let said = format!("cannot create the data dir /x: {io}");
        #[derive(Debug)]
        struct Wrapped(String, std::io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.1)
            }
        }
        let err = anyhow::Error::new(Wrapped(said.clone(), io)).context("collection failed");
        assert_eq!(error_chain(&err), format!("collection failed: {said}"));
        // Causes that add something are all kept, in order.
        let err = anyhow::anyhow!("disk full").context("cannot write x");
        assert_eq!(error_chain(&err), "cannot write x: disk full");
    }

    #[test]
    fn priorities_match_syslog() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn verbosity_flags() {
        assert_eq!(cli_level(0, 0), "warn");
        assert_eq!(cli_level(1, 0), "info");
        assert_eq!(cli_level(3, 0), "trace");
        assert_eq!(cli_level(2, 1), "error");
    }
}
