//! The time zone whose calendar days partition the archive.
//!
//! sacct is always run with `TZ=UTC`, so every instant it prints is UTC and is stored as UTC.
//! Only the *date a job belongs to* and the `-S/-E` window of a date depend on the site's zone:
//! that is what this module answers. DST is handled by chrono-tz: a day can be 23 or 25 hours.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer};

/// The configured zone: a named IANA zone, or the system's local zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Zone {
    /// The zone of the machine (`/etc/localtime`, `TZ`).
    #[default]
    Local,
    /// An IANA zone such as `Europe/Amsterdam`.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// A name for messages and Parquet metadata.
    pub fn name(&self) -> String {
        match self {
            Zone::Local => "local".to_string(),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }

    /// The calendar date of a UTC instant in this zone.
    pub fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).date_naive(),
            Zone::Named(tz) => t.with_timezone(tz).date_naive(),
        }
    }

    /// Today in this zone.
    pub fn today(&self) -> NaiveDate {
        self.date_of(Utc::now())
    }

    /// The UTC instant at which `date` begins in this zone. Where midnight does not exist (a
    /// DST gap at 00:00), the first instant of the day.
    pub fn day_start(&self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_hms_opt(0, 0, 0).expect("00:00:00 is a valid time");
        self.resolve(midnight)
    }

    /// The UTC instant at which `date` ends (the start of the next day).
    pub fn day_end(&self, date: NaiveDate) -> DateTime<Utc> {
        self.day_start(date.checked_add_days(Days::new(1)).unwrap_or(date))
    }

    /// Interprets a wall-clock time in this zone (ambiguous: the earlier; gap: shifted forward).
    pub fn resolve(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        fn pick<Z: TimeZone>(z: &Z, wall: NaiveDateTime) -> DateTime<Utc> {
            let mut probe = wall;
            for _ in 0..4 {
                match z.from_local_datetime(&probe) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        return t.with_timezone(&Utc)
                    }
                    LocalResult::None => probe += chrono::Duration::minutes(30),
                }
            }
            Utc.from_utc_datetime(&wall)
        }
        match self {
            Zone::Local => pick(&chrono::Local, wall),
            Zone::Named(tz) => pick(tz, wall),
        }
    }
}

impl FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("local") || s.is_empty() {
            return Ok(Zone::Local);
        }
        chrono_tz::Tz::from_str(s).map(Zone::Named).map_err(|_| {
            format!("unknown time zone {s:?} (hint: an IANA name such as \"Europe/Amsterdam\" or \"UTC\")")
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amsterdam() -> Zone {
        "Europe/Amsterdam".parse().unwrap()
    }

    #[test]
    fn day_bounds_follow_dst() {
        let z = amsterdam();
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(); // spring forward: 23 h
        let hours = (z.day_end(d) - z.day_start(d)).num_hours();
        assert_eq!(hours, 23);
        assert_eq!(z.day_start(d).to_rfc3339(), "2026-03-28T23:00:00+00:00");
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(); // fall back: 25 h
        assert_eq!((z.day_end(d) - z.day_start(d)).num_hours(), 25);
    }

    #[test]
    fn date_of_uses_the_zone() {
        let z = amsterdam();
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 23, 30, 0).unwrap();
        assert_eq!(z.date_of(t), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let utc: Zone = "UTC".parse().unwrap();
        assert_eq!(
            utc.date_of(t),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
    }

    #[test]
    fn unknown_zone_has_a_hint() {
        let err = "Nowhere/Land".parse::<Zone>().unwrap_err();
        assert!(err.contains("IANA"), "{err}");
    }
}
