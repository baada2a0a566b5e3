//! The report's tables, each described once: its name (the `--table` value and the JSON
//! key), its columns (JSON/CSV key, header, unit, which outputs show it) and how its rows
//! are taken from the [`Analysis`]. The terminal ([`super::render`]), the HTML page
//! ([`super::html`]), JSON and CSV ([`super::json`]) all read these descriptions, so adding
//! a column or a table is one change here (plus the golden files), and the `--table` list in
//! `--help` is [`TABLES`].
//!
//! What a writer still decides itself is layout: how many rows it shows (`--top`, the last
//! 31 days), the notes under a table, and the charts. The cluster summary block and the
//! efficiency spread are laid out by hand (a metric per row, not a record per row); their
//! JSON/CSV records ([`SUMMARY`], [`EFFICIENCY`]) are tables like the others.
//!
//! The column order here is the JSON/CSV order, which is a contract (`docs/reports.md`).
//! Where the terminal and HTML show a column elsewhere, or print it differently, the column
//! is listed twice with disjoint [`Shown`] sets.

use super::analyze::{Analysis, DayUsage, Efficiency, Measured, NodeUsage, StateCount, Usage};
use super::thousands;
use Unit::{Amount, Count, MeanHours, Name, Percent};

/// One value of a table cell, unrounded.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Str(String),
    Int(u64),
    Num(f64),
    /// `null` in JSON, empty in CSV.
    Null,
}

impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(v)
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Cell::Num(v)
    }
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

/// Column alignment in the terminal and HTML tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// What a column holds; decides how the terminal and HTML print it and how it aligns.
/// (JSON and CSV always carry the unrounded [`Cell`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A name or a date: as is, left-aligned.
    Name,
    /// Jobs, users, CPUs: `1,234`; `?` when unknown.
    Count,
    /// Hours, GB-hours, GB: see [`num`].
    Amount,
    /// An average in hours: one decimal, `-` when undefined.
    MeanHours,
    /// A percentage: `45.2%`, `-` when undefined.
    Percent,
}

impl Unit {
    /// How the column aligns.
    pub fn align(self) -> Align {
        match self {
            Unit::Name => Align::Left,
            _ => Align::Right,
        }
    }

    /// The cell as the terminal and HTML print it.
    pub fn text(self, c: &Cell) -> String {
        match (self, c) {
            (_, Cell::Str(s)) => s.clone(),
            (_, Cell::Int(n)) => thousands(*n),
            (Unit::Name, Cell::Null) => String::new(),
            (Unit::Count, Cell::Null) => "?".into(),
            (_, Cell::Null) => "-".into(),
            (Unit::MeanHours, Cell::Num(v)) => hours(Some(*v)),
            (Unit::Percent, Cell::Num(v)) => pct(Some(*v)),
            (_, Cell::Num(v)) => num(*v),
        }
    }
}

/// Hours and other amounts: whole numbers with thousands separators from 100 up, one
/// decimal below (a small test cluster still shows something).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 99.95 {
        let r = v.abs().round() as u64;
        let s = thousands(r);
        if v < 0.0 {
            format!("-{s}")
        } else {
            s
        }
    } else {
        format!("{v:.1}")
    }
}

/// A percentage, or `-` when undefined.
pub fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}%"))
}

/// Hours with one decimal, or `-`.
pub fn hours(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// An output that shows tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Terminal,
    Html,
    /// JSON and CSV.
    Data,
}

/// The outputs a column appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    terminal: bool,
    html: bool,
    data: bool,
}

impl Shown {
    /// Everywhere.
    pub const ALL: Shown = Shown {
        terminal: true,
        html: true,
        data: true,
    };
    /// JSON and CSV only: detail the tables for people leave out.
    pub const DATA: Shown = Shown {
        terminal: false,
        html: false,
        data: true,
    };
    /// The terminal and HTML only.
    pub const PEOPLE: Shown = Shown {
        terminal: true,
        html: true,
        data: false,
    };
    /// HTML, JSON and CSV: the terminal has no room for it.
    pub const NOT_TERMINAL: Shown = Shown {
        terminal: false,
        html: true,
        data: true,
    };
    /// The terminal only.
    pub const TERMINAL: Shown = Shown {
        terminal: true,
        html: false,
        data: false,
    };

