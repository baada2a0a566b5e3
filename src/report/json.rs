//! `analyze --format json` and the tables `--format csv` prints.
//!
//! The JSON shape is a contract (SPEC.md "Contracts"): one object with `period`, `summary`,
//! `users`, `groups`, `partitions`, `nodes`, `daily`, `states`, `efficiency` and
//! `top_wasters`; each list item carries its key (`user`, `group`, `partition`, `node`,
//! `date`, `state`) and snake_case numbers; lists hold every entry; numbers are unrounded;
//! a number nothing defines (the efficiency of a user without COMPLETED jobs) is `null`.
//!
//! Each table's columns are listed once, in [`table`], and both JSON and CSV are written from
//! that list, so the two formats cannot drift apart. Keys keep the order written here
//! (serde_json's `Map` would sort them).

use std::io::{self, Write};

use super::analyze::{Analysis, Usage};

/// One value of a table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Str(String),
    Int(u64),
    Num(f64),
    /// `null` in JSON, empty in CSV.
    Null,
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Cell {
        v.map_or(Cell::Null, Cell::Num)
    }
}

impl From<Option<u64>> for Cell {
    fn from(v: Option<u64>) -> Cell {
        v.map_or(Cell::Null, Cell::Int)
    }
}

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

/// The tables `--table` can name, in the order they appear in the JSON.
pub const TABLES: &[&str] = &[
    "summary",
    "users",
    "groups",
    "partitions",
    "nodes",
    "daily",
    "states",
    "efficiency",
    "top_wasters",
];

/// A table: column names and rows.
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

fn usage_cells(
    key: &'static str,
    u: &Usage,
    with_group: bool,
    with_users: bool,
) -> Vec<(&'static str, Cell)> {
    let mut v = vec![(key, Cell::Str(u.key.clone()))];
    if with_group {
        v.push(("group", Cell::Str(u.group.clone().unwrap_or_default())));
    }
    if with_users {
        v.push(("users", u.users.into()));
    }
    v.extend([
        ("jobs", Cell::Int(u.jobs)),
        ("completed_jobs", Cell::Int(u.completed_jobs)),
        ("cpu_hours", Cell::Num(u.cpu_hours)),
        ("gpu_hours", Cell::Num(u.gpu_hours)),
        ("memory_gb_hours", Cell::Num(u.memory_gb_hours)),
        ("ram_gb", Cell::Num(u.ram_gb)),
        ("avg_wait_hours", u.avg_wait_hours.into()),
        ("avg_cpu_efficiency", u.avg_cpu_efficiency.into()),
        ("avg_memory_efficiency", u.avg_memory_efficiency.into()),
        ("cpu_hours_wasted", Cell::Num(u.cpu_hours_wasted)),
        (
            "memory_gb_hours_wasted",
            Cell::Num(u.memory_gb_hours_wasted),
        ),
    ]);
    v
}

fn waster_cells(u: &Usage) -> Vec<(&'static str, Cell)> {
    vec![
        ("user", Cell::Str(u.key.clone())),
        ("group", Cell::Str(u.group.clone().unwrap_or_default())),
        ("completed_jobs", Cell::Int(u.completed_jobs)),
        ("cpu_hours_wasted", Cell::Num(u.cpu_hours_wasted)),
        (
            "memory_gb_hours_wasted",
            Cell::Num(u.memory_gb_hours_wasted),
        ),
        ("avg_cpu_efficiency", u.avg_cpu_efficiency.into()),
        ("avg_memory_efficiency", u.avg_memory_efficiency.into()),
    ]
}

