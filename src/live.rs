//! What the cluster is doing now: `current` (squeue) and `nodes` (sinfo), plus the node
//! CPU/GPU inventory that `analyze` uses for utilisation.
//!
//! The commands run through [`crate::slurm::run::query`] (no shell, a short timeout that kills
//! a hung child: a down slurmctld makes squeue and sinfo wait a long time), and their parsers
//! are pure functions tested with the real Slurm 22.05 captures in `tests/fixtures/`.
//!
//! squeue's format is the newer Python tool's, `squeue -ro '%u/%t/%D/%P/%C/%N/%h'`, and so are
//! the tables: per user and partition, cores and nodes, by state (`R=4 / PD=2`). A job with
//! OVER_SUBSCRIBE `NO` or `USER` blocks its whole node, so, like the Python tool, it counts the
//! node's CPUs once per user and node.
//!
//! Several clusters (`[collect] clusters`, or `--cluster`): each cluster is asked on its own
//! (`squeue -M NAME`, `sinfo -M NAME`), because `squeue -M a,b` exits 0 and silently leaves out
//! a cluster whose slurmctld is down (Slurm 22.05); asked alone, it fails and says why. With
//! `-M`, squeue and sinfo print a `CLUSTER: NAME` line before each cluster's lines; the parsers
//! take only the lines of the cluster asked for.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, Write};
use std::path::Path;

use crate::report::analyze::NodeInventory;
use crate::report::render::{table, Align, Style};
use crate::report::thousands;
use crate::slurm::hostlist::expand_nodelist;
use crate::slurm::run::{query, CommandError};
use crate::slurm::tres::gres_gpus;
use crate::slurm::units::is_blank;

// ---------------------------------------------------------------------------------------
// sinfo

/// One node from sinfo.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub cpus: u64,
    pub gpus: u64,
    /// GRES as sinfo printed it; empty when the node has none (sinfo says `(null)`).
    pub gres: String,
}

/// The `-M NAME` arguments that point a Slurm client at one cluster through slurmdbd; none
/// for the local cluster (the one of this machine's slurm.conf).
pub fn cluster_args(cluster: Option<&str>) -> Vec<&str> {
    cluster.map_or_else(Vec::new, |c| vec!["-M", c])
}

/// The lines of `cluster` in the output of a client run with `-M`: those after its
/// `CLUSTER: NAME` line and before the next one. Output without such lines (no `-M`, or
/// `-h` with sinfo) is all one cluster's. With `cluster` `None`, every line but the headers.
pub fn cluster_lines<'a>(text: &'a str, cluster: Option<&str>) -> Vec<&'a str> {
    let mut current: Option<&str> = None;
    text.lines()
        .filter(|line| match line.strip_prefix("CLUSTER: ") {
            Some(name) => {
                current = Some(name.trim());
                false
            }
            None => match (cluster, current) {
                (Some(want), Some(cur)) => want == cur,
                _ => true,
            },
        })
        .collect()
}

/// Parses `sinfo -h -N --format=%N,%c` and `--format=%N,%G` output. With `-N` a node in two
/// partitions is listed twice; it is counted once. `CLUSTER:` lines (`-M`) are skipped.
pub fn parse_sinfo(cpus: &str, gres: &str) -> BTreeMap<String, NodeInfo> {
    let mut nodes: BTreeMap<String, NodeInfo> = BTreeMap::new();
    for line in cluster_lines(cpus, None) {
        if let Some((node, c)) = line.trim().split_once(',') {
            if let Ok(c) = c.trim().parse::<u64>() {
                nodes.entry(node.trim().to_string()).or_default().cpus = c;
            }
        }
    }
    for line in cluster_lines(gres, None) {
        if let Some((node, g)) = line.trim().split_once(',') {
            let info = nodes.entry(node.trim().to_string()).or_default();
            info.gpus = gres_gpus(g);
            info.gres = Some(g.trim())
                .filter(|g| !is_blank(g))
                .unwrap_or_default()
                .to_string();
        }
    }
    nodes
}

/// Runs sinfo twice (CPUs, GRES) and parses it; with `cluster`, for that cluster (`-M`).
pub fn sinfo_nodes(
    sinfo: &Path,
    cluster: Option<&str>,
) -> Result<BTreeMap<String, NodeInfo>, CommandError> {
    let run = |format: &str| {
        let mut args = vec!["-h", "-N", format];
        args.extend(cluster_args(cluster));
        query(sinfo, &args).map(|text| cluster_lines(&text, cluster).join("\n"))
    };
    let cpus = run("--format=%N,%c")?;
    let gres = run("--format=%N,%G")?;
    Ok(parse_sinfo(&cpus, &gres))
}

