//! Which sacct fields are asked for, in which order, and where each one we compute with sits.
//!
//! The list is the Python tool's 60 fields (so its raw archive columns carry on) plus
//! `TRESUsageInTot`, which seff uses for peak memory and which also carries GPU utilisation
//! and GPU memory (`gres/gpuutil`, `gres/gpumem`, Slurm 23.02 and later). Energy is the
//! Python tool's `ConsumedEnergyRaw`: GPU and energy figures need no field of their own. The order is chosen for speed: what a
//! step line is read for comes first, then what the allocation line is read for, so most
//! lines are split only part of the way. Free-text fields that can hold the
//! delimiter or a newline (job name, work dir, comment, constraints, container, submit line)
//! come last: if a stray delimiter still appears, the structured fields before them stay right
//! and the extra text is kept in the last field instead of shifting every column.

/// The fields requested from sacct, in output order.
pub const SACCT_FIELDS: &[&str] = &[
    // What every step line is read for (a step is parsed only this far).
    "JobID",
    "JobIDRaw",
    "State",
    "TotalCPU",
    "MaxRSS",
    "NTasks",
    "TRESUsageInTot",
    // What the allocation line is read for.
    "User",
    "UID",
    "Group",
    "GID",
    "Account",
    "Partition",
    "QOS",
    "ExitCode",
    "Submit",
    "Eligible",
    "Start",
    "End",
    "Elapsed",
    "ElapsedRaw",
    "UserCPU",
    "SystemCPU",
    "AllocCPUS",
    "AllocNodes",
    "NodeList",
    "ReqCPUS",
    "ReqMem",
    "Timelimit",
    "TimelimitRaw",
    "Cluster",
    "AllocTRES",
    // Archived only.
    "CPUTime",
    "CPUTimeRAW",
    "ReqNodes",
    "MaxVMSize",
    "MaxDiskRead",
    "MaxDiskWrite",
    "AveRSS",
    "AveCPU",
    "AveVMSize",
    "ConsumedEnergy",
    "ConsumedEnergyRaw",
    "Priority",
    "Reservation",
    "ReservationId",
    "ReqTRES",
    "DerivedExitCode",
    "Flags",
    "Layout",
    "MaxRSSNode",
    "MaxVMSizeNode",
    "MinCPU",
    "NCPUS",
    "NNodes",
    "Reason",
    // Free text, last.
    "Container",
    "Constraints",
    "JobName",
    "WorkDir",
    "Comment",
    "SubmitLine",
];

/// The field separator we ask sacct for (`--delimiter`): ASCII unit separator, which no job
/// name or submit line contains in practice, unlike `|`.
pub const DELIMITER: u8 = 0x1f;

/// Positions of the fields the metrics read, for one concrete field order (ours, or the one a
/// captured fixture was made with). `None`: the field was not requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    /// Field names in output order.
    pub names: Vec<String>,
    /// The byte that separates fields.
    pub delimiter: u8,
    pub job_id: usize,
    pub job_id_raw: usize,
    pub job_name: Option<usize>,
    pub user: Option<usize>,
    pub uid: Option<usize>,
    pub group: Option<usize>,
    pub account: Option<usize>,
    pub partition: Option<usize>,
    pub qos: Option<usize>,
    pub state: Option<usize>,
    pub exit_code: Option<usize>,
    pub submit: Option<usize>,
    pub eligible: Option<usize>,
    pub start: Option<usize>,
    pub end: Option<usize>,
    pub elapsed: Option<usize>,
    pub elapsed_raw: Option<usize>,
    pub total_cpu: Option<usize>,
    pub user_cpu: Option<usize>,
    pub system_cpu: Option<usize>,
    pub alloc_cpus: Option<usize>,
    pub alloc_nodes: Option<usize>,
    pub node_list: Option<usize>,
    pub req_cpus: Option<usize>,
    pub req_mem: Option<usize>,
    pub timelimit: Option<usize>,
    pub timelimit_raw: Option<usize>,
    pub max_rss: Option<usize>,
    pub ntasks: Option<usize>,
    pub cluster: Option<usize>,
    pub alloc_tres: Option<usize>,
    /// TRESUsageInTot: peak memory, and GPU utilisation and memory where Slurm gathers them.
    pub tres_usage_in_tot: Option<usize>,
    /// ConsumedEnergyRaw (joules), read on the allocation line only.
    pub consumed_energy_raw: Option<usize>,
    /// Fields to split on a step line: up to the last one the metrics read there.
    pub step_prefix: usize,
}

