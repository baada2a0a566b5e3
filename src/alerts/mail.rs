//! The mails: one per user about their own jobs, one per group contact about the group's
//! users. Plain text first (what most people read), and a small HTML part with the same
//! words. Pure: reports in, [`Mail`]s out.
//!
//! A mail holds only what the processed partitions hold about a job (its id, state and
//! numbers), never a submit line, a working directory or anything from the job's
//! environment: those are not in the processed partitions to begin with.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::rules::{Finding, Rule};

/// What the rules found about one user, with the totals of their window.
#[derive(Debug, Clone, PartialEq)]
pub struct UserReport {
    pub user: String,
    pub group: String,
    /// Jobs of the window (one record per job).
    pub jobs: usize,
    /// CPU hours the jobs reserved.
    pub cpu_hours: f64,
    pub findings: Vec<Finding>,
}

impl UserReport {
    /// CPU hours wasted over the findings (idle, or spent on killed jobs).
    pub fn cpu_hours_wasted(&self) -> f64 {
        self.findings.iter().map(|f| f.cpu_hours).sum()
    }

    /// Memory GB-hours held and not used, over the findings.
    pub fn memory_gb_hours_wasted(&self) -> f64 {
        self.findings.iter().map(|f| f.memory_gb_hours).sum()
    }

    /// What the user is ranked by in a group summary.
    pub fn weight(&self) -> f64 {
        self.findings.iter().map(Finding::weight).sum()
    }
}

/// One mail, ready to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Who it is for in the throttle record: `user:<name>` or `group:<name>`.
    pub key: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The window of a round, for the words of a mail.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Window {
    fn text(&self) -> String {
        format!("{} to {}", self.first, self.last)
    }
}

/// The mail to a user about their own jobs.
pub fn user_mail(r: &UserReport, to: &str, from: &str, w: Window) -> Mail {
    let subject = format!(
        "Your Slurm jobs, {}: {} to change",
        w.text(),
        plural(r.findings.len(), "thing")
    );
    let mut t = String::new();
    let _ = writeln!(t, "Hello {},\n", r.user);
    let _ = writeln!(
        t,
        "We looked at your {} on the cluster from {} (by Slurm's own accounting). \
Asking for what your jobs really need gets them started sooner and leaves room for others. \
Here is what we saw and what to change:\n",
        plural(r.jobs, "job"),
        w.text()
    );
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(t, "{}. {}", i + 1, heading(f.rule));
        let _ = writeln!(t, "   {}", f.what);
        let _ = writeln!(t, "   Jobs: {}", jobs_line(f));
        let _ = writeln!(t, "   What to do: {}\n", f.change);
    }
    let _ = writeln!(
        t,
        "To look at one job: `seff JOBID` (or `slurm-usage job JOBID` where it is installed)."
    );
    let _ = writeln!(
        t,
        "Questions, or a reason your jobs need what they ask for? Just reply to {from}.\n"
    );
    let _ = writeln!(
        t,
        "You get at most one such note per period, and only when there is something to change."
    );

    let mut h = html_head(&subject);
    let _ = write!(h, "<p>Hello {},</p>", esc(&r.user));
    let _ = write!(
        h,
        "<p>We looked at your {} on the cluster from {} (by Slurm's own accounting). \
Asking for what your jobs really need gets them started sooner and leaves room for others. \
Here is what we saw and what to change:</p><ol>",
        plural(r.jobs, "job"),
        esc(&w.text())
    );
    for f in &r.findings {
        let _ = write!(
            h,
            "<li><h2>{}</h2><p>{}</p><p class=\"jobs\">Jobs: {}</p><p class=\"change\"><b>What to do:</b> {}</p></li>",
            esc(heading(f.rule)),
            code(&f.what),
            esc(&jobs_line(f)),
            code(&f.change)
        );
    }
    let _ = write!(
        h,
        "</ol><p>To look at one job: <code>seff JOBID</code> (or <code>slurm-usage job JOBID</code> where it is installed).</p>\
<p>Questions, or a reason your jobs need what they ask for? Just reply to {}.</p>\
<p class=\"small\">You get at most one such note per period, and only when there is something to change.</p></body></html>",
        esc(from)
    );
    Mail {
        key: format!("user:{}", r.user),
        to: to.to_string(),
        subject,
        text: t,
        html: h,
    }
}