/// The inventory `analyze` uses, or why there is none.
pub fn node_inventory(sinfo: &Path) -> NodeInventory {
    match sinfo_nodes(sinfo, None) {
        Ok(nodes) if !nodes.is_empty() => NodeInventory {
            nodes: nodes
                .into_iter()
                .map(|(n, i)| (n, (i.cpus, i.gpus)))
                .collect(),
            unavailable: None,
        },
        Ok(_) => NodeInventory::unavailable("sinfo listed no nodes"),
        Err(CommandError::NotFound { .. }) => {
            NodeInventory::unavailable("sinfo is not installed here")
        }
        Err(CommandError::Failed { .. }) => {
            NodeInventory::unavailable("sinfo failed; is slurmctld reachable from here?")
        }
        Err(CommandError::Timeout { .. }) => NodeInventory::unavailable("sinfo timed out"),
        // Spawn or a broken pipe; a blocking query is never cancelled or abandoned.
        Err(_) => NodeInventory::unavailable("sinfo could not be started"),
    }
}

/// `slurm-usage nodes`: one row per node, then totals; with `cluster`, under a title that
/// names it.
pub fn write_nodes(
    nodes: &BTreeMap<String, NodeInfo>,
    cluster: Option<&str>,
    style: &Style,
    out: &mut impl Write,
) -> io::Result<()> {
    if let Some(c) = cluster {
        writeln!(out, "{}", bold(style, &format!("Nodes of cluster {c}")))?;
    }
    if nodes.is_empty() {
        return writeln!(out, "sinfo listed no nodes.");
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|(n, i)| {
            vec![
                n.clone(),
                thousands(i.cpus),
                if i.gpus > 0 {
                    thousands(i.gpus)
                } else {
                    "-".into()
                },
                if i.gres.is_empty() {
                    "-".into()
                } else {
                    i.gres.clone()
                },
            ]
        })
        .collect();
    table(
        out,
        style,
        &["Node", "CPUs", "GPUs", "GRES"],
        &[Align::Left, Align::Right, Align::Right, Align::Left],
        &rows,
    )?;
    let cpus: u64 = nodes.values().map(|i| i.cpus).sum();
    let gpus: u64 = nodes.values().map(|i| i.gpus).sum();
    let gpu_nodes = nodes.values().filter(|i| i.gpus > 0).count() as u64;
    writeln!(out)?;
    table(
        out,
        style,
        &["Total", "Value"],
        &[Align::Left, Align::Right],
        &[
            vec!["Nodes".into(), thousands(nodes.len() as u64)],
            vec!["CPUs".into(), thousands(cpus)],
            vec!["GPUs".into(), thousands(gpus)],
            vec!["GPU nodes".into(), thousands(gpu_nodes)],
        ],
    )
}

// ---------------------------------------------------------------------------------------
// squeue

/// The squeue arguments (the newer Python tool's format).
pub const SQUEUE_ARGS: &[&str] = &["-ro", "%u/%t/%D/%P/%C/%N/%h"];

/// One line of `squeue -ro '%u/%t/%D/%P/%C/%N/%h'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueJob {
    pub user: String,
    /// Compact state: `R`, `PD`, `CG`, ...
    pub state: String,
    pub nodes: u64,
    pub partition: String,
    pub cpus: u64,
    pub node_list: String,
    /// OVER_SUBSCRIBE: `OK`, `NO`, `USER`, `YES`, `FORCE`, ...
    pub oversubscribe: String,
}

/// Parses squeue output; the header line (`USER/ST/...`), `CLUSTER:` lines (`-M`) and
/// malformed lines are skipped.
pub fn parse_squeue(text: &str) -> Vec<QueueJob> {
    parse_squeue_of(text, None)
}

/// Parses the lines of `cluster` in `squeue -M` output (see [`cluster_lines`]).
pub fn parse_squeue_of(text: &str, cluster: Option<&str>) -> Vec<QueueJob> {
    cluster_lines(text, cluster)
        .into_iter()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split('/').collect();
            if f.len() != 7 || f[0] == "USER" {
                return None;
            }
            Some(QueueJob {
                user: f[0].to_string(),
                state: f[1].to_string(),
                nodes: f[2].parse().ok()?,
                partition: f[3].to_string(),
                cpus: f[4].parse().ok()?,
                node_list: f[5].to_string(),
                oversubscribe: f[6].to_string(),
            })
        })
        .collect()
}

/// Per user, per partition, per state: a count.
pub type Usage = BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>;

