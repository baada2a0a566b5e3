//! Terminal rendering: aligned box tables and Unicode bar charts that fit the terminal
//! width, with ANSI colour only when asked for (the caller decides: a terminal, no
//! `NO_COLOR`, no `--no-color`). Everything writes into `impl Write`, so tests compare text.
//!
//! Width is measured in `char`s: user, node and partition names are ASCII in practice, and a
//! wide character only makes one row a little longer, never breaks the table.

use std::io::{self, Write};

use super::analyze::{Analysis, DayUsage, NodeUsage, Usage, UNGROUPED};
pub use super::tables::Align;
use super::tables::{
    hours, num, pct, spread_layout, Layout, View, CLUSTERS, DAILY, GROUPS, NODES, PARTITIONS,
    STATES, TOP_GPU_WASTERS, TOP_WASTERS, TOP_WASTERS_SHOWN, USERS,
};
use super::thousands;

/// How to draw: colour or not, and how many columns the terminal has.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
    /// Rows in the per-user/partition/node tables and charts.
    pub top: usize,
}

/// The default width when `$COLUMNS` is unset (we do not query the tty: no extra crate, and
/// `$COLUMNS` is what shells export).
pub const DEFAULT_WIDTH: usize = 100;

impl Style {
    /// Width from `$COLUMNS` (clamped to 60..=250), else [`DEFAULT_WIDTH`].
    pub fn terminal_width() -> usize {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .map_or(DEFAULT_WIDTH, |w| w.clamp(60, 250))
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `w` chars, marking the cut with `…`.
fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(w - 1).collect();
    t.push('…');
    t
}

fn pad(s: &str, w: usize, align: Align) -> String {
    let n = w.saturating_sub(width(s));
    match align {
        Align::Left => format!("{s}{}", " ".repeat(n)),
        Align::Right => format!("{}{s}", " ".repeat(n)),
    }
}

/// Writes a section heading.
pub fn heading(out: &mut impl Write, style: &Style, title: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{}", style.paint("1;36", &format!("═══ {title} ═══")))?;
    writeln!(out)
}

/// Writes an explanatory line, word-wrapped to the terminal width (dimmed in colour).
pub fn note(out: &mut impl Write, style: &Style, text: &str) -> io::Result<()> {
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && width(&line) + 1 + width(word) > style.width {
            writeln!(out, "{}", style.paint("2", &line))?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(out, "{}", style.paint("2", &line))?;
    }
    Ok(())
}

/// Writes a box table. When it is wider than the terminal, the first column shrinks (names
/// cut with `…`), then the rightmost columns are left out, with a note saying which.
pub fn table(
    out: &mut impl Write,
    style: &Style,
    headers: &[&str],
    align: &[Align],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut w: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(w.len()) {
            w[i] = w[i].max(width(c));
        }
    }
    let total = |w: &[usize]| w.iter().sum::<usize>() + 3 * w.len() + 1;
    if total(&w) > style.width && !w.is_empty() {
        let over = total(&w) - style.width;
        w[0] = w[0].saturating_sub(over).max(6.min(w[0]));
    }
    while total(&w) > style.width && w.len() > 2 {
        w.pop();
    }
    let cols = w.len();
    let line = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = w.iter().map(|n| "─".repeat(n + 2)).collect();
        format!("{l}{}{r}", parts.join(m))
    };
    writeln!(out, "{}", line("┌", "┬", "┐"))?;
    let head: Vec<String> = headers
        .iter()
        .take(cols)
        .enumerate()
        .map(|(i, h)| style.paint("1", &pad(&fit(h, w[i]), w[i], align[i])))
        .collect();
    writeln!(out, "│ {} │", head.join(" │ "))?;
    writeln!(out, "{}", line("├", "┼", "┤"))?;
    for r in rows {
        let cells: Vec<String> = (0..cols)
            .map(|i| {
                let c = r.get(i).map_or("", String::as_str);
                pad(&fit(c, w[i]), w[i], align[i])
            })
            .collect();
        writeln!(out, "│ {} │", cells.join(" │ "))?;
    }
    writeln!(out, "{}", line("└", "┴", "┘"))?;
    if cols < headers.len() {
        note(
            out,
            style,
            &format!(
                "Not shown, the terminal is too narrow: {} (widen it, set COLUMNS, or use --format csv).",
                headers[cols..].join(", ")
            ),
        )?;
    }
    Ok(())
}

