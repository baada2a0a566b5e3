//! The data dirs the phases collect into (`target/tmp/real_slurm/`, kept for inspection):
//! their config, and reading every partition and the tracker back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::Array;
use arrow_schema::DataType;
use chrono::NaiveDate;
use slurm_usage::model::ProcessedJob;
use slurm_usage::store::parquet::{read_processed, read_raw, Existing};
use slurm_usage::zone::Zone;

/// The completion tracker's file name in a data dir.
pub const TRACKER: &str = ".date_completion_tracker.json";

/// One raw archive row: column -> text (None for null).
pub type RawRow = BTreeMap<String, Option<String>>;

/// The dates of the `YYYY-MM-DD.parquet` partitions in `dir`, sorted.
pub fn dates_in(dir: &Path) -> Vec<NaiveDate> {
    let mut v: Vec<NaiveDate> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            NaiveDate::parse_from_str(name.strip_suffix(".parquet")?, "%Y-%m-%d").ok()
        })
        .collect();
    v.sort();
    v
}

/// Every processed partition of `data`, by date.
pub fn read_all_processed(
    data: &Path,
    zone: &Zone,
) -> Result<BTreeMap<NaiveDate, Vec<ProcessedJob>>, String> {
    let mut out = BTreeMap::new();
    for d in dates_in(&data.join("processed")) {
        let path = data.join(format!("processed/{d}.parquet"));
        match read_processed(&path, zone).map_err(|e| e.to_string())? {
            Existing::Found(jobs) => {
                out.insert(d, jobs);
            }
            other => return Err(format!("{} is not readable: {other:?}", path.display())),
        }
    }
    Ok(out)
}

/// Every raw partition of `data`, by date, each row as text.
pub fn read_all_raw(data: &Path) -> Result<BTreeMap<NaiveDate, Vec<RawRow>>, String> {
    let mut out = BTreeMap::new();
    for d in dates_in(&data.join("raw")) {
        let path = data.join(format!("raw/{d}.parquet"));
        let batches = match read_raw(&path).map_err(|e| e.to_string())? {
            Existing::Found(b) => b,
            other => return Err(format!("{} is not readable: {other:?}", path.display())),
        };
        let mut rows = Vec::new();
        for b in &batches {
            let cols: Vec<(String, arrow_array::ArrayRef)> = b
                .schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| Ok((f.name().clone(), arrow_cast::cast(c, &DataType::Utf8)?)))
                .collect::<Result<_, arrow_schema::ArrowError>>()
                .map_err(|e| e.to_string())?;
            for i in 0..b.num_rows() {
                rows.push(
                    cols.iter()
                        .map(|(n, c)| {
                            let c = c.as_string::<i32>();
                            (n.clone(), c.is_valid(i).then(|| c.value(i).to_string()))
                        })
                        .collect(),
                );
            }
        }
        out.insert(d, rows);
    }
    Ok(out)
}

/// Copies `from` (files and directories) to `to`.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// Where the phases and the other tests keep their data dirs (wiped by the first phase).
pub fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("real_slurm")
}

/// A config in `dir` for a data dir `dir/data` in `zone`, with the real `sacct`.
pub fn write_config(dir: &Path, zone: &str) -> Result<PathBuf, String> {
    let path = dir.join("config.toml");
    let text = format!(
        "# written by tests/real_slurm/\n\
         data_dir = \"{}\"\n\
         timezone = \"{zone}\"\n\
         [schedule]\n\
         cron = \"0 15 2 * * *\"\n\
         jitter = \"0s\"\n\
         [collect]\n\
         lookback_days = 1\n\
         sacct = \"sacct\"\n\
         sacct_timeout = \"60s\"\n\
         retries = 1\n\
         retry_delay = \"1s\"\n\
         settle = \"1h\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