/// Cores and nodes in use per user, partition and state. `node_cpus` gives whole-node CPU
/// counts for exclusive jobs (OVER_SUBSCRIBE `NO`/`USER`): such a job counts its node's CPUs
/// (and one node) once per user and node, as the Python tool does; without a count it falls
/// back to the job's own `%C`.
pub fn queue_usage(jobs: &[QueueJob], node_cpus: &BTreeMap<String, u64>) -> (Usage, Usage) {
    let mut cores: Usage = BTreeMap::new();
    let mut nodes: Usage = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for j in jobs {
        let exclusive =
            matches!(j.oversubscribe.as_str(), "NO" | "USER") && !j.node_list.is_empty();
        let (c, n) = if exclusive {
            if !seen.insert((j.user.clone(), j.node_list.clone())) {
                continue;
            }
            let whole: Option<u64> = expand_nodelist(&j.node_list)
                .iter()
                .map(|n| node_cpus.get(n).copied())
                .sum();
            (whole.unwrap_or(j.cpus), j.nodes)
        } else {
            (j.cpus, j.nodes)
        };
        for (map, v) in [(&mut cores, c), (&mut nodes, n)] {
            *map.entry(j.user.clone())
                .or_default()
                .entry(j.partition.clone())
                .or_default()
                .entry(j.state.clone())
                .or_default() += v;
        }
    }
    (cores, nodes)
}