    /// Whether `view` shows the column.
    pub fn has(self, view: View) -> bool {
        match view {
            View::Terminal => self.terminal,
            View::Html => self.html,
            View::Data => self.data,
        }
    }
}

/// Measured data a column holds. The terminal and HTML leave out a column of data no job
/// in the report has (a site without GPU accounting gets one note instead of a column of
/// `-`); JSON and CSV always carry it, `null` / empty, so their keys do not depend on the
/// site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// GPU utilisation (`gres/gpuutil`).
    Gpu,
    /// An energy plugin (`ConsumedEnergyRaw`).
    Energy,
}

impl Needs {
    /// Whether a report with `m` shows a column that needs `self`.
    pub fn met(self, m: Measured) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::Gpu => m.gpu,
            Needs::Energy => m.energy,
        }
    }
}

/// One column of a table of `R` rows.
pub struct Column<R> {
    /// The JSON key and CSV header.
    pub key: &'static str,
    /// The header in the terminal and HTML tables.
    pub header: &'static str,
    pub unit: Unit,
    pub shown: Shown,
    /// The measured data the column needs to be shown to people.
    pub needs: Needs,
    /// The cell of a row.
    pub value: fn(&R) -> Cell,
}

impl<R> Column<R> {
    /// The same column, shown only in `shown`.
    const fn only(self, shown: Shown) -> Self {
        Column { shown, ..self }
    }

    /// The same column, left out for people when no job has the data.
    const fn needs(self, needs: Needs) -> Self {
        Column { needs, ..self }
    }
}

/// A report table: rows of `R` taken from the analysis, and their columns.
pub struct Table<R: 'static> {
    /// The `--table` value and the JSON key.
    pub name: &'static str,
    /// One record (a JSON object, a one-line CSV) rather than a list.
    pub single: bool,
    /// The rows, in report order (every one; writers cut them to `--top`).
    pub rows: fn(&Analysis) -> &[R],
    pub columns: &'static [Column<R>],
}

/// A table laid out for the terminal or HTML: headers, alignment and printed cells.
pub struct Layout {
    pub headers: Vec<&'static str>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl<R> Table<R> {
    fn shown(&self, view: View) -> impl Iterator<Item = &Column<R>> {
        self.columns.iter().filter(move |c| c.shown.has(view))
    }

    /// `rows` (some or all of [`Table::rows`]) laid out for `view` (the terminal or HTML),
    /// without the columns of data `measured` says no job has.
    pub fn layout(&self, rows: &[R], view: View, measured: Measured) -> Layout {
        let cols: Vec<&Column<R>> = self.shown(view).filter(|c| c.needs.met(measured)).collect();
        Layout {
            headers: cols.iter().map(|c| c.header).collect(),
            align: cols.iter().map(|c| c.unit.align()).collect(),
            rows: rows
                .iter()
                .map(|r| cols.iter().map(|c| c.unit.text(&(c.value)(r))).collect())
                .collect(),
        }
    }
}

/// The record of one row: JSON key and value of each column JSON and CSV show.
pub type Record = Vec<(&'static str, Cell)>;

/// A table as JSON and CSV see it, whatever its row type.
pub trait DataTable: Sync {
    /// The `--table` value and the JSON key.
    fn name(&self) -> &'static str;
    /// One record rather than a list.
    fn single(&self) -> bool;
    /// The JSON keys (CSV header), also for an empty table.
    fn keys(&self) -> Vec<&'static str>;
    /// Every row of the table in `a`.
    fn records(&self, a: &Analysis) -> Vec<Record>;
}

impl<R> DataTable for Table<R> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn single(&self) -> bool {
        self.single
    }

    fn keys(&self) -> Vec<&'static str> {
        self.shown(View::Data).map(|c| c.key).collect()
    }

    fn records(&self, a: &Analysis) -> Vec<Record> {
        (self.rows)(a)
            .iter()
            .map(|r| {
                self.shown(View::Data)
                    .map(|c| (c.key, (c.value)(r)))
                    .collect()
            })
            .collect()
    }
}