/// Writes a table laid out from its description ([`super::tables`]).
fn described(out: &mut impl Write, style: &Style, l: &Layout) -> io::Result<()> {
    table(out, style, &l.headers, &l.align, &l.rows)
}

/// How a bar chart colours its bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// Usage: the bigger the hotter (red, yellow, green by share of the largest), as the
    /// Python tool does.
    Usage,
    /// Efficiency in percent: green from 70, yellow from 40, red below.
    Efficiency,
}

/// One bar: label, value, and the text printed after the bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

/// Writes a horizontal bar chart scaled to the largest value (or to 100 for
/// [`Palette::Efficiency`]); eighth blocks give the bars sub-character precision.
pub fn bars(
    out: &mut impl Write,
    style: &Style,
    title: &str,
    items: &[Bar],
    palette: Palette,
) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", style.paint("1", title))?;
    let label_w = items
        .iter()
        .map(|b| width(&b.label))
        .max()
        .unwrap_or(0)
        .min(20);
    let text_w = items.iter().map(|b| width(&b.text)).max().unwrap_or(0);
    let bar_w = style.width.saturating_sub(label_w + text_w + 6).max(10);
    let max = match palette {
        Palette::Efficiency => 100.0,
        Palette::Usage => items.iter().map(|b| b.value).fold(0.0, f64::max),
    };
    for b in items {
        let frac = if max > 0.0 {
            (b.value / max).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let eighths = (frac * bar_w as f64 * 8.0).round() as usize;
        let mut bar = "█".repeat(eighths / 8);
        if !eighths.is_multiple_of(8) {
            bar.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
        }
        let plain_len = width(&bar);
        let color = match palette {
            Palette::Usage if frac > 0.66 => "31",
            Palette::Usage if frac > 0.33 => "33",
            Palette::Usage => "32",
            Palette::Efficiency if b.value >= 70.0 => "32",
            Palette::Efficiency if b.value >= 40.0 => "33",
            Palette::Efficiency => "31",
        };
        writeln!(
            out,
            "  {} {}{} {}",
            pad(&fit(&b.label, label_w), label_w, Align::Left),
            style.paint(color, &bar),
            " ".repeat(bar_w - plain_len.min(bar_w)),
            pad(&b.text, text_w, Align::Right)
        )?;
    }
    writeln!(out)
}

fn share(v: f64, total: f64) -> String {
    if total > 0.0 {
        format!(" ({:.1}%)", 100.0 * v / total)
    } else {
        String::new()
    }
}

fn usage_bars(list: &[Usage], top: usize, get: impl Fn(&Usage) -> f64, unit: &str) -> Vec<Bar> {
    let total: f64 = list.iter().map(&get).sum();
    let mut v: Vec<&Usage> = list.iter().filter(|u| get(u) > 0.0).collect();
    v.sort_by(|a, b| get(b).total_cmp(&get(a)).then_with(|| a.key.cmp(&b.key)));
    v.into_iter()
        .take(top)
        .map(|u| Bar {
            label: u.key.clone(),
            value: get(u),
            text: format!("{} {unit}{}", num(get(u)), share(get(u), total)),
        })
        .collect()
}

fn eff_bars(list: &[Usage], top: usize, get: impl Fn(&Usage) -> Option<f64>) -> Vec<Bar> {
    let mut v: Vec<(&Usage, f64)> = list
        .iter()
        .filter_map(|u| get(u).filter(|&e| e > 0.0).map(|e| (u, e)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.key.cmp(&b.0.key)));
    v.into_iter()
        .take(top)
        .map(|(u, e)| Bar {
            label: u.key.clone(),
            value: e,
            text: format!("{e:.1}%"),
        })
        .collect()
}