fn summary_cells(a: &Analysis) -> Vec<(&'static str, Cell)> {
    let s = &a.summary;
    vec![
        ("jobs", Cell::Int(s.jobs)),
        ("completed_jobs", Cell::Int(s.completed_jobs)),
        ("running_jobs", Cell::Int(s.running_jobs)),
        ("pending_jobs", Cell::Int(s.pending_jobs)),
        ("users", Cell::Int(s.users)),
        ("groups", Cell::Int(s.groups)),
        ("partitions", Cell::Int(s.partitions)),
        ("nodes", Cell::Int(s.nodes)),
        ("cpu_hours", Cell::Num(s.cpu_hours)),
        ("gpu_hours", Cell::Num(s.gpu_hours)),
        ("memory_gb_hours", Cell::Num(s.memory_gb_hours)),
        ("ram_gb", Cell::Num(s.ram_gb)),
        ("avg_wait_hours", s.avg_wait_hours.into()),
        ("avg_cpu_efficiency", s.avg_cpu_efficiency.into()),
        ("avg_memory_efficiency", s.avg_memory_efficiency.into()),
        ("cpu_hours_wasted", Cell::Num(s.cpu_hours_wasted)),
        (
            "memory_gb_hours_wasted",
            Cell::Num(s.memory_gb_hours_wasted),
        ),
        ("files", Cell::Int(s.files)),
        ("files_unreadable", Cell::Int(a.unreadable.len() as u64)),
        ("duplicates_removed", Cell::Int(s.duplicates_removed)),
    ]
}

fn efficiency_cells(a: &Analysis) -> Vec<(&'static str, Cell)> {
    let e = &a.efficiency;
    vec![
        ("completed_jobs", Cell::Int(e.completed_jobs)),
        ("avg_cpu_efficiency", e.cpu.mean.into()),
        ("median_cpu_efficiency", e.cpu.median.into()),
        ("min_cpu_efficiency", e.cpu.min.into()),
        ("max_cpu_efficiency", e.cpu.max.into()),
        ("avg_memory_efficiency", e.memory.mean.into()),
        ("median_memory_efficiency", e.memory.median.into()),
        ("min_memory_efficiency", e.memory.min.into()),
        ("max_memory_efficiency", e.memory.max.into()),
        ("cpu_hours_wasted", Cell::Num(e.cpu_hours_wasted)),
        (
            "memory_gb_hours_wasted",
            Cell::Num(e.memory_gb_hours_wasted),
        ),
    ]
}

/// The records of one table, each a list of `(column, value)`.
fn records(a: &Analysis, name: &str) -> Option<Vec<Vec<(&'static str, Cell)>>> {
    Some(match name {
        "summary" => vec![summary_cells(a)],
        "efficiency" => vec![efficiency_cells(a)],
        "users" => a
            .users
            .iter()
            .map(|u| usage_cells("user", u, true, false))
            .collect(),
        "groups" => a
            .groups
            .iter()
            .map(|u| usage_cells("group", u, false, true))
            .collect(),
        "partitions" => a
            .partitions
            .iter()
            .map(|u| usage_cells("partition", u, false, false))
            .collect(),
        "top_wasters" => a.top_wasters.iter().map(waster_cells).collect(),
        "nodes" => a
            .nodes
            .iter()
            .map(|n| {
                vec![
                    ("node", Cell::Str(n.node.clone())),
                    ("jobs", Cell::Int(n.jobs)),
                    ("cpu_hours", Cell::Num(n.cpu_hours)),
                    ("gpu_hours", Cell::Num(n.gpu_hours)),
                    ("cpus", n.cpus.into()),
                    ("gpus", n.gpus.into()),
                    ("cpu_utilization", n.cpu_utilization.into()),
                    ("gpu_utilization", n.gpu_utilization.into()),
                ]
            })
            .collect(),
        "daily" => a
            .daily
            .iter()
            .map(|d| {
                vec![
                    ("date", Cell::Str(d.date.to_string())),
                    ("jobs", Cell::Int(d.jobs)),
                    ("users", Cell::Int(d.users)),
                    ("cpu_hours", Cell::Num(d.cpu_hours)),
                    ("gpu_hours", Cell::Num(d.gpu_hours)),
                    ("memory_gb_hours", Cell::Num(d.memory_gb_hours)),
                ]
            })
            .collect(),
        "states" => a
            .states
            .iter()
            .map(|s| {
                vec![
                    ("state", Cell::Str(s.state.clone())),
                    ("jobs", Cell::Int(s.jobs)),
                    ("percent", Cell::Num(s.percent)),
                    ("cpu_hours", Cell::Num(s.cpu_hours)),
                ]
            })
            .collect(),
        _ => return None,
    })
}