/// Every table, in the order of the JSON report.
pub const TABLES: &[&dyn DataTable] = &[
    &SUMMARY,
    &CLUSTERS,
    &USERS,
    &GROUPS,
    &PARTITIONS,
    &NODES,
    &DAILY,
    &STATES,
    &EFFICIENCY,
    &TOP_WASTERS,
    &TOP_GPU_WASTERS,
];

/// The table called `name`.
pub fn find(name: &str) -> Option<&'static dyn DataTable> {
    TABLES.iter().copied().find(|t| t.name() == name)
}

/// The table names, comma-separated (help and error text).
pub fn names() -> String {
    let v: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
    v.join(", ")
}

fn whole(a: &Analysis) -> &[Analysis] {
    std::slice::from_ref(a)
}

fn name(s: &str) -> Cell {
    Cell::Str(s.to_string())
}

/// A column every output shows (see [`Column::only`]).
const fn col<R>(
    key: &'static str,
    header: &'static str,
    unit: Unit,
    value: fn(&R) -> Cell,
) -> Column<R> {
    Column {
        key,
        header,
        unit,
        shown: Shown::ALL,
        needs: Needs::Nothing,
        value,
    }
}

// Columns of every usage table (clusters, users, groups, partitions, top wasters).
const JOBS: Column<Usage> = col("jobs", "Jobs", Count, |u| u.jobs.into());
const COMPLETED: Column<Usage> = col("completed_jobs", "Completed", Count, |u| {
    u.completed_jobs.into()
});
const CPU_HOURS: Column<Usage> = col("cpu_hours", "CPU h", Amount, |u| u.cpu_hours.into());
const GPU_HOURS: Column<Usage> = col("gpu_hours", "GPU h", Amount, |u| u.gpu_hours.into());
const MEM_HOURS: Column<Usage> = col("memory_gb_hours", "Mem GB-h", Amount, |u| {
    u.memory_gb_hours.into()
});
const RAM: Column<Usage> = col("ram_gb", "RAM GB", Amount, |u| u.ram_gb.into());
const WAIT: Column<Usage> = col("avg_wait_hours", "Wait h", MeanHours, |u| {
    u.avg_wait_hours.into()
});
const CPU_EFF: Column<Usage> = col("avg_cpu_efficiency", "CPU eff", Percent, |u| {
    u.avg_cpu_efficiency.into()
});
const MEM_EFF: Column<Usage> = col("avg_memory_efficiency", "Mem eff", Percent, |u| {
    u.avg_memory_efficiency.into()
});
const CPU_WASTED: Column<Usage> = col("cpu_hours_wasted", "CPU h wasted", Amount, |u| {
    u.cpu_hours_wasted.into()
});
const MEM_WASTED: Column<Usage> = col("memory_gb_hours_wasted", "Mem GB-h wasted", Amount, |u| {
    u.memory_gb_hours_wasted.into()
});
const GPU_EFF: Column<Usage> = col("gpu_efficiency", "GPU eff", Percent, |u: &Usage| {
    u.gpu.gpu_efficiency.into()
})
.needs(Needs::Gpu);
const GPU_WASTED: Column<Usage> = col("gpu_hours_wasted", "GPU h wasted", Amount, |u: &Usage| {
    u.gpu.gpu_hours_wasted.into()
})
.needs(Needs::Gpu);
const ENERGY: Column<Usage> = col("energy_kwh", "kWh", Amount, |u: &Usage| {
    u.gpu.energy_kwh.into()
})
.needs(Needs::Energy);
const GROUP_OF_USER: Column<Usage> = col("group", "Group", Name, |u| {
    name(u.group.as_deref().unwrap_or_default())
});