/// A field list that lacks what every row needs.
#[derive(Debug, thiserror::Error)]
#[error("sacct field list lacks {0} (it is needed to key rows)")]
pub struct MissingField(&'static str);

impl FieldLayout {
    /// The layout of our own sacct call.
    pub fn ours() -> FieldLayout {
        FieldLayout::new(SACCT_FIELDS.iter().copied(), DELIMITER)
            .expect("SACCT_FIELDS holds JobID and JobIDRaw")
    }

    /// A layout for any field order, e.g. a fixture's header or the Python tool's `|` output.
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        delimiter: u8,
    ) -> Result<FieldLayout, MissingField> {
        let names: Vec<String> = names.into_iter().map(|s| s.trim().to_string()).collect();
        let find = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n));
        let mut layout = FieldLayout {
            job_id: find("JobID").ok_or(MissingField("JobID"))?,
            job_id_raw: find("JobIDRaw").ok_or(MissingField("JobIDRaw"))?,
            job_name: find("JobName"),
            user: find("User"),
            uid: find("UID"),
            group: find("Group"),
            account: find("Account"),
            partition: find("Partition"),
            qos: find("QOS"),
            state: find("State"),
            exit_code: find("ExitCode"),
            submit: find("Submit"),
            eligible: find("Eligible"),
            start: find("Start"),
            end: find("End"),
            elapsed: find("Elapsed"),
            elapsed_raw: find("ElapsedRaw"),
            total_cpu: find("TotalCPU"),
            user_cpu: find("UserCPU"),
            system_cpu: find("SystemCPU"),
            alloc_cpus: find("AllocCPUS"),
            alloc_nodes: find("AllocNodes"),
            node_list: find("NodeList"),
            req_cpus: find("ReqCPUS"),
            req_mem: find("ReqMem"),
            timelimit: find("Timelimit"),
            timelimit_raw: find("TimelimitRaw"),
            max_rss: find("MaxRSS"),
            ntasks: find("NTasks"),
            cluster: find("Cluster"),
            alloc_tres: find("AllocTRES"),
            tres_usage_in_tot: find("TRESUsageInTot"),
            consumed_energy_raw: find("ConsumedEnergyRaw"),
            step_prefix: 0,
            names,
            delimiter,
        };
        layout.step_prefix = [
            Some(layout.job_id),
            Some(layout.job_id_raw),
            layout.state,
            layout.total_cpu,
            layout.max_rss,
            layout.ntasks,
            layout.tres_usage_in_tot,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        Ok(layout)
    }

    /// Number of fields in a row.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true for a valid layout (JobID and JobIDRaw are required).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `--format=` argument.
    pub fn format_arg(&self) -> String {
        self.names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_holds_python_fields_and_tres_usage() {
        let l = FieldLayout::ours();
        assert_eq!(l.len(), 62);
        assert!(l.tres_usage_in_tot.is_some());
        // GPU usage rides in TRESUsageInTot; energy is the Python tool's field.
        assert!(l.consumed_energy_raw.is_some());
        assert_eq!(l.names.last().unwrap(), "SubmitLine");
        assert_eq!(l.step_prefix, 7, "step lines are split only this far");
        // Every field of the Python tool's raw archive is still requested.
        let fixture = include_str!("../../tests/fixtures/sacct/sacct-command.txt");
        let list = fixture.split("--format=").nth(1).unwrap();
        let list = list.split_whitespace().next().unwrap();
        for f in list.split(',') {
            assert!(l.names.iter().any(|n| n == f), "missing {f}");
        }
    }

    #[test]
    fn missing_key_field_is_an_error() {
        let err = FieldLayout::new(["JobID", "State"], b'|').unwrap_err();
        assert!(err.to_string().contains("JobIDRaw"));
    }
}
