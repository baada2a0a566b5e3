//! Where sacct's output legitimately differs between the Slurm releases the rig runs (22.05
//! from Debian 12, 24.11 from Debian 13; `tests/slurm/README.md`, "Slurm versions"): each
//! difference the collector must live with is pinned here for the rig's release, so a new
//! release that changes it again shows up as a failing test, not as a silent change.

use std::time::Duration;

use crate::checks::Check;
use crate::rig::run;
use crate::setup::first;

/// The `srun -n1` steps of `multi_step` (a `-n 2 -c 1` job): on 22.05 such a step was given
/// every CPU of the job's allocation on the node (AllocCPUS 2, AllocTRES `cpu=2,mem=200M`),
/// on 24.11 only the CPU its one task asked for (1, `cpu=1,mem=100M`). The job line is the
/// same on both, and it is what the reserved hours are computed from.
#[test]
fn single_task_steps_get_the_whole_allocation_only_on_22_05() {
    let Some(p) = first() else { return };
    let release = p.rig.version();
    let (cpus, mem) = match release.as_str() {
        "22.05" => ("2", "200M"),
        _ => ("1", "100M"),
    };
    let job = p.job("multi_step");
    let lines = &p.after[&job.id];
    let mut c = Check::default();
    c.eq(
        &job.id,
        "job line AllocCPUS",
        lines[0]["AllocCPUS"].as_str(),
        "2",
    );
    // steps .0 (hostname), .2 (sleep 1), .3 (false) run one task; .1 runs two
    for step in [".0", ".2", ".3"] {
        let id = format!("{}{step}", job.id);
        let Some(line) = lines.iter().find(|l| l["JobID"] == id) else {
            c.that(false, || format!("no step {id} in sacct"));
            continue;
        };
        c.eq(&id, "AllocCPUS", line["AllocCPUS"].as_str(), cpus);
        c.eq(
            &id,
            "AllocTRES",
            line["AllocTRES"].as_str(),
            format!("cpu={cpus},mem={mem},node=1").as_str(),
        );
    }
    c.done(&format!("single-task steps on Slurm {release}"));
}

/// The job line's `Flags`: 22.05 spells `StartRecieved`, 24.11 `StartReceived`.
#[test]
fn start_received_flag_is_spelled_per_release() {
    let Some(p) = first() else { return };
    let release = p.rig.version();
    let job = p.job("cpu_burn");
    let out = run(
        p.rig
            .cmd("sacct")
            .args(["-n", "-P", "-X", "-o", "Flags", "-j", &job.id]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.ok(), "sacct {}", out.describe());
    let want = match release.as_str() {
        "22.05" => "SchedMain,StartRecieved",
        _ => "SchedMain,StartReceived",
    };
    assert_eq!(
        out.stdout.trim(),
        want,
        "Flags of job {} on {release}",
        job.id
    );
}