/// Per cluster, by CPU hours; the rows add up to the summary. The terminal and HTML show
/// it only when the report holds more than one cluster.
pub const CLUSTERS: Table<Usage> = Table {
    name: "clusters",
    single: false,
    rows: |a| &a.clusters,
    columns: &[
        // The terminal names the jobs of files without a cluster column; HTML leaves it empty.
        col("cluster", "Cluster", Name, |u: &Usage| {
            name(if u.key.is_empty() { "(none)" } else { &u.key })
        })
        .only(Shown::TERMINAL),
        col("cluster", "Cluster", Name, |u: &Usage| name(&u.key)).only(Shown::NOT_TERMINAL),
        JOBS,
        COMPLETED.only(Shown::DATA),
        CPU_HOURS,
        GPU_HOURS,
        MEM_HOURS,
        RAM,
        WAIT,
        CPU_EFF,
        MEM_EFF,
        CPU_WASTED.only(Shown::DATA),
        MEM_WASTED.only(Shown::DATA),
        GPU_EFF,
        GPU_WASTED.only(Shown::NOT_TERMINAL),
        ENERGY,
    ],
};

/// Per user, by CPU hours.
pub const USERS: Table<Usage> = Table {
    name: "users",
    single: false,
    rows: |a| &a.users,
    columns: &[
        col("user", "User", Name, |u| name(&u.key)),
        GROUP_OF_USER,
        JOBS,
        COMPLETED.only(Shown::DATA),
        CPU_HOURS,
        GPU_HOURS,
        MEM_HOURS,
        RAM,
        WAIT,
        CPU_EFF,
        MEM_EFF,
        CPU_WASTED.only(Shown::DATA),
        MEM_WASTED.only(Shown::DATA),
        GPU_EFF,
        GPU_WASTED.only(Shown::NOT_TERMINAL),
        ENERGY,
    ],
};

/// Per research group, by CPU hours.
pub const GROUPS: Table<Usage> = Table {
    name: "groups",
    single: false,
    rows: |a| &a.groups,
    columns: &[
        col("group", "Group", Name, |u| name(&u.key)),
        col("users", "Users", Count, |u| u.users.into()),
        JOBS,
        COMPLETED.only(Shown::DATA),
        CPU_HOURS,
        GPU_HOURS,
        MEM_HOURS,
        RAM.only(Shown::NOT_TERMINAL),
        WAIT.only(Shown::NOT_TERMINAL),
        CPU_EFF,
        MEM_EFF,
        CPU_WASTED.only(Shown::DATA),
        MEM_WASTED.only(Shown::DATA),
        GPU_EFF,
        GPU_WASTED.only(Shown::NOT_TERMINAL),
        ENERGY,
    ],
};

/// Per partition, by CPU hours.
pub const PARTITIONS: Table<Usage> = Table {
    name: "partitions",
    single: false,
    rows: |a| &a.partitions,
    columns: &[
        // The terminal names the jobs without a partition; HTML leaves the cell empty.
        col("partition", "Partition", Name, |u: &Usage| {
            name(if u.key.is_empty() { "(none)" } else { &u.key })
        })
        .only(Shown::TERMINAL),
        col("partition", "Partition", Name, |u: &Usage| name(&u.key)).only(Shown::NOT_TERMINAL),
        JOBS,
        COMPLETED.only(Shown::DATA),
        CPU_HOURS,
        GPU_HOURS,
        MEM_HOURS,
        RAM.only(Shown::NOT_TERMINAL),
        WAIT,
        CPU_EFF,
        MEM_EFF,
        CPU_WASTED.only(Shown::DATA),
        MEM_WASTED.only(Shown::DATA),
        GPU_EFF,
        GPU_WASTED.only(Shown::NOT_TERMINAL),
        ENERGY,
    ],
};