fn showing(
    out: &mut impl Write,
    style: &Style,
    shown: usize,
    all: usize,
    what: &str,
) -> io::Result<()> {
    if shown < all {
        note(out, style, &format!("Showing the top {shown} of {all} {what} (all of them: --format json, or --top {all})."))?;
    }
    Ok(())
}

/// Writes the whole report for a terminal.
pub fn write_report(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    let days = a.daily.len();
    writeln!(
        out,
        "{}",
        style.paint(
            "1",
            &format!(
                "Job efficiency report: {} .. {} ({}, {days} day{})",
                a.since,
                a.until,
                a.zone,
                if days == 1 { "" } else { "s" }
            )
        )
    )?;
    let f = &a.filter;
    let filters: Vec<String> = [
        ("cluster", &f.cluster),
        ("user", &f.user),
        ("group", &f.group),
        ("partition", &f.partition),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect();
    if !filters.is_empty() {
        writeln!(out, "Only jobs with {}", filters.join(", "))?;
    }
    for u in &a.unreadable {
        writeln!(
            out,
            "{}",
            style.paint("33", &format!("warning: skipped {u}"))
        )?;
    }
    if a.is_empty() {
        writeln!(out)?;
        writeln!(out, "No jobs between {} and {}.", a.since, a.until)?;
        return Ok(());
    }
    summary(a, style, out)?;
    clusters(a, style, out)?;
    daily(a, style, out)?;
    users(a, style, out)?;
    groups(a, style, out)?;
    partitions(a, style, out)?;
    nodes(a, style, out)?;
    efficiency(a, style, out)?;
    states(a, style, out)
}

fn summary(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    let s = &a.summary;
    heading(out, style, "Cluster summary")?;
    let top_states: Vec<String> = a
        .states
        .iter()
        .take(3)
        .map(|st| format!("{} {}", st.state, thousands(st.jobs)))
        .collect();
    let rows = vec![
        vec!["Jobs".into(), thousands(s.jobs)],
        vec![
            "  completed / running / pending".into(),
            format!(
                "{} / {} / {}",
                thousands(s.completed_jobs),
                thousands(s.running_jobs),
                thousands(s.pending_jobs)
            ),
        ],
        vec!["Users".into(), thousands(s.users)],
        vec!["CPU hours".into(), num(s.cpu_hours)],
        vec!["GPU hours".into(), num(s.gpu_hours)],
        vec!["Memory GB-hours".into(), num(s.memory_gb_hours)],
        vec!["RAM allocated (GB)".into(), num(s.ram_gb)],
        vec!["Average wait (hours)".into(), hours(s.avg_wait_hours)],
        vec![
            "CPU efficiency (completed, avg)".into(),
            pct(s.avg_cpu_efficiency),
        ],
        vec![
            "Memory efficiency (completed, avg)".into(),
            pct(s.avg_memory_efficiency),
        ],
        vec!["Top job states".into(), top_states.join(", ")],
    ];
    let mut rows = rows;
    rows.extend(
        gpu_summary(a)
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v]),
    );
    table(
        out,
        style,
        &["Metric", "Value"],
        &[Align::Left, Align::Right],
        &rows,
    )?;
    if s.duplicates_removed > 0 {
        note(
            out,
            style,
            &format!(
                "{} older duplicate record{} ignored (newest processed_date wins).",
                thousands(s.duplicates_removed),
                if s.duplicates_removed == 1 { "" } else { "s" }
            ),
        )?;
    }
    Ok(())
}