/// `R=4 / PD=2`, running first, then pending, then the rest by name.
fn states_text(m: &BTreeMap<String, u64>) -> String {
    let rank = |s: &str| match s {
        "R" => 0,
        "PD" => 1,
        _ => 2,
    };
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then_with(|| a.0.cmp(b.0)));
    v.iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn bold(style: &Style, text: &str) -> String {
    if style.color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `slurm-usage current`: two tables (cores, nodes), users by partition; with `cluster`, the
/// titles name it.
pub fn write_current(
    jobs: &[QueueJob],
    node_cpus: &BTreeMap<String, u64>,
    me: &str,
    cluster: Option<&str>,
    style: &Style,
    out: &mut impl Write,
) -> io::Result<()> {
    let on = cluster.map_or_else(String::new, |c| format!(" on cluster {c}"));
    if jobs.is_empty() {
        return writeln!(out, "The queue{on} is empty.");
    }
    let (cores, nodes) = queue_usage(jobs, node_cpus);
    for (what, usage) in [("cores", &cores), ("nodes", &nodes)] {
        let partitions: BTreeSet<&String> = usage.values().flat_map(|p| p.keys()).collect();
        let mut headers: Vec<&str> = vec!["User"];
        headers.extend(partitions.iter().map(|p| p.as_str()));
        headers.push("Total");
        let mut align = vec![Align::Left];
        align.extend(std::iter::repeat_n(Align::Right, partitions.len() + 1));
        let mut per_partition: BTreeMap<&String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = Vec::new();
        for (user, parts) in usage {
            let mut total: BTreeMap<String, u64> = BTreeMap::new();
            let mut row = vec![if user == me {
                format!("{user} *")
            } else {
                user.clone()
            }];
            for p in &partitions {
                match parts.get(*p) {
                    Some(st) => {
                        for (s, n) in st {
                            *total.entry(s.clone()).or_default() += n;
                            *per_partition
                                .entry(p)
                                .or_default()
                                .entry(s.clone())
                                .or_default() += n;
                            *all.entry(s.clone()).or_default() += n;
                        }
                        row.push(states_text(st));
                    }
                    None => row.push("-".into()),
                }
            }
            row.push(states_text(&total));
            rows.push(row);
        }
        let mut footer = vec![format!("{} users", usage.len())];
        footer.extend(
            partitions
                .iter()
                .map(|p| per_partition.get(p).map_or("-".into(), states_text)),
        );
        footer.push(states_text(&all));
        rows.push(footer);
        writeln!(out, "{}", bold(style, &format!("Slurm queue{on}: {what}")))?;
        table(out, style, &headers, &align, &rows)?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "R = running, PD = pending; * = you. Exclusive jobs count their whole node's CPUs."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn real_sinfo_capture() {
        let nodes = parse_sinfo(&fixture("sinfo-cpus.txt"), &fixture("sinfo-gpus.txt"));
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            nodes["vm"],
            NodeInfo {
                cpus: 2,
                gpus: 0,
                gres: String::new()
            }
        );
        let mut out = Vec::new();
        let style = Style {
            color: false,
            width: 80,
            top: 10,
        };
        write_nodes(&nodes, None, &style, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("(null)"), "{out}");
        let twice = parse_sinfo("a,8\na,8\nb,4\n", "a,gpu:a100:4(S:0-1)\nb,(null)\n");
        assert_eq!(twice.len(), 2);
        assert_eq!((twice["a"].cpus, twice["a"].gpus), (8, 4));
    }

    #[test]
    fn real_squeue_capture() {
        let jobs = parse_squeue(&fixture("squeue.txt"));
        assert_eq!(jobs.len(), 2, "header skipped");
        assert_eq!(jobs[0].user, "root");
        assert_eq!(jobs[0].state, "PD");
        assert_eq!(jobs[1].node_list, "vm");
        let (cores, nodes) = queue_usage(&jobs, &BTreeMap::new());
        assert_eq!(cores["alice"]["debug"]["R"], 1);
        assert_eq!(nodes["root"]["debug"]["PD"], 1);
    }

    #[test]
    fn exclusive_jobs_count_the_whole_node_once() {
        let text = "USER/ST/NODES/PARTITION/CPUS/NODELIST/OVER_SUBSCRIBE\n\
                    bob/R/1/cpu/2/n1/USER\nbob/R/1/cpu/2/n1/USER\nann/R/1/cpu/3/n2/OK\n";
        let jobs = parse_squeue(text);
        let cpus = BTreeMap::from([("n1".to_string(), 16u64)]);
        let (cores, nodes) = queue_usage(&jobs, &cpus);
        assert_eq!(cores["bob"]["cpu"]["R"], 16);
        assert_eq!(nodes["bob"]["cpu"]["R"], 1);
        assert_eq!(cores["ann"]["cpu"]["R"], 3);
    }

    #[test]
    fn current_table_text() {
        let jobs = parse_squeue(&fixture("squeue.txt"));
        let mut out = Vec::new();
        let style = Style {
            color: false,
            width: 100,
            top: 15,
        };
        write_current(&jobs, &BTreeMap::new(), "alice", None, &style, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("alice *"), "{text}");
        assert!(text.contains("R=1 / PD=1"), "{text}");
        assert!(text.contains("2 users"), "{text}");
    }

    #[test]
    fn squeue_dash_m_output_is_split_by_cluster() {
        // Real Slurm 22.05 `squeue -M rig,beta -ro '%u/%t/%D/%P/%C/%N/%h'`.
        let text = fixture("squeue-M-rig-beta.txt");
        let beta = parse_squeue_of(&text, Some("beta"));
        let rig = parse_squeue_of(&text, Some("rig"));
        assert_eq!(beta.len(), 2, "{beta:?}");
        assert!(beta.iter().all(|j| j.user == "root"), "{beta:?}");
        assert_eq!(beta[1].node_list, "beta1");
        assert_eq!(rig.len(), 2, "{rig:?}");
        assert_eq!((rig[0].user.as_str(), rig[0].state.as_str()), ("bob", "PD"));
        assert_eq!(
            (rig[1].user.as_str(), rig[1].node_list.as_str()),
            ("alice", "vm")
        );
        assert_eq!(
            parse_squeue(&text).len(),
            4,
            "no CLUSTER line taken for a job"
        );
        assert!(parse_squeue_of(&text, Some("gamma")).is_empty());
        // Without -M there is no CLUSTER line: every job is the asked cluster's.
        assert_eq!(
            parse_squeue_of(&fixture("squeue.txt"), Some("rig")).len(),
            2
        );
    }

    #[test]
    fn sinfo_dash_m_output_is_split_by_cluster() {
        // Real `sinfo -M rig,beta -N --format=%N,%c` (without -h: headers and CLUSTER lines).
        let text = fixture("sinfo-M-rig-beta-N-c.txt");
        let beta = parse_sinfo(&cluster_lines(&text, Some("beta")).join("\n"), "");
        assert_eq!(beta.keys().collect::<Vec<_>>(), ["beta1"]);
        assert_eq!(beta["beta1"].cpus, 2);
        let all = parse_sinfo(&text, "");
        assert_eq!(all.keys().collect::<Vec<_>>(), ["beta1", "vm"]);
        assert_eq!(cluster_args(Some("beta")), ["-M", "beta"]);
        assert!(cluster_args(None).is_empty());
    }

    #[test]
    fn titles_name_the_cluster() {
        let style = Style {
            color: false,
            width: 100,
            top: 15,
        };
        let mut out = Vec::new();
        let jobs = parse_squeue_of(&fixture("squeue-M-rig-beta.txt"), Some("beta"));
        write_current(&jobs, &BTreeMap::new(), "x", Some("beta"), &style, &mut out).unwrap();
        write_current(&[], &BTreeMap::new(), "x", Some("rig"), &style, &mut out).unwrap();
        let nodes = parse_sinfo("beta1,2\n", "");
        write_nodes(&nodes, Some("beta"), &style, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Slurm queue on cluster beta: cores"),
            "{text}"
        );
        assert!(
            text.contains("The queue on cluster rig is empty."),
            "{text}"
        );
        assert!(text.contains("Nodes of cluster beta\n"), "{text}");
    }
}