/// Users whose COMPLETED jobs carry GPU utilisation data, by GPU hours wasted. Empty (and
/// not shown to people) on a site without GPU accounting.
pub const TOP_GPU_WASTERS: Table<Usage> = Table {
    name: "top_gpu_wasters",
    single: false,
    rows: |a| &a.top_gpu_wasters,
    columns: &[
        col("user", "User", Name, |u| name(&u.key)),
        GROUP_OF_USER.only(Shown::DATA),
        col("gpu_jobs_measured", "GPU jobs", Count, |u| {
            u.gpu.gpu_measured_jobs.into()
        }),
        col("gpu_hours_measured", "GPU h measured", Amount, |u| {
            u.gpu.gpu_hours_measured.into()
        }),
        GPU_WASTED,
        GPU_EFF,
    ],
};

/// Rows of [`TOP_WASTERS`] the terminal and HTML show ("Top 10 wasters"); JSON and CSV
/// hold every user.
pub const TOP_WASTERS_SHOWN: usize = 10;

/// Users with COMPLETED jobs, by CPU hours wasted.
pub const TOP_WASTERS: Table<Usage> = Table {
    name: "top_wasters",
    single: false,
    rows: |a| &a.top_wasters,
    columns: &[
        col("user", "User", Name, |u| name(&u.key)),
        GROUP_OF_USER.only(Shown::DATA),
        COMPLETED,
        CPU_WASTED,
        MEM_WASTED,
        CPU_EFF,
        MEM_EFF,
    ],
};

const CPU_UTIL: Column<NodeUsage> = col("cpu_utilization", "CPU util", Percent, |n| {
    n.cpu_utilization.into()
});

/// Per node, by CPU hours. People read each count next to its utilisation; the JSON keeps
/// the counts together.
pub const NODES: Table<NodeUsage> = Table {
    name: "nodes",
    single: false,
    rows: |a| &a.nodes,
    columns: &[
        col("node", "Node", Name, |n| name(&n.node)),
        col("jobs", "Jobs", Count, |n| n.jobs.into()),
        col("cpu_hours", "CPU h", Amount, |n| n.cpu_hours.into()),
        col("gpu_hours", "GPU h", Amount, |n| n.gpu_hours.into()),
        col("cpus", "CPUs", Count, |n| n.cpus.into()),
        CPU_UTIL.only(Shown::PEOPLE),
        col("gpus", "GPUs", Count, |n| n.gpus.into()),
        CPU_UTIL.only(Shown::DATA),
        col("gpu_utilization", "GPU util", Percent, |n| {
            n.gpu_utilization.into()
        }),
        col("gpu_efficiency", "GPU eff", Percent, |n: &NodeUsage| {
            n.gpu.gpu_efficiency.into()
        })
        .needs(Needs::Gpu),
        col(
            "gpu_hours_wasted",
            "GPU h wasted",
            Amount,
            |n: &NodeUsage| n.gpu.gpu_hours_wasted.into(),
        )
        .needs(Needs::Gpu)
        .only(Shown::NOT_TERMINAL),
        col("energy_kwh", "kWh", Amount, |n: &NodeUsage| {
            n.gpu.energy_kwh.into()
        })
        .needs(Needs::Energy),
    ],
};

/// Every date of the window, in order.
pub const DAILY: Table<DayUsage> = Table {
    name: "daily",
    single: false,
    rows: |a| &a.daily,
    columns: &[
        col("date", "Date", Name, |d| Cell::Str(d.date.to_string())),
        col("jobs", "Jobs", Count, |d| d.jobs.into()),
        col("users", "Users", Count, |d| d.users.into()),
        col("cpu_hours", "CPU hours", Amount, |d| d.cpu_hours.into()),
        col("gpu_hours", "GPU hours", Amount, |d| d.gpu_hours.into()),
        col("memory_gb_hours", "Mem GB-hours", Amount, |d| {
            d.memory_gb_hours.into()
        }),
    ],
};

/// Jobs per state, most first.
pub const STATES: Table<StateCount> = Table {
    name: "states",
    single: false,
    rows: |a| &a.states,
    columns: &[
        col("state", "State", Name, |s| name(&s.state)),
        col("jobs", "Jobs", Count, |s| s.jobs.into()),
        col("percent", "Share", Percent, |s| s.percent.into()),
        col("cpu_hours", "CPU h", Amount, |s| s.cpu_hours.into()),
    ],
};