/// The summary's GPU and energy lines, shared with the HTML cards: measured figures where
/// jobs carry them; where GPUs were reserved but no job carries utilisation, one line
/// saying so (not a column of zeros anywhere); nothing about energy without an energy
/// plugin.
pub fn gpu_summary(a: &Analysis) -> Vec<(&'static str, String)> {
    let s = &a.summary;
    let m = a.measured();
    let mut rows = Vec::new();
    if m.gpu {
        rows.push((
            "GPU efficiency (completed, upper bound)",
            pct(s.gpu.gpu_efficiency),
        ));
        rows.push((
            "GPU hours wasted (completed, lower bound)",
            s.gpu.gpu_hours_wasted.map_or("-".into(), num),
        ));
    } else if s.gpu_hours > 0.0 {
        rows.push(("GPU efficiency", NO_GPU_DATA.into()));
    }
    if m.energy {
        rows.push(("Energy (kWh)", s.gpu.energy_kwh.map_or("-".into(), num)));
    }
    rows
}

/// What a report says, once, when GPUs were reserved but sacct gave no GPU utilisation.
pub const NO_GPU_DATA: &str = "no GPU accounting data";

/// Why measured GPU figures are bounds (`docs/metrics.md`).
pub const GPU_BOUND_NOTE: &str = "GPU utilisation is each job's busiest step at its sampled peak: efficiency is an upper bound, GPU hours wasted a lower bound.";

/// The clusters table, only when the report holds more than one cluster (with one, it
/// would repeat the summary).
fn clusters(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    if a.clusters.len() < 2 {
        return Ok(());
    }
    heading(out, style, "Resource usage by cluster")?;
    described(
        out,
        style,
        &CLUSTERS.layout(&a.clusters, View::Terminal, a.measured()),
    )?;
    note(
        out,
        style,
        "A job is its cluster and job id: the same id on two clusters is two jobs.",
    )?;
    writeln!(out)?;
    bars(
        out,
        style,
        "CPU hours by cluster",
        &usage_bars(&a.clusters, style.top, |u| u.cpu_hours, "h"),
        Palette::Usage,
    )
}

/// At most this many days are listed in the terminal; JSON and CSV hold them all.
const TERMINAL_DAYS: usize = 31;

fn daily(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Daily usage")?;
    let skip = a.daily.len().saturating_sub(TERMINAL_DAYS);
    let shown = &a.daily[skip..];
    described(
        out,
        style,
        &DAILY.layout(shown, View::Terminal, a.measured()),
    )?;
    if skip > 0 {
        note(
            out,
            style,
            &format!(
                "Showing the last {} of {} days (all: --format csv --table daily).",
                shown.len(),
                a.daily.len()
            ),
        )?;
    }
    note(
        out,
        style,
        &format!(
            "Each job's hours are split over the days it ran ({}).",
            a.zone
        ),
    )?;
    writeln!(out)?;
    let day_bars = |get: &dyn Fn(&DayUsage) -> f64, unit: &str| -> Vec<Bar> {
        shown
            .iter()
            .map(|d| Bar {
                label: d.date.format("%m-%d %a").to_string(),
                value: get(d),
                text: format!("{} {unit}", num(get(d))),
            })
            .collect()
    };
    bars(
        out,
        style,
        "CPU hours per day",
        &day_bars(&|d| d.cpu_hours, "h"),
        Palette::Usage,
    )?;
    if shown.iter().any(|d| d.gpu_hours > 0.0) {
        bars(
            out,
            style,
            "GPU hours per day",
            &day_bars(&|d| d.gpu_hours, "h"),
            Palette::Usage,
        )?;
    }
    Ok(())
}

