//! What an analysis is asked: the calendar window, the filter, the research groups and the
//! node inventory, bundled as the [`Context`] every pass reads. Nothing here reads the
//! archive; these are built once from the config and the flags.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::AnalyzeError;
use crate::config::Config;
use crate::zone::Zone;

/// The calendar window of a report and its day boundaries.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub zone: Zone,
    /// UTC microseconds at which each date of the window starts, plus the end of the last.
    pub(super) bounds: Vec<i64>,
    /// Where utilisation stops counting: the window's end, or now if that is earlier.
    pub end_micros: i64,
}

impl Window {
    /// `since..=until` in `zone`; `now` caps the time a node could have been used.
    pub fn new(
        since: NaiveDate,
        until: NaiveDate,
        zone: Zone,
        now: DateTime<Utc>,
    ) -> Result<Window, AnalyzeError> {
        if since > until {
            return Err(AnalyzeError::EmptyWindow { since, until });
        }
        let mut bounds = Vec::new();
        let mut d = since;
        while d <= until {
            bounds.push(zone.day_start(d).timestamp_micros());
            match d.checked_add_days(Days::new(1)) {
                Some(n) => d = n,
                None => break,
            }
        }
        bounds.push(zone.day_end(until).timestamp_micros());
        let end_micros = bounds[bounds.len() - 1].min(now.timestamp_micros());
        Ok(Window {
            since,
            until,
            zone,
            bounds,
            end_micros,
        })
    }

    /// `--days N`: today and the N days before it (N+1 dates, as the Python tool does).
    pub fn last_days(days: u32, zone: Zone, now: DateTime<Utc>) -> Result<Window, AnalyzeError> {
        let today = zone.date_of(now);
        let since = today
            .checked_sub_days(Days::new(days.into()))
            .unwrap_or(NaiveDate::MIN);
        Window::new(since, today, zone, now)
    }

    /// Dates in the window.
    pub fn days(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The date of day index `i`.
    pub fn date(&self, i: usize) -> NaiveDate {
        self.since
            .checked_add_days(Days::new(i as u64))
            .unwrap_or(self.until)
    }

    /// Hours from the window's start to [`Window::end_micros`]: the time a node was there to
    /// be used (0 for a window entirely in the future).
    pub fn hours(&self) -> f64 {
        ((self.end_micros - self.bounds[0]).max(0)) as f64 / 3.6e9
    }
}

/// Which jobs count. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this cluster's jobs (the row's `cluster` column).
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub partition: Option<String>,
}

/// User -> research group, from the config's `[groups]`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    map: HashMap<String, String>,
}

/// The group of users that are in none.
pub const UNGROUPED: &str = "ungrouped";

impl Groups {
    /// From the config (validated: a user is in at most one group).
    pub fn from_config(config: &Config) -> Groups {
        let mut map = HashMap::new();
        for (g, users) in &config.groups {
            for u in users {
                map.insert(u.clone(), g.clone());
            }
        }
        Groups { map }
    }

    /// The group of `user`, or [`UNGROUPED`].
    pub fn of<'a>(&'a self, user: &str) -> &'a str {
        self.map.get(user).map_or(UNGROUPED, String::as_str)
    }
}

/// CPU and GPU counts per node, as `sinfo` reports them.
#[derive(Debug, Clone, Default)]
pub struct NodeInventory {
    /// node -> (CPUs, GPUs).
    pub nodes: BTreeMap<String, (u64, u64)>,
    /// Why the counts are missing (sinfo not installed, failed, ...); `None` when they came
    /// from sinfo.
    pub unavailable: Option<String>,
}

impl NodeInventory {
    /// No inventory, and why.
    pub fn unavailable(why: impl Into<String>) -> Self {
        NodeInventory {
            nodes: BTreeMap::new(),
            unavailable: Some(why.into()),
        }
    }
}

/// Everything an analysis needs besides the rows.
#[derive(Debug, Clone)]
pub struct Context {
    pub window: Window,
    pub filter: Filter,
    pub groups: Groups,
    pub inventory: NodeInventory,
    /// Reader threads (at least 1).
    pub threads: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn window_days_follow_the_zone() {
        let z: Zone = "Europe/Amsterdam".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
        let w = Window::last_days(1, z, now).unwrap();
        assert_eq!((w.since, w.until), (d("2026-03-29"), d("2026-03-30")));
        // 23 h on the DST day, then 14 h up to now (12:00 UTC is 14:00 CEST).
        assert_eq!(w.hours(), 23.0 + 14.0);
    }
}
