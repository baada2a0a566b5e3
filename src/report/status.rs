//! `slurm-usage status`: what is in the data dir and how fresh it is, from the files alone.

use std::io::{self, Write};

use chrono::{Days, NaiveDate, Utc};

use super::{human_age, human_bytes, thousands};
use crate::store::tracker::Tracker;
use crate::store::{DataDir, Kind};
use crate::zone::Zone;

/// Facts about a data dir.
#[derive(Debug, Default)]
pub struct Status {
    pub processed_files: usize,
    pub raw_files: usize,
    pub bytes: u64,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub tracker: Tracker,
    /// Moved-aside corrupt files found.
    pub corrupt_files: Vec<String>,
}

/// Reads the data dir's status. Never writes (a corrupt tracker is reported, not moved).
pub fn read_status(data: &DataDir) -> io::Result<Status> {
    let mut s = Status::default();
    for kind in [Kind::Processed, Kind::Raw] {
        let dates = data.dates(kind)?;
        match kind {
            Kind::Processed => {
                s.processed_files = dates.len();
                s.first = dates.first().copied();
                s.last = dates.last().copied();
            }
            Kind::Raw => s.raw_files = dates.len(),
        }
        if let Ok(entries) = std::fs::read_dir(data.dir(kind)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".corrupt-") {
                    s.corrupt_files
                        .push(format!("{}/{name}", data.dir(kind).display()));
                }
                s.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    if let Ok(bytes) = std::fs::read(data.tracker()) {
        s.tracker = serde_json::from_slice(&bytes).unwrap_or_default();
    }
    Ok(s)
}

/// Renders the status for a terminal; `recent` dates are listed one per line.
pub fn write_status(
    data: &DataDir,
    zone: &Zone,
    s: &Status,
    recent: u32,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(out, "Data dir:        {}", data.root.display())?;
    writeln!(
        out,
        "Files:           {} processed, {} raw, {}",
        s.processed_files,
        s.raw_files,
        human_bytes(s.bytes)
    )?;
    match (s.first, s.last) {
        (Some(a), Some(b)) => writeln!(out, "Dates covered:   {a} .. {b}")?,
        _ => writeln!(out, "Dates covered:   none yet (run `slurm-usage collect`)")?,
    }
    writeln!(out, "Complete dates:  {}", s.tracker.completed_dates.len())?;
    match s.tracker.last_success {
        Some(t) => writeln!(
            out,
            "Last success:    {} ({} ago)",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            human_age((Utc::now() - t).num_seconds())
        )?,
        None => writeln!(out, "Last success:    never")?,
    }
    let errors: u64 = s.tracker.dates.values().map(|d| d.parse_errors).sum();
    writeln!(
        out,
        "Parse errors:    {} unparsable sacct lines in the tracked dates",
        thousands(errors)
    )?;
    for c in &s.corrupt_files {
        writeln!(out, "Moved aside:     {c}")?;
    }
    let today = zone.today();
    writeln!(out)?;
    writeln!(
        out,
        "{:<12} {:<11} {:>9} {:>11} {:>9}  Last collected",
        "Date", "State", "Jobs", "Unfinished", "Bad lines"
    )?;
    for i in (0..recent).rev() {
        let Some(date) = today.checked_sub_days(Days::new(i.into())) else {
            continue;
        };
        let key = date.to_string();
        let info = s.tracker.dates.get(&key);
        let has_file = data.partition(Kind::Processed, date).exists();
        let state = if s.tracker.completed_dates.contains(&key) {
            "complete"
        } else if has_file {
            "incomplete"
        } else {
            "missing"
        };
        let last = info
            .and_then(|i| i.last_collected)
            .map(|t| format!("{} ago", human_age((Utc::now() - t).num_seconds())))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<12} {:<11} {:>9} {:>11} {:>9}  {last}",
            key,
            state,
            info.map_or("-".into(), |i| thousands(i.jobs)),
            info.map_or("-".into(), |i| thousands(i.incomplete_jobs)),
            info.map_or("-".into(), |i| thousands(i.parse_errors)),
        )?;
    }
    let newest_complete = s
        .tracker
        .completed_dates
        .iter()
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .max();
    let expected = today.checked_sub_days(Days::new(2));
    if let (Some(expected), true) = (expected, s.processed_files > 0) {
        if newest_complete.is_none_or(|n| n < expected) {
            writeln!(
                out,
                "\nwarning: no date since {expected} is complete; is the collector running? (check `systemctl status slurm-usage`)"
            )?;
        }
    }
    Ok(())
}