fn users(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Resource usage by user")?;
    let shown = &a.users[..a.users.len().min(style.top)];
    described(
        out,
        style,
        &USERS.layout(shown, View::Terminal, a.measured()),
    )?;
    showing(out, style, shown.len(), a.users.len(), "users")?;
    note(out, style, "Efficiency: average over each user's COMPLETED jobs. Hours are reserved hours (allocation x elapsed).")?;
    writeln!(out)?;
    bars(
        out,
        style,
        "CPU hours by user",
        &usage_bars(&a.users, style.top, |u| u.cpu_hours, "h"),
        Palette::Usage,
    )?;
    bars(
        out,
        style,
        "GPU hours by user",
        &usage_bars(&a.users, style.top, |u| u.gpu_hours, "h"),
        Palette::Usage,
    )?;
    bars(
        out,
        style,
        "CPU efficiency by user (completed jobs)",
        &eff_bars(&a.users, style.top, |u| u.avg_cpu_efficiency),
        Palette::Efficiency,
    )?;
    bars(
        out,
        style,
        "Memory efficiency by user (completed jobs)",
        &eff_bars(&a.users, style.top, |u| u.avg_memory_efficiency),
        Palette::Efficiency,
    )
}

fn groups(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Resource usage by research group")?;
    described(
        out,
        style,
        &GROUPS.layout(&a.groups, View::Terminal, a.measured()),
    )?;
    if a.groups.iter().all(|g| g.key == UNGROUPED) {
        note(
            out,
            style,
            "No research groups configured: add a [groups] table to the config.",
        )?;
    }
    writeln!(out)?;
    bars(
        out,
        style,
        "CPU hours by group",
        &usage_bars(&a.groups, style.top, |u| u.cpu_hours, "h"),
        Palette::Usage,
    )?;
    bars(
        out,
        style,
        "GPU hours by group",
        &usage_bars(&a.groups, style.top, |u| u.gpu_hours, "h"),
        Palette::Usage,
    )
}

fn partitions(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Resource usage by partition")?;
    let shown = &a.partitions[..a.partitions.len().min(style.top)];
    described(
        out,
        style,
        &PARTITIONS.layout(shown, View::Terminal, a.measured()),
    )?;
    showing(out, style, shown.len(), a.partitions.len(), "partitions")?;
    writeln!(out)?;
    bars(
        out,
        style,
        "CPU hours by partition",
        &usage_bars(&a.partitions, style.top, |u| u.cpu_hours, "h"),
        Palette::Usage,
    )
}

fn nodes(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Node usage")?;
    if a.nodes.is_empty() {
        writeln!(out, "No job in the window ran on a node yet.")?;
        return Ok(());
    }
    let shown = &a.nodes[..a.nodes.len().min(style.top)];
    described(
        out,
        style,
        &NODES.layout(shown, View::Terminal, a.measured()),
    )?;
    showing(out, style, shown.len(), a.nodes.len(), "nodes")?;
    match &a.node_counts_unavailable {
        Some(why) => note(out, style, &format!("Node CPU/GPU counts unavailable ({why}): utilisation not computed."))?,
        None => note(
            out,
            style,
            &format!("Utilisation: the node's share of each job's hours over its CPUs (GPUs) x {:.1} hours; counts from sinfo.", a.hours),
        )?,
    }
    writeln!(out)?;
    let util = utilisation_bars(a, style.top, |n| n.cpu_utilization);
    if util.is_empty() {
        let list: Vec<Bar> = a
            .nodes
            .iter()
            .take(style.top)
            .filter(|n| n.cpu_hours > 0.0)
            .map(|n| Bar {
                label: n.node.clone(),
                value: n.cpu_hours,
                text: format!("{} h", num(n.cpu_hours)),
            })
            .collect();
        bars(out, style, "CPU hours by node", &list, Palette::Usage)?;
    } else {
        bars(out, style, "CPU utilisation by node", &util, Palette::Usage)?;
    }
    let gpu = utilisation_bars(a, style.top, |n| {
        n.gpu_utilization.filter(|_| n.gpu_hours > 0.0)
    });
    bars(out, style, "GPU utilisation by node", &gpu, Palette::Usage)
}

/// The `top` nodes by a utilisation (percent), highest first, ties by name.
fn utilisation_bars(a: &Analysis, top: usize, get: impl Fn(&NodeUsage) -> Option<f64>) -> Vec<Bar> {
    let mut list: Vec<Bar> = (a.nodes.iter())
        .filter_map(|n| get(n).map(|u| (n, u)))
        .map(|(n, u)| Bar {
            label: n.node.clone(),
            value: u,
            text: format!("{u:.1}%"),
        })
        .collect();
    list.sort_by(|x, y| {
        y.value
            .total_cmp(&x.value)
            .then_with(|| x.label.cmp(&y.label))
    });
    list.truncate(top);
    list
}