/// Cluster-wide totals: one record. The terminal and HTML lay the summary out by hand.
pub const SUMMARY: Table<Analysis> = Table {
    name: "summary",
    single: true,
    rows: whole,
    columns: &[
        col("jobs", "Jobs", Count, |a| a.summary.jobs.into()),
        col("completed_jobs", "Completed", Count, |a| {
            a.summary.completed_jobs.into()
        }),
        col("running_jobs", "Running", Count, |a| {
            a.summary.running_jobs.into()
        }),
        col("pending_jobs", "Pending", Count, |a| {
            a.summary.pending_jobs.into()
        }),
        col("users", "Users", Count, |a| a.summary.users.into()),
        col("groups", "Groups", Count, |a| a.summary.groups.into()),
        col("partitions", "Partitions", Count, |a| {
            a.summary.partitions.into()
        }),
        col("nodes", "Nodes", Count, |a| a.summary.nodes.into()),
        col("cpu_hours", "CPU hours", Amount, |a| {
            a.summary.cpu_hours.into()
        }),
        col("gpu_hours", "GPU hours", Amount, |a| {
            a.summary.gpu_hours.into()
        }),
        col("memory_gb_hours", "Memory GB-hours", Amount, |a| {
            a.summary.memory_gb_hours.into()
        }),
        col("ram_gb", "RAM allocated (GB)", Amount, |a| {
            a.summary.ram_gb.into()
        }),
        col("avg_wait_hours", "Average wait (hours)", MeanHours, |a| {
            a.summary.avg_wait_hours.into()
        }),
        col("avg_cpu_efficiency", "CPU efficiency", Percent, |a| {
            a.summary.avg_cpu_efficiency.into()
        }),
        col("avg_memory_efficiency", "Memory efficiency", Percent, |a| {
            a.summary.avg_memory_efficiency.into()
        }),
        col("cpu_hours_wasted", "CPU hours wasted", Amount, |a| {
            a.summary.cpu_hours_wasted.into()
        }),
        col(
            "memory_gb_hours_wasted",
            "Memory GB-hours wasted",
            Amount,
            |a| a.summary.memory_gb_hours_wasted.into(),
        ),
        col("gpu_efficiency", "GPU efficiency", Percent, |a| {
            a.summary.gpu.gpu_efficiency.into()
        }),
        col("gpu_hours_wasted", "GPU hours wasted", Amount, |a| {
            a.summary.gpu.gpu_hours_wasted.into()
        }),
        col("gpu_jobs_measured", "GPU jobs measured", Count, |a| {
            a.summary.gpu.gpu_measured_jobs.into()
        }),
        col("gpu_hours_measured", "GPU hours measured", Amount, |a| {
            a.summary.gpu.gpu_hours_measured.into()
        }),
        col("energy_kwh", "Energy (kWh)", Amount, |a| {
            a.summary.gpu.energy_kwh.into()
        }),
        col("files", "Files", Count, |a| a.summary.files.into()),
        col("files_unreadable", "Files unreadable", Count, |a| {
            (a.unreadable.len() as u64).into()
        }),
        col("duplicates_removed", "Duplicates removed", Count, |a| {
            a.summary.duplicates_removed.into()
        }),
    ],
};

