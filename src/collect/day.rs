//! One date's sacct output, turned into jobs and raw rows while sacct prints it.
//!
//! The bytes arrive in chunks on a blocking thread. Each record is split once into a job
//! (metrics) and a raw row: a row of a job attributed to this date goes straight into the
//! date's staged raw partition (encoded on another core), a row of a job that belongs to
//! another date is kept aside for the writer. Nothing the size of the day is held: not
//! the text, not the rows; only the jobs (~1 KB each) and the rows that go elsewhere.

use std::sync::Arc;

use chrono::NaiveDate;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::attribution;
use crate::fxhash::FxHashMap;
use crate::metrics::{Context, JobBuilder, Slot};
use crate::model::ProcessedJob;
use crate::sacct::command::{run_streaming, AttemptError, Cancelled, SacctProgram};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::{recycle, split_fields, Malformed};
use crate::sacct::stream::{Event, StreamParser};
use crate::slurm::run::{ChunkPool, CommandError, Finished};
use crate::store::parquet::{Meta, StoreError};
use crate::store::raw::RawStage;
use crate::store::Archive;
use crate::zone::Zone;

/// A date's output, parsed, its own raw rows staged (not yet merged with the archive).
pub(super) struct Day {
    pub jobs: Vec<ProcessedJob>,
    /// Whether each job belongs to this date (else its rows are in `elsewhere`).
    pub here: Vec<bool>,
    /// Raw rows of jobs that belong to another date, by job index.
    pub elsewhere: FxHashMap<usize, Vec<String>>,
    /// This date's fresh raw rows, staged.
    pub raw: RawStage,
    /// Text that is not a record (also staged verbatim in the raw partition).
    pub malformed: Vec<Malformed>,
    /// Step rows whose job line was not in the output (staged in the raw partition).
    pub orphans: usize,
    pub lossy: bool,
    /// Rows sacct returned: records (job lines and steps) and unparsable text.
    pub rows: usize,
}

/// Why fetching a date failed: sacct, or writing its staged partition.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error(transparent)]
    Sacct(#[from] CommandError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("parsing sacct's output failed: {0}")]
    Internal(String),
}

impl From<Cancelled> for FetchError {
    fn from(c: Cancelled) -> Self {
        FetchError::Sacct(c.into())
    }
}

impl AttemptError for FetchError {
    /// sacct's failures are retried; a write that failed (a full disk) is not: the date
    /// fails and the next cycle tries again.
    fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Sacct(e) if e.is_retryable())
    }
    fn is_timeout(&self) -> bool {
        matches!(self, FetchError::Sacct(e) if AttemptError::is_timeout(e))
    }
    fn is_cancelled(&self) -> bool {
        matches!(self, FetchError::Sacct(CommandError::Cancelled))
    }
}

/// What a fetch needs besides the sacct call.
#[derive(Clone)]
pub(super) struct DaySpec {
    pub date: NaiveDate,
    pub zone: Zone,
    pub layout: Arc<FieldLayout>,
    pub ctx: Context,
    pub meta: Meta,
    /// Where the date's raw partition is staged.
    pub archive: Archive,
    /// Bounds the dates being parsed and encoded at once ([`Collector::parse_slots`]).
    ///
    /// [`Collector::parse_slots`]: super::Collector::parse_slots
    pub parse_slots: Arc<Semaphore>,
}

/// Runs sacct once for the date and builds its [`Day`] while sacct prints.
pub(super) async fn fetch(
    prog: &SacctProgram,
    args: &[std::ffi::OsString],
    timeout: std::time::Duration,
    cancel: &CancellationToken,
    spec: DaySpec,
) -> Result<(Day, Finished), FetchError> {
    // Two chunks in flight: sacct runs ahead of the parser by at most 2 MB.
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(2);
    let pool = ChunkPool::default();
    let returned = pool.clone();
    let slots = spec.parse_slots.clone();
    let stop = cancel.clone();
    let consumer = async move {
        // Parsing and encoding keep a core busy each: with more sacct calls than parse
        // slots (one per two cores), a date waits here for a slot while its sacct (its query
        // long answered) blocks on a full pipe, so memory holds the dates being parsed, not
        // every date fetched. On shutdown a date still waiting is not parsed at all, and
        // one being parsed stops at its next chunk: the day would be dropped anyway, and
        // the daemon has a grace period to keep.
        let _slot = tokio::select! {
            slot = slots.acquire_owned() => slot,
            _ = stop.cancelled() => return Ok(Ok(None)),
        };
        tokio::task::spawn_blocking(move || -> Result<Option<Day>, StoreError> {
            let layout = spec.layout.clone();
            let mut b = DayBuilder::new(&spec, &layout);
            while let Some(chunk) = rx.blocking_recv() {
                if stop.is_cancelled() {
                    return Ok(None);
                }
                b.feed(&chunk)?;
                returned.give(chunk);
            }
            b.finish().map(Some)
        })
        .await
        .map_err(|e| FetchError::Internal(e.to_string()))
    };
    // The sender is gone when sacct ends either way, so the consumer ends; a partial day
    // is dropped (its temp file removed) before any retry starts.
    let (run, built) = tokio::join!(
        run_streaming(prog, args, timeout, cancel, tx, &pool),
        consumer
    );
    match (run, built) {
        (Ok(run), Ok(Ok(Some(day)))) => Ok((day, run)),
        (Ok(_), Ok(Ok(None))) => Err(Cancelled.into()),
        (Ok(_) | Err(CommandError::Abandoned), Ok(Err(store))) => Err(store.into()),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e.into()),
    }
}