fn efficiency(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Efficiency (completed jobs)")?;
    let e = &a.efficiency;
    if e.completed_jobs == 0 {
        writeln!(out, "No COMPLETED job in the window.")?;
        return Ok(());
    }
    described(out, style, &spread_layout(e))?;
    note(
        out,
        style,
        &format!(
            "{} completed jobs wasted {} CPU hours and {} memory GB-hours.",
            thousands(e.completed_jobs),
            num(e.cpu_hours_wasted),
            num(e.memory_gb_hours_wasted)
        ),
    )?;
    writeln!(out)?;
    writeln!(out, "{}", style.paint("1", "Top 10 wasters"))?;
    let shown = &a.top_wasters[..a.top_wasters.len().min(TOP_WASTERS_SHOWN)];
    described(
        out,
        style,
        &TOP_WASTERS.layout(shown, View::Terminal, a.measured()),
    )?;
    if a.measured().gpu {
        writeln!(out)?;
        writeln!(out, "{}", style.paint("1", "Top 10 GPU wasters"))?;
        let shown = &a.top_gpu_wasters[..a.top_gpu_wasters.len().min(TOP_WASTERS_SHOWN)];
        described(
            out,
            style,
            &TOP_GPU_WASTERS.layout(shown, View::Terminal, a.measured()),
        )?;
        note(out, style, GPU_BOUND_NOTE)?;
    }
    Ok(())
}

fn states(a: &Analysis, style: &Style, out: &mut impl Write) -> io::Result<()> {
    heading(out, style, "Job states")?;
    described(
        out,
        style,
        &STATES.layout(&a.states, View::Terminal, a.measured()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(width: usize) -> Style {
        Style {
            color: false,
            width,
            top: 15,
        }
    }

    #[test]
    fn tables_align_and_shrink_to_the_width() {
        let mut out = Vec::new();
        let rows = vec![vec![
            "a-very-long-user-name-indeed".to_string(),
            "1".to_string(),
        ]];
        table(
            &mut out,
            &plain(20),
            &["User", "Jobs"],
            &[Align::Left, Align::Right],
            &rows,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 20, "{line:?}");
        }
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn bars_scale_to_the_largest_and_have_no_colour_when_plain() {
        let mut out = Vec::new();
        let items = vec![
            Bar {
                label: "a".into(),
                value: 10.0,
                text: "10".into(),
            },
            Bar {
                label: "b".into(),
                value: 5.0,
                text: "5".into(),
            },
        ];
        bars(&mut out, &plain(40), "T", &items, Palette::Usage).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'));
        let lines: Vec<&str> = text.lines().collect();
        let full = lines[1].matches('█').count();
        let half = lines[2].matches('█').count();
        assert!(full == 2 * half || full == 2 * half + 1, "{text}");
        assert!(lines[1].chars().count() <= 40);
    }

    #[test]
    fn narrow_terminals_drop_columns_and_say_so() {
        let mut out = Vec::new();
        let rows = vec![vec![
            "alice".to_string(),
            "1,234".into(),
            "56.7%".into(),
            "89.0%".into(),
        ]];
        let al = [Align::Left, Align::Right, Align::Right, Align::Right];
        table(
            &mut out,
            &plain(26),
            &["User", "Jobs", "CPU eff", "Mem eff"],
            &al,
            &rows,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 26, "{line:?}");
        }
        assert!(
            text.contains("CPU eff") && text.contains("too narrow"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let s = Style {
            color: true,
            width: 80,
            top: 5,
        };
        assert!(s.paint("1", "x").contains('\x1b'));
        assert_eq!(plain(80).paint("1", "x"), "x");
    }
}