/// The table `name` (one of [`TABLES`]) as columns and rows; `None` for an unknown name.
pub fn table(a: &Analysis, name: &str) -> Option<Table> {
    let recs = records(a, name)?;
    // Column names come from a record; an empty list still has its columns (from a dummy).
    let columns = match recs.first() {
        Some(r) => r.iter().map(|(k, _)| *k).collect(),
        None => empty_columns(name),
    };
    Some(Table {
        columns,
        rows: recs
            .into_iter()
            .map(|r| r.into_iter().map(|(_, v)| v).collect())
            .collect(),
    })
}

fn empty_columns(name: &str) -> Vec<&'static str> {
    let dummy = Usage {
        key: String::new(),
        group: None,
        users: None,
        jobs: 0,
        completed_jobs: 0,
        cpu_hours: 0.0,
        gpu_hours: 0.0,
        memory_gb_hours: 0.0,
        ram_gb: 0.0,
        avg_wait_hours: None,
        avg_cpu_efficiency: None,
        avg_memory_efficiency: None,
        cpu_hours_wasted: 0.0,
        memory_gb_hours_wasted: 0.0,
    };
    let cols = |v: Vec<(&'static str, Cell)>| v.into_iter().map(|(k, _)| k).collect();
    match name {
        "users" => cols(usage_cells("user", &dummy, true, false)),
        "groups" => cols(usage_cells("group", &dummy, false, true)),
        "partitions" => cols(usage_cells("partition", &dummy, false, false)),
        "top_wasters" => cols(waster_cells(&dummy)),
        "nodes" => vec![
            "node",
            "jobs",
            "cpu_hours",
            "gpu_hours",
            "cpus",
            "gpus",
            "cpu_utilization",
            "gpu_utilization",
        ],
        "daily" => vec![
            "date",
            "jobs",
            "users",
            "cpu_hours",
            "gpu_hours",
            "memory_gb_hours",
        ],
        "states" => vec!["state", "jobs", "percent", "cpu_hours"],
        _ => Vec::new(),
    }
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

/// Writes the JSON report: one object with exactly the contract's ten keys, in its order,
/// two-space indented, one list entry per line. What the report was asked (dates, zone,
/// filters) is in `period`.
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
    ];
    writeln!(out, "{{")?;
    writeln!(out, "  \"period\": {},", object(&period))?;
    writeln!(out, "  \"summary\": {},", object(&summary_cells(a)))?;
    for name in ["users", "groups", "partitions", "nodes", "daily", "states"] {
        write_list(out, name, records(a, name).unwrap_or_default(), true)?;
    }
    writeln!(out, "  \"efficiency\": {},", object(&efficiency_cells(a)))?;
    write_list(
        out,
        "top_wasters",
        records(a, "top_wasters").unwrap_or_default(),
        false,
    )?;
    writeln!(out, "}}")
}

fn write_list(
    out: &mut impl Write,
    name: &str,
    recs: Vec<Vec<(&'static str, Cell)>>,
    more: bool,
) -> io::Result<()> {
    let comma = if more { "," } else { "" };
    if recs.is_empty() {
        return writeln!(out, "  \"{name}\": []{comma}");
    }
    writeln!(out, "  \"{name}\": [")?;
    let n = recs.len();
    for (i, r) in recs.iter().enumerate() {
        writeln!(out, "    {}{}", object(r), if i + 1 < n { "," } else { "" })?;
    }
    writeln!(out, "  ]{comma}")
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
