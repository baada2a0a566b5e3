//! `analyze --html FILE`: one self-contained HTML file with the report's tables and SVG
//! charts, fit to mail to a department head.
//!
//! Self-contained means: inline CSS, charts drawn here as inline SVG, no script, no font, no
//! image or stylesheet from anywhere else, so it opens offline, in a mail client's preview,
//! and prints. Every name from the archive (users, partitions, nodes) is HTML-escaped.

use std::fmt::Write as _;

use super::analyze::{Analysis, DayUsage, Usage};
use super::tables::{
    hours, num, pct, spread_layout, Align, Layout, View, CLUSTERS, DAILY, GROUPS, NODES,
    PARTITIONS, STATES, TOP_GPU_WASTERS, TOP_WASTERS, TOP_WASTERS_SHOWN, USERS,
};
use super::thousands;

/// What the page says about itself.
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Shown in the footer ("2026-11-25 14:03 UTC"); fixed in tests so output is stable.
    pub generated_at: String,
    /// Rows in each table and chart before the rest folds into "all N".
    pub top: usize,
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = "
:root { --cpu:#2563eb; --gpu:#16a34a; --mem:#9333ea; --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; }
* { box-sizing: border-box; }
body { font-family: -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.4; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1rem; margin: 16px 0 6px; }
p.meta, p.note, footer { color: var(--muted); font-size: .9rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .v { font-size: 1.35rem; font-weight: 600; }
.card .k { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; margin: 8px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th.t, td.t { text-align: left; }
th { background: #f9fafb; font-weight: 600; }
tr:nth-child(even) td { background: #fcfcfd; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; font-size: .9rem; margin-bottom: 4px; }
svg { width: 100%; max-width: 640px; height: auto; display: block; }
svg text { font-family: inherit; font-size: 12px; fill: var(--ink); }
svg .axis { stroke: var(--line); }
details summary { cursor: pointer; color: var(--muted); font-size: .9rem; }
.warn { color: #b45309; }
@media print { body { padding: 0; } h2 { break-after: avoid; } figure, table { break-inside: avoid; } }
";

/// Renders the whole page.
pub fn render(a: &Analysis, o: &HtmlOptions) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Slurm usage report {} to {}", a.since, a.until);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(h, "<header><h1>{}</h1>", esc(&title));
    let days = a.daily.len();
    let _ = writeln!(
        h,
        "<p class=\"meta\">{days} day{} in {} &middot; reserved hours (allocation &times; elapsed) &middot; efficiency over COMPLETED jobs</p>",
        if days == 1 { "" } else { "s" },
        esc(&a.zone)
    );
    let f = &a.filter;
    let filters: Vec<String> = [
        ("cluster", &f.cluster),
        ("user", &f.user),
        ("group", &f.group),
        ("partition", &f.partition),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {}", esc(v))))
    .collect();
    if !filters.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"meta\">Only jobs with {}</p>",
            filters.join(", ")
        );
    }
    for u in &a.unreadable {
        let _ = writeln!(h, "<p class=\"warn\">Skipped: {}</p>", esc(u));
    }
    h.push_str("</header>\n");
    if a.is_empty() {
        let _ = writeln!(h, "<p>No jobs between {} and {}.</p>", a.since, a.until);
    } else {
        summary(&mut h, a);
        clusters(&mut h, a, o);
        daily(&mut h, a);
        users(&mut h, a, o);
        groups(&mut h, a, o);
        partitions(&mut h, a, o);
        nodes(&mut h, a, o);
        efficiency(&mut h, a);
        states(&mut h, a);
    }
    let _ = writeln!(
        h,
        "<footer><p>Generated by slurm-usage {} on {} from the processed Parquet archive.</p></footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        esc(&o.generated_at)
    );
    h
}

fn summary(h: &mut String, a: &Analysis) {
    let s = &a.summary;
    h.push_str("<section id=\"summary\">\n<h2>Cluster summary</h2>\n<div class=\"cards\">\n");
    let cards = [
        ("Jobs", thousands(s.jobs)),
        ("Users", thousands(s.users)),
        ("CPU hours", num(s.cpu_hours)),
        ("GPU hours", num(s.gpu_hours)),
        ("Memory GB-hours", num(s.memory_gb_hours)),
        ("RAM allocated (GB)", num(s.ram_gb)),
        ("Average wait (h)", hours(s.avg_wait_hours)),
        ("CPU efficiency", pct(s.avg_cpu_efficiency)),
        ("Memory efficiency", pct(s.avg_memory_efficiency)),
    ];
    for (k, v) in cards.into_iter().chain(super::render::gpu_summary(a)) {
        let _ = writeln!(
            h,
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"k\">{k}</div></div>",
            esc(&v)
        );
    }
    h.push_str("</div>\n");
    let _ = writeln!(
        h,
        "<p class=\"note\">{} completed, {} running, {} pending. {} CPU hours and {} memory GB-hours wasted by completed jobs.</p>",
        thousands(s.completed_jobs),
        thousands(s.running_jobs),
        thousands(s.pending_jobs),
        num(s.cpu_hours_wasted),
        num(s.memory_gb_hours_wasted)
    );
    h.push_str("</section>\n");
}

/// Only when the report holds more than one cluster (with one, it would repeat the summary).
fn clusters(h: &mut String, a: &Analysis, o: &HtmlOptions) {
    if a.clusters.len() < 2 {
        return;
    }
    h.push_str(
        "<section id=\"clusters\">\n<h2>Resource usage by cluster</h2>\n<div class=\"charts\">\n",
    );
    figure(
        h,
        "CPU hours by cluster",
        &hbars_svg(
            &usage_bars(&a.clusters, o.top, |u| u.cpu_hours),
            None,
            Fill::Fixed("var(--cpu)"),
            "CPU hours by cluster",
        ),
    );
    let gpu = usage_bars(&a.clusters, o.top, |u| u.gpu_hours);
    if !gpu.is_empty() {
        figure(
            h,
            "GPU hours by cluster",
            &hbars_svg(
                &gpu,
                None,
                Fill::Fixed("var(--gpu)"),
                "GPU hours by cluster",
            ),
        );
    }
    h.push_str("</div>\n<p class=\"note\">A job is its cluster and job id: the same id on two clusters is two jobs.</p>\n");
    folded_table(
        h,
        &CLUSTERS.layout(&a.clusters, View::Html, a.measured()),
        o.top,
        "clusters",
    );
    h.push_str("</section>\n");
}

fn daily(h: &mut String, a: &Analysis) {
    h.push_str("<section id=\"daily\">\n<h2>Daily usage</h2>\n<div class=\"charts\">\n");
    figure(
        h,
        "CPU hours per day",
        &columns_svg(&a.daily, |d| d.cpu_hours, "var(--cpu)", "CPU hours per day"),
    );
    if a.daily.iter().any(|d| d.gpu_hours > 0.0) {
        figure(
            h,
            "GPU hours per day",
            &columns_svg(&a.daily, |d| d.gpu_hours, "var(--gpu)", "GPU hours per day"),
        );
    }
    h.push_str("</div>\n<p class=\"note\">Each job's hours are split over the days it ran.</p>\n");
    folded_table(
        h,
        &DAILY.layout(&a.daily, View::Html, a.measured()),
        31,
        "days",
    );
    h.push_str("</section>\n");
}

fn usage_bars(
    list: &[Usage],
    top: usize,
    get: impl Fn(&Usage) -> f64,
) -> Vec<(String, f64, String)> {
    let total: f64 = list.iter().map(&get).sum();
    let mut v: Vec<&Usage> = list.iter().filter(|u| get(u) > 0.0).collect();
    v.sort_by(|a, b| get(b).total_cmp(&get(a)).then_with(|| a.key.cmp(&b.key)));
    v.into_iter()
        .take(top)
        .map(|u| {
            let share = if total > 0.0 {
                format!(" ({:.1}%)", 100.0 * get(u) / total)
            } else {
                String::new()
            };
            (u.key.clone(), get(u), format!("{}{share}", num(get(u))))
        })
        .collect()
}

fn eff_bars(
    list: &[Usage],
    top: usize,
    get: impl Fn(&Usage) -> Option<f64>,
) -> Vec<(String, f64, String)> {
    let mut v: Vec<(String, f64, String)> = list
        .iter()
        .filter_map(|u| {
            get(u)
                .filter(|&e| e > 0.0)
                .map(|e| (u.key.clone(), e, format!("{e:.1}%")))
        })
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(top);
    v
}

fn users(h: &mut String, a: &Analysis, o: &HtmlOptions) {
    h.push_str("<section id=\"users\">\n<h2>Resource usage by user</h2>\n<div class=\"charts\">\n");
    figure(
        h,
        "CPU hours by user",
        &hbars_svg(
            &usage_bars(&a.users, o.top, |u| u.cpu_hours),
            None,
            Fill::Fixed("var(--cpu)"),
            "CPU hours by user",
        ),
    );
    let gpu = usage_bars(&a.users, o.top, |u| u.gpu_hours);
    if !gpu.is_empty() {
        figure(
            h,
            "GPU hours by user",
            &hbars_svg(&gpu, None, Fill::Fixed("var(--gpu)"), "GPU hours by user"),
        );
    }
    let cpu_eff = eff_bars(&a.users, o.top, |u| u.avg_cpu_efficiency);
    if !cpu_eff.is_empty() {
        figure(
            h,
            "CPU efficiency by user (completed jobs)",
            &hbars_svg(
                &cpu_eff,
                Some(100.0),
                Fill::Efficiency,
                "CPU efficiency by user",
            ),
        );
    }
    let mem_eff = eff_bars(&a.users, o.top, |u| u.avg_memory_efficiency);
    if !mem_eff.is_empty() {
        figure(
            h,
            "Memory efficiency by user (completed jobs)",
            &hbars_svg(
                &mem_eff,
                Some(100.0),
                Fill::Efficiency,
                "Memory efficiency by user",
            ),
        );
    }
    h.push_str("</div>\n");
    folded_table(
        h,
        &USERS.layout(&a.users, View::Html, a.measured()),
        o.top,
        "users",
    );
    h.push_str("</section>\n");
}

fn groups(h: &mut String, a: &Analysis, o: &HtmlOptions) {
    h.push_str("<section id=\"groups\">\n<h2>Resource usage by research group</h2>\n<div class=\"charts\">\n");
    figure(
        h,
        "CPU hours by group",
        &hbars_svg(
            &usage_bars(&a.groups, o.top, |u| u.cpu_hours),
            None,
            Fill::Fixed("var(--cpu)"),
            "CPU hours by group",
        ),
    );
    let gpu = usage_bars(&a.groups, o.top, |u| u.gpu_hours);
    if !gpu.is_empty() {
        figure(
            h,
            "GPU hours by group",
            &hbars_svg(&gpu, None, Fill::Fixed("var(--gpu)"), "GPU hours by group"),
        );
    }
    h.push_str("</div>\n");
    folded_table(
        h,
        &GROUPS.layout(&a.groups, View::Html, a.measured()),
        o.top,
        "groups",
    );
    h.push_str("</section>\n");
}

fn partitions(h: &mut String, a: &Analysis, o: &HtmlOptions) {
    h.push_str("<section id=\"partitions\">\n<h2>Resource usage by partition</h2>\n<div class=\"charts\">\n");
    figure(
        h,
        "CPU hours by partition",
        &hbars_svg(
            &usage_bars(&a.partitions, o.top, |u| u.cpu_hours),
            None,
            Fill::Fixed("var(--cpu)"),
            "CPU hours by partition",
        ),
    );
    h.push_str("</div>\n");
    folded_table(
        h,
        &PARTITIONS.layout(&a.partitions, View::Html, a.measured()),
        o.top,
        "partitions",
    );
    h.push_str("</section>\n");
}

fn nodes(h: &mut String, a: &Analysis, o: &HtmlOptions) {
    h.push_str("<section id=\"nodes\">\n<h2>Node usage</h2>\n");
    if a.nodes.is_empty() {
        h.push_str("<p>No job in the window ran on a node yet.</p>\n</section>\n");
        return;
    }
    let mut util: Vec<(String, f64, String)> = a
        .nodes
        .iter()
        .filter_map(|n| {
            n.cpu_utilization
                .map(|u| (n.node.clone(), u, format!("{u:.1}%")))
        })
        .collect();
    util.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    util.truncate(o.top);
    h.push_str("<div class=\"charts\">\n");
    if util.is_empty() {
        let list: Vec<(String, f64, String)> = a
            .nodes
            .iter()
            .filter(|n| n.cpu_hours > 0.0)
            .take(o.top)
            .map(|n| (n.node.clone(), n.cpu_hours, num(n.cpu_hours)))
            .collect();
        figure(
            h,
            "CPU hours by node",
            &hbars_svg(&list, None, Fill::Fixed("var(--cpu)"), "CPU hours by node"),
        );
    } else {
        figure(
            h,
            "CPU utilisation by node",
            &hbars_svg(
                &util,
                Some(100.0),
                Fill::Fixed("var(--cpu)"),
                "CPU utilisation by node",
            ),
        );
    }
    let mut gpu: Vec<(String, f64, String)> = a
        .nodes
        .iter()
        .filter(|n| n.gpu_hours > 0.0)
        .filter_map(|n| {
            n.gpu_utilization
                .map(|u| (n.node.clone(), u, format!("{u:.1}%")))
        })
        .collect();
    gpu.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    gpu.truncate(o.top);
    if !gpu.is_empty() {
        figure(
            h,
            "GPU utilisation by node",
            &hbars_svg(
                &gpu,
                Some(100.0),
                Fill::Fixed("var(--gpu)"),
                "GPU utilisation by node",
            ),
        );
    }
    h.push_str("</div>\n");
    match &a.node_counts_unavailable {
        Some(why) => {
            let _ = writeln!(h, "<p class=\"note\">Node CPU/GPU counts unavailable ({}): utilisation not computed.</p>", esc(why));
        }
        None => {
            let _ = writeln!(
                h,
                "<p class=\"note\">Utilisation: the node's share of each job's hours over its CPUs (GPUs) &times; {:.1} hours; counts from sinfo.</p>",
                a.hours
            );
        }
    }
    folded_table(
        h,
        &NODES.layout(&a.nodes, View::Html, a.measured()),
        o.top,
        "nodes",
    );
    h.push_str("</section>\n");
}

fn efficiency(h: &mut String, a: &Analysis) {
    h.push_str("<section id=\"efficiency\">\n<h2>Efficiency (completed jobs)</h2>\n");
    let e = &a.efficiency;
    if e.completed_jobs == 0 {
        h.push_str("<p>No COMPLETED job in the window.</p>\n</section>\n");
        return;
    }
    table(h, &spread_layout(e));
    let _ = writeln!(
        h,
        "<p class=\"note\">{} completed jobs wasted {} CPU hours and {} memory GB-hours.</p>",
        thousands(e.completed_jobs),
        num(e.cpu_hours_wasted),
        num(e.memory_gb_hours_wasted)
    );
    h.push_str("<h3>Top 10 wasters</h3>\n<div class=\"charts\">\n");
    let wasted: Vec<(String, f64, String)> = a
        .top_wasters
        .iter()
        .take(TOP_WASTERS_SHOWN)
        .filter(|u| u.cpu_hours_wasted > 0.0)
        .map(|u| (u.key.clone(), u.cpu_hours_wasted, num(u.cpu_hours_wasted)))
        .collect();
    if !wasted.is_empty() {
        figure(
            h,
            "CPU hours wasted",
            &hbars_svg(
                &wasted,
                None,
                Fill::Fixed("#dc2626"),
                "CPU hours wasted by user",
            ),
        );
    }
    h.push_str("</div>\n");
    let shown = &a.top_wasters[..a.top_wasters.len().min(TOP_WASTERS_SHOWN)];
    table(h, &TOP_WASTERS.layout(shown, View::Html, a.measured()));
    if a.measured().gpu {
        h.push_str("<h3>Top 10 GPU wasters</h3>\n");
        let shown = &a.top_gpu_wasters[..a.top_gpu_wasters.len().min(TOP_WASTERS_SHOWN)];
        table(h, &TOP_GPU_WASTERS.layout(shown, View::Html, a.measured()));
        let _ = writeln!(
            h,
            "<p class=\"note\">{}</p>",
            esc(super::render::GPU_BOUND_NOTE)
        );
    }
    h.push_str("</section>\n");
}

/// Colours of the state bar, in order; states beyond them share the last.
const STATE_COLOURS: &[&str] = &[
    "#16a34a", "#dc2626", "#f59e0b", "#2563eb", "#9333ea", "#0891b2", "#db2777", "#65a30d",
    "#6b7280",
];

fn states(h: &mut String, a: &Analysis) {
    h.push_str("<section id=\"states\">\n<h2>Job states</h2>\n");
    // One 100% stacked bar with a legend.
    let (w, bar_h) = (720.0, 28.0);
    let rows = a.states.len().div_ceil(3).max(1) as f64;
    let total_h = bar_h + 12.0 + rows * 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {total_h}\" role=\"img\" aria-label=\"Job state distribution\">\n"
    );
    let mut x = 0.0;
    for (i, s) in a.states.iter().enumerate() {
        let c = STATE_COLOURS[i.min(STATE_COLOURS.len() - 1)];
        let sw = w * s.percent / 100.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.2}\" y=\"0\" width=\"{sw:.2}\" height=\"{bar_h}\" fill=\"{c}\"><title>{}: {} jobs ({:.1}%)</title></rect>",
            esc(&s.state),
            thousands(s.jobs),
            s.percent
        );
        x += sw;
        let (lx, ly) = ((i % 3) as f64 * 240.0, bar_h + 12.0 + (i / 3) as f64 * 20.0);
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{c}\"/><text x=\"{}\" y=\"{}\">{} {} ({:.1}%)</text>",
            lx + 18.0,
            ly + 10.5,
            esc(&s.state),
            thousands(s.jobs),
            s.percent
        );
    }
    svg.push_str("</svg>");
    figure(h, "State distribution", &svg);
    table(h, &STATES.layout(&a.states, View::Html, a.measured()));
    h.push_str("</section>\n");
}

