//! `analyze --format json` and the tables `--format csv` prints.
//!
//! The JSON shape is a contract (`docs/reports.md`, "`--format json`"): one object with
//! `period`, `summary`, `clusters`, `users`, `groups`, `partitions`, `nodes`, `daily`,
//! `states`, `efficiency` and `top_wasters`; each list item carries its key (`cluster`,
//! `user`, `group`, `partition`, `node`, `date`, `state`) and snake_case numbers; lists hold every entry;
//! numbers are unrounded; a number nothing defines (the efficiency of a user without
//! COMPLETED jobs) is `null`.
//!
//! The tables and their columns are described once, in [`super::tables`]; JSON and CSV are
//! both written from those descriptions, so the two formats cannot drift apart from each
//! other or from the terminal. Keys keep the order declared there (serde_json's `Map`
//! would sort them).

use std::io::{self, Write};

use super::analyze::Analysis;
use super::tables::{find, Cell, Record, TABLES};

impl Cell {
    fn json(&self) -> String {
        match self {
            // serde_json escapes exactly as JSON requires; it cannot fail for a str or f64.
            Cell::Str(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
            Cell::Int(i) => i.to_string(),
            Cell::Num(f) if f.is_finite() => {
                serde_json::to_string(f).unwrap_or_else(|_| "null".into())
            }
            Cell::Num(_) | Cell::Null => "null".into(),
        }
    }

    /// CSV text: numbers unrounded, strings quoted when they need it (RFC 4180).
    pub fn csv(&self) -> String {
        match self {
            Cell::Str(s) if s.contains([',', '"', '\n', '\r']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Str(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Num(f) if f.is_finite() => f.to_string(),
            Cell::Num(_) | Cell::Null => String::new(),
        }
    }
}

/// A table: column names and rows.
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// The table `name` (one of [`TABLES`]) as columns and rows; `None` for an unknown name.
pub fn table(a: &Analysis, name: &str) -> Option<Table> {
    let t = find(name)?;
    Some(Table {
        columns: t.keys(),
        rows: t
            .records(a)
            .into_iter()
            .map(|r| r.into_iter().map(|(_, v)| v).collect())
            .collect(),
    })
}

fn object(cells: &[(&'static str, Cell)]) -> String {
    let parts: Vec<String> = cells
        .iter()
        .map(|(k, v)| format!("\"{k}\": {}", v.json()))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn opt_str(s: &Option<String>) -> Cell {
    s.as_ref().map_or(Cell::Null, |s| Cell::Str(s.clone()))
}

/// Writes the JSON report: one object with exactly the contract's eleven keys, in its order,
/// two-space indented, one list entry per line. What the report was asked (dates, zone,
/// filters) is in `period`; every other key is a table of [`TABLES`], in that order.
pub fn write_json(a: &Analysis, out: &mut impl Write) -> io::Result<()> {
    let period = vec![
        ("since", Cell::Str(a.since.to_string())),
        ("until", Cell::Str(a.until.to_string())),
        ("timezone", Cell::Str(a.zone.clone())),
        ("days", Cell::Int(a.daily.len() as u64)),
        ("hours", Cell::Num(a.hours)),
        ("user", opt_str(&a.filter.user)),
        ("group", opt_str(&a.filter.group)),
        ("partition", opt_str(&a.filter.partition)),
        ("cluster", opt_str(&a.filter.cluster)),
    ];
    writeln!(out, "{{")?;
    write!(out, "  \"period\": {}", object(&period))?;
    for t in TABLES {
        writeln!(out, ",")?;
        let records = t.records(a);
        match (t.single(), records.first()) {
            (true, Some(r)) => write!(out, "  \"{}\": {}", t.name(), object(r))?,
            _ => write_list(out, t.name(), &records)?,
        }
    }
    writeln!(out)?;
    writeln!(out, "}}")
}

/// A list, one record a line; the caller ends the last line (a comma, or nothing).
fn write_list(out: &mut impl Write, name: &str, recs: &[Record]) -> io::Result<()> {
    if recs.is_empty() {
        return write!(out, "  \"{name}\": []");
    }
    writeln!(out, "  \"{name}\": [")?;
    let n = recs.len();
    for (i, r) in recs.iter().enumerate() {
        writeln!(out, "    {}{}", object(r), if i + 1 < n { "," } else { "" })?;
    }
    write!(out, "  ]")
}

/// Writes one table as CSV with a header line.
pub fn write_csv(t: &Table, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", t.columns.join(","))?;
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(Cell::csv).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(Cell::Str("a\"b".into()).json(), "\"a\\\"b\"");
        assert_eq!(Cell::Num(0.1 + 0.2).json(), "0.30000000000000004");
        assert_eq!(Cell::Num(f64::NAN).json(), "null");
        assert_eq!(Cell::Str("a,b".into()).csv(), "\"a,b\"");
        assert_eq!(Cell::Null.csv(), "");
        assert_eq!(Cell::Num(2.0).csv(), "2");
    }
}
