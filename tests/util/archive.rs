//! Reading a data dir back the way the tests check it: one raw column as text, temp files,
//! every file's bytes, and [`inspect`]'s [`Snapshot`] of which job lives in which partition,
//! which a [`Ledger`] compares kill after kill so nothing archived is ever lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use slurm_usage::store::parquet::{read_processed, read_raw, Existing};
use slurm_usage::store::{Archive, Kind};

/// One column of a raw partition as text.
pub fn raw_column(path: &Path, name: &str) -> Vec<Option<String>> {
    column_text(&read_raw(path).unwrap().into_inner(), name)
}

/// Column `name` of `batches`, cast to text (None for null).
fn column_text(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = arrow_cast::cast(
            b.column_by_name(name).unwrap(),
            &arrow_schema::DataType::Utf8,
        )
        .unwrap();
        let c = c.as_string::<i32>();
        for i in 0..c.len() {
            out.push(c.is_valid(i).then(|| c.value(i).to_string()));
        }
    }
    out
}

/// Temp files anywhere under `dir`, by the collector's own rule for their names.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if slurm_usage::store::atomic::is_temp_name(&e.file_name().to_string_lossy()) {
                found.push(p);
            }
        }
    }
    found
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn snapshot_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// What one look at the data dir found (the crash and daemon-fault tests).
#[derive(Default)]
pub struct Snapshot {
    /// job_id -> the dates whose processed partition holds it.
    pub processed: HashMap<String, Vec<NaiveDate>>,
    /// JobIDRaw of every raw row.
    pub raw: HashSet<String>,
    pub temps: usize,
}

impl Snapshot {
    /// Jobs in more than one processed partition.
    pub fn duplicates(&self) -> BTreeMap<&String, &Vec<NaiveDate>> {
        self.processed.iter().filter(|(_, d)| d.len() > 1).collect()
    }

    /// After a clean run: every job of `want` (an un-killed run's data) is here, and no job
    /// is in more than one partition.
    pub fn assert_each_job_once(&self, want: &Snapshot, when: &str) {
        assert_eq!(self.temps, 0, "temp files left {when}");
        let dups = self.duplicates();
        assert!(
            dups.is_empty(),
            "jobs in more than one partition {when}: {dups:?}"
        );
        let missing: Vec<&String> = (want.processed.keys())
            .filter(|id| !self.processed.contains_key(*id))
            .collect();
        assert!(missing.is_empty(), "jobs missing {when}: {missing:?}");
    }
}

/// Reads every partition and the tracker; panics on anything inconsistent: a partition that
/// does not load or was moved aside, a file that is neither a partition nor a temp file.
pub fn inspect(data: &Path) -> Snapshot {
    let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
    let dd = Archive::local(data);
    let mut snap = Snapshot::default();
    for kind in [Kind::Processed, Kind::Raw] {
        let Ok(entries) = std::fs::read_dir(dd.prefix(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if slurm_usage::store::atomic::is_temp_name(&name) {
                snap.temps += 1;
                continue;
            }
            assert!(
                !name.contains(".corrupt-"),
                "a partition was moved aside: {}",
                e.path().display()
            );
            assert!(
                name.ends_with(".parquet") && name.len() == "YYYY-MM-DD.parquet".len(),
                "unexpected file {}",
                e.path().display()
            );
        }
        for date in dd.dates(kind).unwrap() {
            let path = dd.name(kind, date);
            match kind {
                Kind::Processed => match read_processed(&path, &zone).unwrap() {
                    Existing::Found(jobs) => {
                        for j in jobs {
                            snap.processed
                                .entry(j.job_id.into())
                                .or_default()
                                .push(date);
                        }
                    }
                    other => panic!("{} does not load: {other:?}", path.display()),
                },
                Kind::Raw => match read_raw(&path).unwrap() {
                    Existing::Found(batches) => {
                        snap.raw
                            .extend(column_text(&batches, "JobIDRaw").into_iter().flatten());
                    }
                    other => panic!("{} does not load: {other:?}", path.display()),
                },
            }
        }
    }
    let tracker = dd.tracker_name();
    if tracker.exists() {
        slurm_usage::store::tracker::Tracker::load(&tracker).expect("the tracker loads");
    }
    snap
}

/// Everything archived so far, and the check that it never shrinks: fed one [`Snapshot`]
/// after another (after every kill), it lists every job or raw row that was archived once
/// and is gone.
#[derive(Default)]
pub struct Ledger {
    /// Every job id ever seen in a processed partition, with the date it was first seen in.
    pub jobs: HashMap<String, NaiveDate>,
    pub raw: HashSet<String>,
    /// Jobs no longer in the date they were seen in, but in another (moved to their start).
    pub moved: usize,
    pub lost: Vec<String>,
}

impl Ledger {
    /// Looks at the data dir after a kill: nothing seen before may be gone. Returns what it
    /// found; `what` says which kill, for the message.
    pub fn check_after(&mut self, data: &Path, what: &str) -> Snapshot {
        let snap = inspect(data);
        self.check(&snap);
        assert!(self.lost.is_empty(), "lost after {what}: {:?}", self.lost);
        snap
    }

    pub fn check(&mut self, snap: &Snapshot) {
        for (id, date) in &self.jobs {
            match snap.processed.get(id) {
                None => self.lost.push(format!("job {id} (was in {date})")),
                Some(ds) if !ds.contains(date) => self.moved += 1,
                Some(_) => {}
            }
        }
        for id in &self.raw {
            if !snap.raw.contains(id) {
                self.lost.push(format!("raw row {id}"));
            }
        }
        for (id, ds) in &snap.processed {
            self.jobs.entry(id.clone()).or_insert(ds[0]);
        }
        self.raw.extend(snap.raw.iter().cloned());
    }
}