fn figure(h: &mut String, caption: &str, svg: &str) {
    let _ = writeln!(
        h,
        "<figure><figcaption>{}</figcaption>\n{svg}\n</figure>",
        esc(caption)
    );
}

fn table(h: &mut String, l: &Layout) {
    table_rows(h, &l.headers, &l.align, &l.rows);
}

/// A table. The first column is left-aligned by the stylesheet; later text columns get
/// class `t`.
fn table_rows(h: &mut String, headers: &[&str], align: &[Align], rows: &[Vec<String>]) {
    let class = |i: usize| {
        if i > 0 && align[i] == Align::Left {
            " class=\"t\""
        } else {
            ""
        }
    };
    h.push_str("<table>\n<thead><tr>");
    for (i, c) in headers.iter().enumerate() {
        let _ = write!(h, "<th{}>{}</th>", class(i), esc(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        h.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let _ = write!(h, "<td{}>{}</td>", class(i.min(headers.len() - 1)), esc(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The first `top` rows, and the whole table folded below when there are more.
fn folded_table(h: &mut String, l: &Layout, top: usize, what: &str) {
    if l.rows.len() <= top {
        table(h, l);
        return;
    }
    table_rows(h, &l.headers, &l.align, &l.rows[..top]);
    let _ = writeln!(h, "<details><summary>All {} {what}</summary>", l.rows.len());
    table(h, l);
    h.push_str("</details>\n");
}

/// How horizontal bars are filled.
#[derive(Clone, Copy)]
enum Fill {
    Fixed(&'static str),
    /// Green from 70%, amber from 40%, red below.
    Efficiency,
}

/// A horizontal bar chart: `(label, value, text)`, scaled to `max` or the largest value.
fn hbars_svg(items: &[(String, f64, String)], max: Option<f64>, fill: Fill, label: &str) -> String {
    let (w, row, label_w, text_w) = (560.0, 22.0, 130.0, 110.0);
    let height = (items.len().max(1) as f64) * row + 8.0;
    let bar_max = w - label_w - text_w;
    let max = max.unwrap_or_else(|| items.iter().map(|i| i.1).fold(0.0, f64::max));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"{}\">\n",
        esc(label)
    );
    if items.is_empty() {
        let _ = writeln!(s, "<text x=\"0\" y=\"16\">no data</text>");
    }
    for (i, (name, v, text)) in items.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let bw = if max > 0.0 {
            (v / max).clamp(0.0, 1.0) * bar_max
        } else {
            0.0
        };
        let colour = match fill {
            Fill::Fixed(c) => c,
            Fill::Efficiency if *v >= 70.0 => "#16a34a",
            Fill::Efficiency if *v >= 40.0 => "#f59e0b",
            Fill::Efficiency => "#dc2626",
        };
        let short: String = if name.chars().count() > 18 {
            name.chars().take(17).chain(std::iter::once('…')).collect()
        } else {
            name.clone()
        };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bw:.2}\" height=\"{:.1}\" rx=\"2\" fill=\"{colour}\"><title>{}: {}</title></rect>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&short),
            row - 6.0,
            esc(name),
            esc(text),
            label_w + bw + 6.0,
            y + 14.0,
            esc(text)
        );
    }
    s.push_str("</svg>");
    s
}

/// A round number at or above `v` for the top of an axis (1, 2 or 5 x 10^k).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// A column chart over the days of the window, with a value axis and date labels.
fn columns_svg(
    days: &[DayUsage],
    get: impl Fn(&DayUsage) -> f64,
    colour: &str,
    label: &str,
) -> String {
    let (w, h) = (560.0, 240.0);
    let (left, right, top, bottom) = (56.0, 8.0, 10.0, 42.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = nice_ceiling(days.iter().map(&get).fold(0.0, f64::max));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\n",
        esc(label)
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            y + 4.0,
            if v == 0.0 { "0".to_string() } else { num(v) }
        );
    }
    let n = days.len().max(1);
    let slot = plot_w / n as f64;
    let bar = (slot * 0.8).max(0.5);
    // Label at most ~10 dates so they never overlap.
    let every = n.div_ceil(10).max(1);
    for (i, d) in days.iter().enumerate() {
        let v = get(d);
        let bh = if max > 0.0 { plot_h * v / max } else { 0.0 };
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{bar:.2}\" height=\"{bh:.2}\" fill=\"{colour}\"><title>{}: {}</title></rect>",
            top + plot_h - bh,
            d.date,
            num(v)
        );
        if i % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                top + plot_h + 16.0,
                d.date.format("%m-%d")
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(4999.0), 5000.0);
    }
}
