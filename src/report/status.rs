//! `slurm-usage status`: what is in the data dir and how fresh it is, from the files alone.

use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{Days, NaiveDate, Utc};

use super::{human_age, human_bytes, thousands};
use crate::store::tracker::{PeekError, Tracker};
use crate::store::{Archive, Kind};
use crate::zone::Zone;

/// Facts about a data dir.
#[derive(Debug, Default)]
pub struct Status {
    /// Where the archive is.
    pub location: PathBuf,
    pub processed_files: usize,
    pub raw_files: usize,
    pub bytes: u64,
    /// Dates with a processed partition (a regular file), sorted.
    pub processed_dates: Vec<NaiveDate>,
    pub tracker: Tracker,
    /// Why the tracker could not be used; `tracker` is then empty, and its "0 complete
    /// dates, last success never" would mislead unless this is said.
    pub tracker_problem: Option<PeekError>,
    /// Moved-aside corrupt files found (in `processed/`, `raw/` and, for the tracker, the top).
    pub corrupt_files: Vec<String>,
    /// The lake's upload state, when `[lake]` is configured.
    pub lake: Option<crate::lake::LakeHealth>,
}

/// Reads the archive's status. Never writes (a corrupt tracker is reported, not moved).
pub fn read_status(archive: &Archive) -> io::Result<Status> {
    let mut s = Status {
        location: archive.location().to_path_buf(),
        ..Status::default()
    };
    for kind in [Kind::Processed, Kind::Raw] {
        let listing = archive.listing(kind)?;
        match kind {
            Kind::Processed => {
                s.processed_files = listing.partitions.len();
                s.processed_dates = listing.partitions.iter().map(|(d, _)| *d).collect();
            }
            Kind::Raw => s.raw_files = listing.partitions.len(),
        }
        s.bytes += listing.bytes;
        let corrupt = listing.corrupt.iter().map(|p| p.display().to_string());
        s.corrupt_files.extend(corrupt);
    }
    let top = archive.corrupt_at_top();
    s.corrupt_files
        .extend(top.iter().map(|p| p.display().to_string()));
    match archive.peek_tracker() {
        Ok(t) => s.tracker = t,
        Err(e) => s.tracker_problem = Some(e),
    }
    Ok(s)
}

/// Renders the status for a terminal; `recent` dates are listed one per line.
pub fn write_status(zone: &Zone, s: &Status, recent: u32, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Data dir:        {}", s.location.display())?;
    writeln!(
        out,
        "Files:           {} processed, {} raw, {}",
        s.processed_files,
        s.raw_files,
        human_bytes(s.bytes)
    )?;
    match (s.processed_dates.first(), s.processed_dates.last()) {
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
    if let Some(l) = &s.lake {
        writeln!(
            out,
            "Lake:            {}{}: {} partitions pending, last upload {}",
            l.url,
            if l.cluster.is_empty() {
                String::new()
            } else {
                format!(" (cluster {})", l.cluster)
            },
            l.pending,
            crate::lake::command::describe_unix(l.last_upload)
        )?;
    }
    if let Some(e) = &s.tracker_problem {
        writeln!(out, "\nwarning: {e}")?;
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
        let has_file = s.processed_dates.binary_search(&date).is_ok();
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
    // Without a usable tracker no date is known complete; the warning above says why, and
    // "is the collector running?" would point the wrong way.
    let tracked = s.tracker_problem.is_none();
    if let (Some(expected), true) = (expected, s.processed_files > 0 && tracked) {
        if newest_complete.is_none_or(|n| n < expected) {
            writeln!(
                out,
                "\nwarning: no date since {expected} is complete; is the collector running? (check `systemctl status slurm-usage`)"
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_count_and_root_copies_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let data = Archive::local(dir.path());
        data.create().unwrap();
        let p = data.prefix(Kind::Processed);
        std::fs::write(p.join("2026-01-02.parquet"), b"data").unwrap();
        std::fs::create_dir(p.join("2026-01-01.parquet")).unwrap();
        std::fs::write(p.join("2026-01-01.parquet").join("part-0.parquet"), b"x").unwrap();
        let copy = dir
            .path()
            .join(".date_completion_tracker.json.corrupt-20260101T000000.000Z");
        std::fs::write(&copy, b"{}").unwrap();
        std::fs::write(data.tracker_name(), b"{not json").unwrap();

        let s = read_status(&data).unwrap();
        assert_eq!(s.processed_files, 1);
        assert_eq!(
            s.processed_dates,
            [NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()]
        );
        assert_eq!(s.bytes, 4, "the directory's size is not data");
        assert_eq!(s.corrupt_files, [copy.display().to_string()]);
        let problem = s.tracker_problem.as_ref().unwrap().to_string();
        assert!(
            problem.contains(&data.tracker_name().display().to_string()),
            "{problem}"
        );

        let mut out = Vec::new();
        write_status(&Zone::Local, &s, 0, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(&format!("Moved aside:     {}", copy.display())),
            "{out}"
        );
        assert!(out.contains("warning: completion tracker"), "{out}");
        assert!(!out.contains("is the collector running"), "{out}");
    }
}