/// The summary to a group's contact: the group's users with something to change, ranked by
/// waste, with the group's totals.
pub fn group_mail(group: &str, users: &[UserReport], to: &str, from: &str, w: Window) -> Mail {
    let mut ranked: Vec<&UserReport> = users.iter().filter(|u| !u.findings.is_empty()).collect();
    ranked.sort_by(|a, b| b.weight().total_cmp(&a.weight()).then(a.user.cmp(&b.user)));
    let jobs: usize = users.iter().map(|u| u.jobs).sum();
    let cpu: f64 = users.iter().map(|u| u.cpu_hours).sum();
    let cpu_wasted: f64 = ranked.iter().map(|u| u.cpu_hours_wasted()).sum();
    let mem_wasted: f64 = ranked.iter().map(|u| u.memory_gb_hours_wasted()).sum();
    let subject = format!(
        "Slurm jobs of group {group}, {}: {} with something to change",
        w.text(),
        plural(ranked.len(), "user")
    );
    let mut t = String::new();
    let _ = writeln!(t, "Hello,\n");
    let _ = writeln!(
        t,
        "This is the summary for group {group} from {}: {} of {} ran {} that reserved {cpu:.1} CPU hours. \
The jobs of the users below left {cpu_wasted:.1} CPU hours idle (or lost them to jobs that were killed) and {mem_wasted:.1} memory GB-hours unused. \
Each user listed got (or will get) a note of their own with the details and what to change.\n",
        w.text(),
        plural(users.len(), "user"),
        group,
        plural(jobs, "job"),
    );
    let rows: Vec<[String; 5]> = ranked
        .iter()
        .map(|u| {
            [
                u.user.clone(),
                u.jobs.to_string(),
                format!("{:.1}", u.cpu_hours_wasted()),
                format!("{:.1}", u.memory_gb_hours_wasted()),
                u.findings
                    .iter()
                    .map(|f| f.rule.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let header = [
        "user",
        "jobs",
        "CPU h wasted",
        "mem GB-h wasted",
        "what to change",
    ];
    let total = [
        "total".to_string(),
        ranked.iter().map(|u| u.jobs).sum::<usize>().to_string(),
        format!("{cpu_wasted:.1}"),
        format!("{mem_wasted:.1}"),
        String::new(),
    ];
    t.push_str(&text_table(&header, &rows, &total));
    let _ = writeln!(
        t,
        "\nQuestions? Reply to {from}. You get at most one such summary per period, and only when there is something to change."
    );

    let mut h = html_head(&subject);
    let _ = write!(
        h,
        "<p>Hello,</p><p>This is the summary for group <b>{}</b> from {}: {} of the group ran {} that reserved {cpu:.1} CPU hours. \
The jobs of the users below left <b>{cpu_wasted:.1} CPU hours</b> idle (or lost them to jobs that were killed) and <b>{mem_wasted:.1} memory GB-hours</b> unused. \
Each user listed got (or will get) a note of their own with the details and what to change.</p><table><thead><tr>",
        esc(group),
        esc(&w.text()),
        plural(users.len(), "user"),
        plural(jobs, "job"),
    );
    for (i, c) in header.iter().enumerate() {
        let _ = write!(h, "<th{}>{}</th>", num_class(i), esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for row in &rows {
        h.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = write!(h, "<td{}>{}</td>", num_class(i), esc(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody><tfoot><tr>");
    for (i, c) in total.iter().enumerate() {
        let _ = write!(h, "<td{}>{}</td>", num_class(i), esc(c));
    }
    let _ = write!(
        h,
        "</tr></tfoot></table><p class=\"small\">Questions? Reply to {}. You get at most one such summary per period, and only when there is something to change.</p></body></html>",
        esc(from)
    );
    Mail {
        key: format!("group:{group}"),
        to: to.to_string(),
        subject,
        text: t,
        html: h,
    }
}

fn heading(rule: Rule) -> &'static str {
    match rule {
        Rule::LowCpu => "Cores reserved but idle",
        Rule::Memory => "Memory reserved but not used",
        Rule::Timeout => "Jobs stopped at their time limit",
        Rule::OutOfMemory => "Jobs killed for lack of memory",
        Rule::Short => "Very short jobs",
        Rule::IdleGpu => "GPUs reserved but idle",
    }
}

/// `12 jobs, e.g. 101, 102, 103` (the worst first).
fn jobs_line(f: &Finding) -> String {
    let mut s = format!("{} of {}", f.count, plural(f.judged, "job"));
    if !f.examples.is_empty() {
        let _ = write!(s, ", e.g. {}", f.examples.join(", "));
    }
    s
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn num_class(column: usize) -> &'static str {
    if (1..=3).contains(&column) {
        " class=\"num\""
    } else {
        ""
    }
}

/// A plain-text table: columns padded, numbers right-aligned.
fn text_table(header: &[&str; 5], rows: &[[String; 5]], total: &[String; 5]) -> String {
    let mut width = header.map(str::len);
    for r in rows.iter().chain(std::iter::once(total)) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if (1..=3).contains(&i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(str::to_string));
    out.push_str(&line(&width.map(|w| "-".repeat(w))));
    for r in rows {
        out.push_str(&line(r));
    }
    out.push_str(&line(&width.map(|w| "-".repeat(w))));
    out.push_str(&line(total));
    out
}

fn html_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:sans-serif;max-width:44em;line-height:1.4;color:#222}}\
h2{{font-size:1.05em;margin:1em 0 .2em}}code{{background:#f0f0f0;padding:0 .2em}}\
.jobs{{color:#555}}.change{{background:#eef6ee;padding:.4em .6em}}.small{{color:#666;font-size:.9em}}\
table{{border-collapse:collapse}}th,td{{border-bottom:1px solid #ccc;padding:.2em .6em;text-align:left}}\
.num{{text-align:right}}tfoot td{{font-weight:bold}}</style></head><body>",
        esc(title)
    )
}

/// HTML-escaped text: the report's one escaper.
pub use crate::report::html::esc;

/// Escaped text with `backticked` spans as `<code>`.
fn code(s: &str) -> String {
    esc(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: Rule, cpu: f64, mem: f64) -> Finding {
        Finding {
            rule,
            count: 3,
            judged: 10,
            examples: vec!["101".into(), "102".into()],
            cpu_hours: cpu,
            memory_gb_hours: mem,
            gpu_hours: 0.0,
            what: "Used <10%.".into(),
            change: "Ask for `--mem=4G`.".into(),
        }
    }

    fn w() -> Window {
        Window {
            first: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
            last: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        }
    }

    #[test]
    fn a_user_mail_names_jobs_and_the_change_in_both_parts() {
        let r = UserReport {
            user: "alice".into(),
            group: "physics".into(),
            jobs: 10,
            cpu_hours: 100.0,
            findings: vec![finding(Rule::Memory, 0.0, 50.0)],
        };
        let m = user_mail(&r, "alice@x.org", "hpc@x.org", w());
        assert_eq!(m.key, "user:alice");
        assert!(
            m.subject.contains("2026-11-18 to 2026-11-25"),
            "{}",
            m.subject
        );
        assert!(m.text.contains("3 of 10 jobs, e.g. 101, 102"), "{}", m.text);
        assert!(m.text.contains("`--mem=4G`"), "{}", m.text);
        assert!(m.html.contains("<code>--mem=4G</code>"), "{}", m.html);
        assert!(m.html.contains("Used &lt;10%."), "{}", m.html);
    }

    #[test]
    fn a_group_summary_ranks_by_waste_and_totals() {
        let u = |name: &str, cpu: f64, mem: f64| UserReport {
            user: name.into(),
            group: "physics".into(),
            jobs: 4,
            cpu_hours: 10.0,
            findings: if cpu + mem > 0.0 {
                vec![finding(Rule::LowCpu, cpu, mem)]
            } else {
                vec![]
            },
        };
        let users = [
            u("bob", 5.0, 0.0),
            u("alice", 50.0, 40.0),
            u("carol", 0.0, 0.0),
        ];
        let m = group_mail("physics", &users, "pi@x.org", "hpc@x.org", w());
        assert_eq!(m.key, "group:physics");
        let alice = m.text.find("alice").unwrap();
        let bob = m.text.find("bob").unwrap();
        assert!(alice < bob, "{}", m.text);
        assert!(!m.text.contains("carol"), "{}", m.text);
        assert!(
            m.text.contains("3 users of physics ran 12 jobs"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("55.0") && m.text.contains("40.0"),
            "{}",
            m.text
        );
        assert!(m.html.contains("<tfoot>"), "{}", m.html);
    }
}
