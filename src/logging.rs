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