/// Efficiency of COMPLETED jobs: one record. The terminal and HTML show it as
/// [`spread_layout`].
pub const EFFICIENCY: Table<Analysis> = Table {
    name: "efficiency",
    single: true,
    rows: whole,
    columns: &[
        col("completed_jobs", "Completed", Count, |a| {
            a.efficiency.completed_jobs.into()
        }),
        col("avg_cpu_efficiency", "CPU mean", Percent, |a| {
            a.efficiency.cpu.mean.into()
        }),
        col("median_cpu_efficiency", "CPU median", Percent, |a| {
            a.efficiency.cpu.median.into()
        }),
        col("min_cpu_efficiency", "CPU min", Percent, |a| {
            a.efficiency.cpu.min.into()
        }),
        col("max_cpu_efficiency", "CPU max", Percent, |a| {
            a.efficiency.cpu.max.into()
        }),
        col("avg_memory_efficiency", "Memory mean", Percent, |a| {
            a.efficiency.memory.mean.into()
        }),
        col("median_memory_efficiency", "Memory median", Percent, |a| {
            a.efficiency.memory.median.into()
        }),
        col("min_memory_efficiency", "Memory min", Percent, |a| {
            a.efficiency.memory.min.into()
        }),
        col("max_memory_efficiency", "Memory max", Percent, |a| {
            a.efficiency.memory.max.into()
        }),
        col("cpu_hours_wasted", "CPU hours wasted", Amount, |a| {
            a.efficiency.cpu_hours_wasted.into()
        }),
        col(
            "memory_gb_hours_wasted",
            "Memory GB-hours wasted",
            Amount,
            |a| a.efficiency.memory_gb_hours_wasted.into(),
        ),
    ],
};

/// The efficiency spread for people: a metric per row (CPU, memory), its mean, median,
/// minimum and maximum across.
pub fn spread_layout(e: &Efficiency) -> Layout {
    let row = |metric: &str, s: &super::analyze::Spread| {
        vec![
            metric.to_string(),
            pct(s.mean),
            pct(s.median),
            pct(s.min),
            pct(s.max),
        ]
    };
    Layout {
        headers: vec!["Metric", "Mean", "Median", "Min", "Max"],
        align: vec![
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        rows: vec![
            row("CPU efficiency", &e.cpu),
            row("Memory efficiency", &e.memory),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(12345.6), "12,346");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(0.0), "0.0");
        assert_eq!(num(-150.0), "-150");
        assert_eq!(pct(None), "-");
        assert_eq!(pct(Some(45.25)), "45.2%");
        assert_eq!(hours(Some(123.45)), "123.5");
    }

    #[test]
    fn units_print_and_align() {
        assert_eq!(Unit::Count.text(&Cell::Int(1234)), "1,234");
        assert_eq!(Unit::Count.text(&Cell::Null), "?");
        assert_eq!(Unit::Name.text(&Cell::Null), "");
        assert_eq!(Unit::Amount.text(&Cell::Num(1234.4)), "1,234");
        assert_eq!(Unit::MeanHours.text(&Cell::Num(1234.44)), "1234.4");
        assert_eq!(Unit::Percent.text(&Cell::Num(7.25)), "7.2%");
        assert_eq!(Unit::Percent.text(&Cell::Null), "-");
        assert_eq!(Unit::Name.align(), Align::Left);
        assert_eq!(Unit::Amount.align(), Align::Right);
    }

    #[test]
    fn names_are_unique_and_found() {
        for t in TABLES {
            let keys = t.keys();
            assert_eq!(find(t.name()).map(|f| f.keys()), Some(keys.clone()));
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "duplicate key in {}", t.name());
        }
        assert!(find("nope").is_none());
        assert_eq!(
            names(),
            "summary, clusters, users, groups, partitions, nodes, daily, states, efficiency, top_wasters, top_gpu_wasters"
        );
    }

    #[test]
    fn every_view_shows_a_column_at_most_once() {
        fn check<R>(t: &Table<R>) {
            for view in [View::Terminal, View::Html, View::Data] {
                let keys: Vec<&str> = t.shown(view).map(|c| c.key).collect();
                let mut unique = keys.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), keys.len(), "{} in {view:?}", t.name);
            }
        }
        check(&CLUSTERS);
        check(&USERS);
        check(&GROUPS);
        check(&PARTITIONS);
        check(&TOP_WASTERS);
        check(&TOP_GPU_WASTERS);
        check(&NODES);
        check(&DAILY);
        check(&STATES);
        check(&SUMMARY);
        check(&EFFICIENCY);
    }
}
