//! Job ids and job states as SLURM prints them: which job a step belongs to (`9.batch`),
//! array tasks (`4_1`), the base state (`CANCELLED by 123`) and which states are final.
//!
//! Pure functions. The final states decide when a date is complete (docs/collection.md,
//! "Completion"), so the list here is the one the collector and the reports share.

/// The job a step row belongs to: `9.batch` -> `9`, `9` -> `9`, `4_1.extern` -> `4_1`.
pub fn job_of_step(id: &str) -> &str {
    // By byte: ids are a few bytes, less than `split_once` takes to set up its searcher.
    id.bytes().position(|b| b == b'.').map_or(id, |i| &id[..i])
}

/// Array parts of a JobID: `4_1` -> (`4`, Some(1)); `4_[1-3]` -> (`4`, None); `7` -> None.
pub fn array_parts(job_id: &str) -> Option<(&str, Option<i64>)> {
    let (base, task) = job_id.split_once('_')?;
    Some((base, task.parse().ok()))
}

/// The base state: `CANCELLED by 123` -> `CANCELLED`, `RUNNING` -> `RUNNING`.
pub fn normalize_state(s: &str) -> &str {
    s.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
}

/// Whether a normalized state can no longer change (docs/collection.md, "Completion").
pub fn is_final_state(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "PREEMPTED"
            | "LAUNCH_FAILED"
            | "RECONFIG_FAIL"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(normalize_state("CANCELLED by 0"), "CANCELLED");
        assert_eq!(normalize_state("CANCELLED by 1234"), "CANCELLED");
        assert_eq!(normalize_state("COMPLETED"), "COMPLETED");
        assert!(is_final_state("OUT_OF_MEMORY"));
        assert!(is_final_state("PREEMPTED"));
        for s in [
            "RUNNING",
            "PENDING",
            "SUSPENDED",
            "COMPLETING",
            "REQUEUED",
            "RESIZING",
            "",
        ] {
            assert!(!is_final_state(s), "{s}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(job_of_step("9.batch"), "9");
        assert_eq!(job_of_step("4_1.extern"), "4_1");
        assert_eq!(job_of_step("123+0.0"), "123+0");
        assert_eq!(job_of_step("12"), "12");
        assert_eq!(array_parts("4_1"), Some(("4", Some(1))));
        assert_eq!(array_parts("4_[1-3]"), Some(("4", None)));
        assert_eq!(array_parts("123+0"), None);
    }
}