/// The date's raw stage, opened when first needed.
struct LazyStage<'l> {
    spec: &'l DaySpec,
    layout: &'l Arc<FieldLayout>,
    stage: Option<RawStage>,
}

impl LazyStage<'_> {
    fn open(&mut self) -> Result<&mut RawStage, StoreError> {
        if self.stage.is_none() {
            let s = &self.spec;
            self.stage = Some(s.archive.stage_raw(s.date, self.layout.clone(), &s.meta)?);
        }
        Ok(self.stage.as_mut().expect("opened above"))
    }

    fn push_fields(&mut self, f: &[&str]) -> Result<(), StoreError> {
        self.open()?.push_fields(f)
    }

    fn push(&mut self, text: &str) -> Result<(), StoreError> {
        self.open()?.push(text)
    }

    fn push_malformed(&mut self, line: &str) -> Result<(), StoreError> {
        self.open()?.push_malformed(line)
    }

    fn get(mut self) -> Result<RawStage, StoreError> {
        self.open()?;
        Ok(self.stage.expect("opened above"))
    }
}

/// Builds a [`Day`] from chunks of output.
struct DayBuilder<'l> {
    parser: StreamParser,
    sink: Router<'l>,
}

/// Sends each record to its job and its row to where the job belongs.
struct Router<'l> {
    date: NaiveDate,
    zone: Zone,
    jobs: JobBuilder<'l>,
    /// Opened at the first row, so a sacct that hangs or fails before printing anything
    /// leaves nothing in the data dir, not even a temp file.
    raw: LazyStage<'l>,
    here: Vec<bool>,
    elsewhere: FxHashMap<usize, Vec<String>>,
    /// Steps seen before their job line: (group, text).
    pending: Vec<(usize, String)>,
    malformed: Vec<Malformed>,
    /// Reused for the fields of one record.
    scratch: Vec<&'static str>,
    /// Rows seen: records and unparsable text.
    rows: usize,
}

impl Router<'_> {
    fn event(&mut self, e: Event<'_>) -> Result<(), StoreError> {
        self.rows += 1;
        match e {
            Event::Record { text, .. } => {
                // Split once, for both the job and the raw row.
                let mut f = recycle(std::mem::take(&mut self.scratch));
                split_fields(text, self.jobs.layout(), &mut f);
                let r = self.record(text, &f);
                self.scratch = recycle(f);
                r
            }
            Event::Malformed(m) => {
                self.raw.push_malformed(&m.text)?;
                self.malformed.push(m);
                Ok(())
            }
        }
    }

    fn record(&mut self, text: &str, f: &[&str]) -> Result<(), StoreError> {
        match self.jobs.push_fields(f) {
            Slot::Job(j) => {
                if j == self.here.len() {
                    // The job line comes first: its times give the job's date at once.
                    let d = attribution(self.jobs.job(j), &self.zone);
                    self.here.push(d.is_none_or(|d| d == self.date));
                }
                if self.here[j] {
                    self.raw.push_fields(f)
                } else {
                    self.elsewhere.entry(j).or_default().push(text.to_string());
                    Ok(())
                }
            }
            Slot::Pending(g) => {
                self.pending.push((g, text.to_string()));
                Ok(())
            }
        }
    }
}

impl<'l> DayBuilder<'l> {
    fn new(spec: &'l DaySpec, layout: &'l Arc<FieldLayout>) -> Self {
        DayBuilder {
            parser: StreamParser::new(layout),
            sink: Router {
                date: spec.date,
                zone: spec.zone.clone(),
                jobs: JobBuilder::new(layout, &spec.ctx),
                raw: LazyStage {
                    spec,
                    layout,
                    stage: None,
                },
                here: Vec::new(),
                elsewhere: FxHashMap::default(),
                pending: Vec::new(),
                malformed: Vec::new(),
                scratch: Vec::new(),
                rows: 0,
            },
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let sink = &mut self.sink;
        self.parser.feed(chunk, &mut |e| sink.event(e))
    }

    fn finish(mut self) -> Result<Day, StoreError> {
        let sink = &mut self.sink;
        self.parser.finish(&mut |e| sink.event(e))?;
        let mut r = self.sink;
        let built = r.jobs.finish();
        let mut orphans = 0;
        for (g, text) in r.pending {
            match built.job_of_group(g) {
                Some(j) if !r.here[j] => r.elsewhere.entry(j).or_default().push(text),
                Some(_) => r.raw.push(&text)?,
                None => {
                    orphans += 1;
                    r.raw.push(&text)?;
                }
            }
        }
        let mut raw = r.raw.get()?;
        raw.seal()?;
        let mut jobs = built.jobs;
        // Grown by doubling: up to half of it unused while the day waits for the writer.
        jobs.shrink_to_fit();
        Ok(Day {
            jobs,
            here: r.here,
            elsewhere: r.elsewhere,
            raw,
            malformed: r.malformed,
            orphans,
            lossy: self.parser.lossy,
            rows: r.rows,
        })
    }
}
