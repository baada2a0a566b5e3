//! The daemon phase: one `slurm-usage daemon` cycle on a fresh data dir.

use crate::checks::{
    check_attribution, check_metrics, check_raw_against_sacct, check_records_against_sacct,
    check_window, Check,
};
use crate::phase::How;
use crate::setup::daemon;

/// One `slurm-usage daemon` cycle (its catch-up at start on a fresh data dir, then SIGTERM,
/// exit 0) archives what sacct reports, exactly as `collect` does.
#[test]
fn daemon_cycle_archives_what_sacct_reports() {
    let Some((two, d)) = daemon() else { return };
    assert_eq!(d.how, How::Daemon);
    assert_eq!(
        d.collect_out.code,
        Some(0),
        "daemon exit {}",
        d.collect_out.describe()
    );
    let mut c = Check::default();
    check_records_against_sacct(d, &mut c);
    check_metrics(d, &mut c);
    check_raw_against_sacct(d, &mut c);
    check_attribution(d, &mut c);
    check_window(d, &mut c);
    for j in &d.jobs {
        let (ours, theirs) = (d.record(&j.id), two.record(&j.id));
        c.eq(&j.id, "date (daemon vs collect)", ours.0, theirs.0);
        c.that(ours.1.same_content(theirs.1), || {
            format!(
                "job {}: the daemon's record differs from collect's:\n  {:?}\n  {:?}",
                j.id, ours.1, theirs.1
            )
        });
    }
    c.that(d.tracker["last_success"].is_string(), || {
        "the daemon cycle set no last_success".into()
    });
    c.done("daemon cycle");
}
