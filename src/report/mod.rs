//! What people read about the archive: the `analyze` report (aggregated by `analyze` from
//! the processed files `scan` reads; rendered by `render` for the terminal, `json` for JSON
//! and CSV, `html` for one self-contained page; `command` ties window, reading and format
//! together), the seff-like `job` view, `status`, and the `summary` printed after `collect`.
//!
//! Everything renders into `impl Write`, so tests compare text. Nothing here runs sacct or
//! changes the data dir: reports read the Parquet files (and `analyze` asks sinfo for node
//! sizes). What each report means: `docs/reports.md`.

pub mod analyze;
pub mod command;
pub mod html;
pub mod job;
pub mod json;
pub mod render;
pub mod scan;
pub mod status;
pub mod tables;

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// A duration as `3d 4h`, `2h 5m`, `40s`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(3600), "60m");
        assert_eq!(human_age(90_000), "25h 0m");
        assert_eq!(human_age(200_000), "2d 7h");
    }
}
