//! Time-bounded fuzzing of the sacct line parser, the job builder and the field parsers,
//! with a kept corpus (issue 7). Stable Rust: no cargo-fuzz, no extra crate.
//!
//! 1. Replays every file of `tests/fuzz/corpus/`: the real captures of
//!    `tests/fixtures/sacct/` whole, line by line and job by job, one job of each kind from the
//!    synthetic sacct, and tricky records (newlines, `|`, the delimiter, NUL and invalid UTF-8
//!    in free text; odd job ids, durations, memory sizes, TRES strings, host lists, times,
//!    states, integers; truncated, headerless, orphaned and repeated records).
//! 2. Mutates corpus entries for `FUZZ_SECONDS` seconds (default 3; `.ci/run` gives it 60):
//!    byte flips, inserted delimiters (0x1f, `|`), newlines, digit runs and tokens of a small
//!    dictionary, whole fields replaced, ranges deleted or repeated, truncation, splices of two
//!    entries. An input that shows a feature no earlier input showed (a new malformed-record
//!    reason, a record spanning more lines, a field parser outcome not seen yet) joins the
//!    in-memory corpus, and with `FUZZ_CORPUS_OUT=DIR` is written there too (copy the ones
//!    worth keeping into `tests/fuzz/corpus/`).
//!
//! Every input goes through [`SacctOutput::parse`] under four layouts (ours, the real 22.05
//! capture's field order with 0x1f and with `|`, the Python tool's `|` header), then
//! [`build_jobs`], and every field parser runs on every field, short line and short input.
//! Checked: no panic (integer overflow included: tests build with overflow checks); every
//! line in exactly one record or malformed entry; records in order, disjoint, starting with a
//! job id, splitting into exactly the layout's field count and joining back to their text;
//! `split_prefix` agrees with the full split; every record in exactly one job or the orphans,
//! allocation line first; efficiencies within 0-100 and no negative hours, counts or waits;
//! field parsers never negative, and their results read back from their Display form
//! (durations, memory, integers, times, dates, states, job ids, host lists without ranges).
//!
//! A failing input is minimised and written to `tests/fuzz/crashes/` (the paths are printed;
//! the directory is git-ignored, so nothing is committed by accident), and the test fails
//! when the time is up. Replay one with `FUZZ_INPUT=tests/fuzz/crashes/<file> cargo test
//! --test fuzz_parser -- --nocapture`; once fixed, move it into the corpus. `FUZZ_SEED=N`
//! repeats a run's sequence of inputs (the seed is printed).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Datelike;
use slurm_usage::metrics::{build_jobs, Context};
use slurm_usage::sacct::fields::{FieldLayout, DELIMITER};
use slurm_usage::sacct::parser::*;
use slurm_usage::slurm::hostlist::expand_nodelist;
use slurm_usage::slurm::job::{array_parts, is_final_state, job_of_step, normalize_state};
use slurm_usage::slurm::tres::{tres_cpu_seconds, tres_gpus, tres_mem_mb, tres_pairs, tres_value};
use slurm_usage::slurm::units::{parse_duration, parse_int, parse_memory_mb};

/// The product's cap on one host list's names (`MAX_NODES` in src/slurm/hostlist.rs).
const MAX_NODES: usize = 200_000;
/// Inputs grow no larger than this (the corpus's largest file is ~20 KB).
const MAX_INPUT: usize = 64 * 1024;
/// Field parsers also run on lines and inputs up to this long.
const SHORT: usize = 256;

// ---------------------------------------------------------------------------------------
// Random numbers: xorshift64*, seeded from FUZZ_SEED or the clock.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// The layouts every input is parsed with.

struct Layouts {
    all: Vec<(&'static str, FieldLayout)>,
}

impl Layouts {
    fn new() -> Layouts {
        let cmd = include_str!("fixtures/sacct/real-22.05-command.txt");
        let list = cmd
            .split("--format=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("the capture's command has --format=");
        let header = include_str!("fixtures/sacct/sacct-parsable-with-header.txt")
            .lines()
            .next()
            .expect("the fixture has a header");
        Layouts {
            all: vec![
                ("ours", FieldLayout::ours()),
                (
                    "real",
                    FieldLayout::new(list.split(','), DELIMITER).unwrap(),
                ),
                ("real|", FieldLayout::new(list.split(','), b'|').unwrap()),
                (
                    "python|",
                    FieldLayout::new(header.split('|'), b'|').unwrap(),
                ),
            ],
        }
    }
}

// ---------------------------------------------------------------------------------------
// Features: what an input made the code do, coarsely. A new one keeps the input.

#[derive(Default)]
struct Features(Vec<u64>);

impl Features {
    fn add(&mut self, tag: &str, a: u64, b: u64) {
        let mut h = fnv(tag.as_bytes());
        h = (h ^ a).wrapping_mul(0x0100_0000_01b3);
        h = (h ^ b).wrapping_mul(0x0100_0000_01b3);
        self.0.push(h);
    }
}

fn bucket(n: usize) -> u64 {
    match n {
        0..=4 => n as u64,
        5..=9 => 5,
        10..=99 => 10,
        100..=999 => 100,
        _ => 1000,
    }
}

/// Non-fatal oddities worth a line in the summary (not failures).
#[derive(Default)]
struct Notes {
    non_finite_metric: u64,
    non_finite_example: Option<String>,
    max_nodelist_bytes: usize,
}

// ---------------------------------------------------------------------------------------
// The checks. A violated invariant panics; the driver catches it.

fn check_input(bytes: &[u8], layouts: &Layouts, feats: &mut Features, notes: &mut Notes) {
    let ctx = Context {
        sacct_version: "slurm-wlm 22.05.8".into(),
        processed_date: 1_764_000_000_000_000,
    };
    let lossless = std::str::from_utf8(bytes).is_ok();
    let mut outs = Vec::with_capacity(layouts.all.len());
    for (li, (name, layout)) in layouts.all.iter().enumerate() {
        let out = SacctOutput::parse(bytes.to_vec(), layout);
        check_output(&out, bytes, lossless, layout, name);
        let built = build_jobs(&out, layout, &ctx);
        check_jobs(&out, layout, &built, notes);

        let li = li as u64;
        feats.add("records", li, bucket(out.records.len()));
        feats.add("jobs", li, bucket(built.jobs.len()));
        feats.add("orphans", li, bucket(built.orphan_records.len()));
        feats.add("lossy", li, u64::from(out.lossy));
        for r in &out.records {
            let lines = out.record_text(r).matches('\n').count() + 1;
            feats.add("record-lines", li, bucket(lines));
        }
        for m in &out.malformed {
            // The reason with its numbers: "expected 62 fields, found 7" -> one feature per count.
            let found = m
                .reason
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(u64::MAX, |n| n.min(100));
            let kind = m.reason.split(' ').next().unwrap_or("");
            feats.add(kind, li, found);
        }
        for steps in &built.records {
            feats.add("steps", li, bucket(steps.len()));
        }
        outs.push(out);
    }
    // Field parsers on every distinct field (ours, and `|`-split), short line and short input.
    let mut values: HashSet<&str> = HashSet::new();
    let mut fields = Vec::new();
    for (oi, out) in outs.iter().enumerate() {
        if oi != 0 && oi != 2 {
            continue;
        }
        let layout = &layouts.all[oi].1;
        for r in &out.records {
            out.fields(r, layout, &mut fields);
            values.extend(fields.iter().copied());
        }
    }
    let text = &outs[0].text;
    if text.len() <= SHORT {
        values.insert(text);
    }
    for line in text.split('\n').filter(|l| l.len() <= SHORT) {
        values.insert(line);
    }
    for v in values {
        check_field(v, feats, notes);
    }
}

/// Every non-empty line of the decoded text is in exactly one record or malformed entry;
/// records are ordered, disjoint, start with a job id, and split into the layout's fields.
fn check_output(out: &SacctOutput, bytes: &[u8], lossless: bool, layout: &FieldLayout, name: &str) {
    assert_eq!(out.lossy, !lossless, "{name}: lossy flag");
    assert_eq!(
        out.text,
        String::from_utf8_lossy(bytes),
        "{name}: decoded text"
    );
    let lines: Vec<&str> = if out.text.is_empty() {
        Vec::new()
    } else {
        let t = out.text.strip_suffix('\n').unwrap_or(&out.text);
        t.split('\n').collect()
    };
    assert_eq!(out.lines, lines.len(), "{name}: line count");
    let mut owner = vec![0u32; lines.len()];
    let mut mark = |first: usize, text: &str| {
        let n = text.matches('\n').count() + 1;
        for l in first..first + n {
            assert!(l >= 1 && l <= lines.len(), "{name}: line {l} out of range");
            owner[l - 1] += 1;
        }
    };
    let mut fields = Vec::new();
    let mut prefix = Vec::new();
    let mut prev_end = 0;
    let mut prev_line = 0;
    for r in &out.records {
        assert!(r.start <= r.end && r.end <= out.text.len(), "{name}: range");
        assert!(
            r.start >= prev_end && r.line > prev_line,
            "{name}: records out of order"
        );
        (prev_end, prev_line) = (r.end, r.line);
        let text = out.record_text(r);
        assert!(
            text.as_bytes().first().is_some_and(u8::is_ascii_digit),
            "{name}: record does not start with a job id: {text:?}"
        );
        mark(r.line, text);
        out.fields(r, layout, &mut fields);
        assert_eq!(fields.len(), layout.len(), "{name}: field count");
        let d = (layout.delimiter as char).to_string();
        assert_eq!(fields.join(&d), text, "{name}: fields do not join back");
        for k in [1, layout.step_prefix, layout.len() / 2, layout.len()] {
            split_prefix(text, layout, k, &mut prefix);
            assert_eq!(prefix.len(), layout.len(), "{name}: prefix field count");
            let k = k.min(layout.len());
            assert_eq!(prefix[..k], fields[..k], "{name}: split_prefix({k})");
            assert!(prefix[k..].iter().all(|f| f.is_empty()), "{name}: past k");
        }
    }
    for m in &out.malformed {
        assert!(!m.text.is_empty() && !m.reason.is_empty(), "{name}: {m:?}");
        mark(m.line, &m.text);
    }
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            assert!(owner[i] <= 1, "{name}: empty line {} taken twice", i + 1);
        } else {
            assert_eq!(
                owner[i],
                1,
                "{name}: line {} taken {} times",
                i + 1,
                owner[i]
            );
        }
    }
}

/// Every record in exactly one job (allocation line first) or among the orphans; the jobs'
/// numbers are within their ranges.
fn check_jobs(
    out: &SacctOutput,
    layout: &FieldLayout,
    built: &slurm_usage::metrics::BuiltJobs,
    notes: &mut Notes,
) {
    assert_eq!(
        built.jobs.len(),
        built.records.len(),
        "one record list a job"
    );
    let mut seen = vec![0u8; out.records.len()];
    let mut fields = Vec::new();
    let raw_id = |fields: &[&str]| {
        let raw = fields[layout.job_id_raw].trim();
        if raw.is_empty() {
            fields[layout.job_id].trim().to_string()
        } else {
            raw.to_string()
        }
    };
    let mut bases = HashSet::new();
    for (job, recs) in built.jobs.iter().zip(&built.records) {
        assert!(!recs.is_empty(), "a job without records");
        out.fields(&out.records[recs[0] as usize], layout, &mut fields);
        let alloc = raw_id(&fields);
        assert_eq!(
            job_of_step(&alloc),
            alloc,
            "first record is not the allocation line"
        );
        assert!(bases.insert(alloc.clone()), "job {alloc} built twice");
        for &r in recs {
            seen[r as usize] += 1;
            out.fields(&out.records[r as usize], layout, &mut fields);
            assert_eq!(
                job_of_step(&raw_id(&fields)),
                alloc,
                "a step of another job"
            );
        }
        assert_eq!(job.is_complete, is_final_state(&job.state), "is_complete");
        for (what, v) in [
            ("cpu_efficiency", job.cpu_efficiency),
            ("memory_efficiency", job.memory_efficiency),
        ] {
            assert!((0.0..=100.0).contains(&v), "{what} {v}");
        }
        let numbers = [
            ("req_mem_mb", job.req_mem_mb),
            ("max_rss_mb", job.max_rss_mb),
            ("total_cpu_seconds", job.total_cpu_seconds),
            ("cpu_hours_wasted", job.cpu_hours_wasted),
            ("memory_gb_hours_wasted", job.memory_gb_hours_wasted),
            ("cpu_hours_reserved", job.cpu_hours_reserved),
            ("memory_gb_hours_reserved", job.memory_gb_hours_reserved),
            ("gpu_hours_reserved", job.gpu_hours_reserved),
            ("alloc_mem_mb", job.alloc_mem_mb),
        ];
        for (what, v) in numbers {
            assert!(v.is_nan() || v >= 0.0, "{what} is negative: {v}");
            if !v.is_finite() {
                notes.non_finite_metric += 1;
                if notes.non_finite_example.is_none() {
                    notes.non_finite_example = Some(format!(
                        "{what} = {v} for job {:?} ({:?})",
                        job.job_id,
                        out.record_text(&out.records[recs[0] as usize])
                    ));
                }
            }
        }
        for (what, v) in [
            ("elapsed_seconds", job.elapsed_seconds),
            ("alloc_cpus", job.alloc_cpus),
            ("alloc_gpus", job.alloc_gpus),
            ("alloc_nodes", job.alloc_nodes),
            ("wait_seconds", job.wait_seconds.unwrap_or(0)),
            ("timelimit_seconds", job.timelimit_seconds.unwrap_or(0)),
        ] {
            assert!(v >= 0, "{what} is negative: {v}");
        }
    }
    for &r in &built.orphan_records {
        seen[r as usize] += 1;
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "records not in exactly one job or the orphans: {seen:?}"
    );
}

/// Field parsers: never panic, never negative, and read back what they print.
fn check_field(s: &str, feats: &mut Features, notes: &mut Notes) {
    let d = parse_duration(s);
    if let Some(v) = d {
        assert!(v >= 0.0, "parse_duration({s:?}) = {v}");
        if v.fract() == 0.0 && v < 1e15 {
            let t = v as u64;
            let back = format!(
                "{}-{:02}:{:02}:{:02}",
                t / 86_400,
                t / 3600 % 24,
                t / 60 % 60,
                t % 60
            );
            assert_eq!(parse_duration(&back), Some(v), "duration {s:?} -> {back:?}");
        }
    }
    feats.add(
        "duration",
        u64::from(d.is_some()),
        bucket(s.matches(':').count()) + 10_000 * u64::from(s.contains('-')),
    );

    let m = parse_memory_mb(s);
    if let Some(v) = m {
        assert!(v >= 0.0, "parse_memory_mb({s:?}) = {v}");
        if v.is_finite() {
            assert_eq!(parse_memory_mb(&format!("{v}M")), Some(v), "memory {s:?}");
        }
    }
    feats.add(
        "memory",
        u64::from(m.is_some()),
        // The unit: none, K M G T P (either case), c or n (per CPU or node), anything else.
        match s.trim().as_bytes().last().map(u8::to_ascii_uppercase) {
            None => 0,
            Some(b'0'..=b'9') => 1,
            Some(u @ (b'K' | b'M' | b'G' | b'T' | b'P' | b'C' | b'N')) => u64::from(u),
            Some(_) => 2,
        },
    );
    let rm = parse_req_mem(s);
    if let Some((v, per)) = rm {
        assert!(v >= 0.0, "parse_req_mem({s:?}) = {v}");
        feats.add("req_mem", per as u64, 0);
    }

    let pairs = tres_pairs(s).count();
    for key in ["mem", "cpu", "gres/gpu", "node"] {
        if let Some(v) = tres_value(s, key) {
            assert!(!v.contains(','), "tres_value({s:?}, {key}) = {v:?}");
            assert!(s.contains(&format!("{key}=")), "tres_value({s:?}, {key})");
        }
    }
    let tm = tres_mem_mb(s);
    assert!(tm.is_none_or(|v| v >= 0.0), "tres_mem_mb({s:?}) = {tm:?}");
    let tc = tres_cpu_seconds(s);
    assert!(
        tc.is_none_or(|v| v >= 0.0),
        "tres_cpu_seconds({s:?}) = {tc:?}"
    );
    let gpus = tres_gpus(s);
    assert!(gpus >= 0, "tres_gpus({s:?}) = {gpus}");
    feats.add(
        "tres",
        bucket(pairs),
        u64::from(gpus > 0) + 2 * u64::from(tm.is_some()),
    );

    let i = parse_int(s);
    if let Some(v) = i {
        assert!(v >= 0, "parse_int({s:?}) = {v}");
        assert_eq!(parse_int(&v.to_string()), Some(v), "int {s:?}");
    }
    let limit = parse_timelimit_seconds(Some(s), Some(s));
    assert!(limit.is_none_or(|v| v >= 0), "timelimit({s:?}) = {limit:?}");
    feats.add("int", u64::from(i.is_some()), u64::from(limit.is_some()));

    let t = parse_time_utc(s);
    if let Some(t) = t {
        if (0..=9999).contains(&t.year()) {
            let iso = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            assert_eq!(parse_time_utc(&iso), Some(t), "time {s:?} -> {iso:?}");
        }
        if t.timestamp() >= 0 {
            // Whole seconds: `23:59:60` reads as a leap second, which epoch seconds cannot say.
            let epoch = t.timestamp().to_string();
            let back = parse_time_utc(&epoch).map(|b| b.timestamp());
            assert_eq!(back, Some(t.timestamp()), "time {s:?} -> {epoch:?}");
        }
    }
    if let Some(date) = parse_date(s) {
        if (0..=9999).contains(&date.year()) {
            assert_eq!(parse_date(&date.to_string()), Some(date), "date {s:?}");
        }
    }
    feats.add("time", u64::from(t.is_some()), bucket(s.len()));

    let state = normalize_state(s);
    assert!(s.contains(state), "normalize_state({s:?}) = {state:?}");
    assert!(
        !state.ends_with('+') && !state.contains(char::is_whitespace),
        "normalize_state({s:?}) = {state:?}"
    );
    assert_eq!(
        normalize_state(state),
        state,
        "normalize_state not idempotent"
    );
    feats.add("state", u64::from(is_final_state(state)), 0);

    let job = job_of_step(s);
    assert!(
        s.starts_with(job) && !job.contains('.'),
        "job_of_step({s:?}) = {job:?}"
    );
    if let Some((base, task)) = array_parts(s) {
        assert!(s[base.len()..].starts_with('_'), "array_parts({s:?})");
        feats.add("array", u64::from(task.is_some()), 0);
    }

    // Host lists: at most MAX_NODES names; without brackets, the comma-separated names.
    let nodes = expand_nodelist(s);
    assert!(
        nodes.len() <= MAX_NODES,
        "{s:?} expands to {} names",
        nodes.len()
    );
    let bytes: usize = nodes.iter().map(String::len).sum();
    notes.max_nodelist_bytes = notes.max_nodelist_bytes.max(bytes);
    let blank = matches!(
        s.trim(),
        "" | "Unknown" | "None" | "N/A" | "n/a" | "INVALID" | "(null)" | "None assigned"
    );
    if !s.contains(['[', ']']) && !blank {
        let want: Vec<&str> = s
            .trim()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(nodes, want, "expand_nodelist({s:?})");
    }
    feats.add("nodes", bucket(nodes.len()), 0);
}

// ---------------------------------------------------------------------------------------
// Mutations.

const DICT: &[&[u8]] = &[
    b"\x1f",
    b"\n",
    b"|",
    b"\r\n",
    b"0",
    b"-1",
    b"4294967295",
    b"4294967294",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551615",
    b"99999999999999999999",
    b"1e308",
    b"1.7976931348623157e308",
    b"NaN",
    b"inf",
    b"Unknown",
    b"None",
    b"None assigned",
    b"INVALID",
    b"UNLIMITED",
    b"Partition_Limit",
    b"(null)",
    b"gres/gpu=",
    b"gres/gpu:a100=",
    b",gres/gpu:v100=",
    b"mem=",
    b"cpu=",
    b"=",
    b",",
    b"node[001-003,010]",
    b"[1-2]",
    b"[",
    b"]",
    b"-",
    b":",
    b".",
    b"_",
    b"+0",
    b".batch",
    b".extern",
    b"_[1-3%2]",
    b"2026-11-25T16:42:00",
    b"1764088920",
    b"1-00:00:00",
    b"00:05.448",
    b"100Mc",
    b"4000Mn",
    b"16T",
    b"CANCELLED by 0",
    b"RUNNING+",
    b"COMPLETED",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b" ",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = input.len();
        let pos = rng.below(len + 1);
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let b = [
                    DELIMITER,
                    b'\n',
                    b'|',
                    b'0' + rng.below(10) as u8,
                    b'.',
                    b'_',
                ][rng.below(6)];
                input.insert(pos, b);
            }
            3 => {
                // A run: digits (overflow), delimiters (field counts), newlines.
                let b = [b'9', b'0', DELIMITER, b'\n', b'|', b'['][rng.below(6)];
                let n = [2, 10, 19, 20, 61, 62][rng.below(6)];
                input.splice(pos..pos, std::iter::repeat_n(b, n));
            }
            4 | 5 => {
                let tok = DICT[rng.below(DICT.len())];
                input.splice(pos..pos, tok.iter().copied());
            }
            6 => replace_field(rng, input),
            7 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                input.drain(a..b);
            }
            8 if len > 0 => {
                // Repeat a range (a line or a field twice).
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let copy = input[a..b].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            9 => input.truncate(pos),
            10 => {
                // Splice: this input's head, another entry's tail.
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(pos);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                // Swap a number for an extreme one.
                if let Some((a, b)) = find_number(rng, input) {
                    let tok = DICT[4 + rng.below(10)];
                    input.splice(a..b, tok.iter().copied());
                }
            }
        }
    }
    input.truncate(MAX_INPUT);
}

/// Replaces one delimited field (0x1f or `|`) with a dictionary token or an empty string,
/// keeping the field count: odd values land in the columns that parse them.
fn replace_field(rng: &mut Rng, input: &mut Vec<u8>) {
    let delim = if rng.chance(4) { b'|' } else { DELIMITER };
    let cuts: Vec<usize> = input
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == delim || b == b'\n')
        .map(|(i, _)| i)
        .collect();
    if cuts.len() < 2 {
        return;
    }
    let k = rng.below(cuts.len() - 1);
    let (a, b) = (cuts[k] + 1, cuts[k + 1]);
    let tok: &[u8] = if rng.chance(5) {
        b""
    } else {
        DICT[rng.below(DICT.len())]
    };
    input.splice(a..b, tok.iter().copied());
}

/// A run of ASCII digits, at a random place.
fn find_number(rng: &mut Rng, input: &[u8]) -> Option<(usize, usize)> {
    if input.is_empty() {
        return None;
    }
    let start = rng.below(input.len());
    let a = (start..input.len()).find(|&i| input[i].is_ascii_digit())?;
    let b = (a..input.len())
        .find(|&i| !input[i].is_ascii_digit())
        .unwrap_or(input.len());
    Some((a, b))
}

// ---------------------------------------------------------------------------------------
// The driver: panics caught, failures minimised and written out.

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Runs the checks on one input; `Err((location, message))` if they panicked.
fn run_one(
    bytes: &[u8],
    layouts: &Layouts,
    feats: &mut Features,
    notes: &mut Notes,
) -> Result<(), (String, String)> {
    feats.0.clear();
    QUIET.with(|q| q.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        check_input(bytes, layouts, feats, notes)
    }));
    QUIET.with(|q| q.set(false));
    r.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| ("?".into(), "panic without a message".into()))
    })
}

/// Drops chunks while the input still fails at the same place.
fn minimise(bytes: &[u8], location: &str, layouts: &Layouts) -> Vec<u8> {
    let mut best = bytes.to_vec();
    let (mut feats, mut notes) = (Features::default(), Notes::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = best.len() / 2;
    while chunk >= 1 && Instant::now() < deadline {
        let mut i = 0;
        let mut shrunk = false;
        while i + chunk <= best.len() && Instant::now() < deadline {
            let mut candidate = best.clone();
            candidate.drain(i..i + chunk);
            match run_one(&candidate, layouts, &mut feats, &mut notes) {
                Err((loc, _)) if loc == location => {
                    best = candidate;
                    shrunk = true;
                }
                _ => i += chunk,
            }
        }
        if !shrunk {
            chunk /= 2;
        }
    }
    best
}

fn escape(bytes: &[u8], max: usize) -> String {
    let s: String = bytes.escape_ascii().to_string();
    if s.len() > max {
        format!("{}... ({} bytes)", &s[..max], bytes.len())
    } else {
        s
    }
}

fn read_dir_sorted(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, b)
        })
        .collect()
}

#[test]
fn fuzz_sacct_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus_dir = root.join("tests/fuzz/corpus");
    let crash_dir = root.join("tests/fuzz/crashes");
    let seconds: f64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    let corpus_out = std::env::var_os("FUZZ_CORPUS_OUT").map(PathBuf::from);
    if let Some(dir) = &corpus_out {
        std::fs::create_dir_all(dir).unwrap();
    }

    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if QUIET.with(Cell::get) {
            let loc = info
                .location()
                .map_or("?".to_string(), |l| format!("{}:{}", l.file(), l.line()));
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((loc, msg)));
        } else {
            default_hook(info);
        }
    }));

    let layouts = Layouts::new();
    let (mut feats, mut notes) = (Features::default(), Notes::default());
    let mut seen: HashSet<u64> = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut failed_at: HashSet<String> = HashSet::new();
    let mut record_failure =
        |bytes: &[u8], loc: String, msg: String, what: &str, failures: &mut Vec<String>| {
            if !failed_at.insert(loc.clone()) {
                return;
            }
            let _ = std::fs::create_dir_all(&crash_dir);
            let path = crash_dir.join(format!("crash-{:016x}", fnv(bytes)));
            let min = minimise(bytes, &loc, &layouts);
            let min_path = crash_dir.join(format!("crash-{:016x}-min", fnv(&min)));
            let _ = std::fs::write(&path, bytes);
            let _ = std::fs::write(&min_path, &min);
            let text = format!(
                "{what}: panicked at {loc}: {msg}\n  input: {}\n  minimised ({} bytes): {}\n  \
                 replay: FUZZ_INPUT={} cargo test --test fuzz_parser -- --nocapture",
                path.display(),
                min.len(),
                escape(&min, 300),
                min_path.display()
            );
            eprintln!("fuzz: FAILED {text}");
            failures.push(text);
        };

    // One input given: replay it alone (a crash file, or anything).
    if let Some(input) = std::env::var_os("FUZZ_INPUT") {
        let bytes = std::fs::read(&input).unwrap();
        if let Err((loc, msg)) = run_one(&bytes, &layouts, &mut feats, &mut notes) {
            let _ = panic::take_hook();
            panic!("{}: panicked at {loc}: {msg}", Path::new(&input).display());
        }
        eprintln!("fuzz: {} passes", Path::new(&input).display());
        let _ = panic::take_hook();
        return;
    }

    // 1. Replay the corpus.
    let files = read_dir_sorted(&corpus_dir);
    assert!(!files.is_empty(), "no corpus in {}", corpus_dir.display());
    let mut corpus: Vec<Vec<u8>> = Vec::with_capacity(files.len());
    let t0 = Instant::now();
    for (path, bytes) in &files {
        match run_one(bytes, &layouts, &mut feats, &mut notes) {
            Ok(()) => seen.extend(feats.0.iter().copied()),
            Err((loc, msg)) => record_failure(
                bytes,
                loc,
                msg,
                &format!("corpus file {}", path.display()),
                &mut failures,
            ),
        }
        corpus.push(bytes.clone());
    }
    let replay_time = t0.elapsed();
    let seed_features = seen.len();

    // 2. Mutate for FUZZ_SECONDS.
    let mut rng = Rng(seed);
    let t1 = Instant::now();
    let deadline = t1 + Duration::from_secs_f64(seconds);
    let (mut execs, mut kept) = (0u64, 0usize);
    let mut slowest = (Duration::ZERO, 0usize);
    let mut input = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..16 {
            input.clear();
            input.extend_from_slice(&corpus[rng.below(corpus.len())]);
            mutate(&mut rng, &corpus, &mut input);
            execs += 1;
            let t = Instant::now();
            let result = run_one(&input, &layouts, &mut feats, &mut notes);
            if t.elapsed() > slowest.0 {
                slowest = (t.elapsed(), input.len());
            }
            match result {
                Ok(()) => {
                    let before = seen.len();
                    seen.extend(feats.0.iter().copied());
                    if seen.len() > before && corpus.len() < 20_000 {
                        kept += 1;
                        if let Some(dir) = &corpus_out {
                            let _ = std::fs::write(
                                dir.join(format!("fuzz-{:016x}", fnv(&input))),
                                &input,
                            );
                        }
                        corpus.push(input.clone());
                    }
                }
                Err((loc, msg)) => record_failure(&input, loc, msg, "mutated input", &mut failures),
            }
        }
    }
    let fuzz_time = t1.elapsed().as_secs_f64();
    let _ = panic::take_hook();

    eprintln!(
        "fuzz: seed {seed} (FUZZ_SEED={seed} repeats the inputs); corpus {} files replayed in {:.2} s, {seed_features} features",
        files.len(),
        replay_time.as_secs_f64()
    );
    eprintln!(
        "fuzz: {execs} execs in {fuzz_time:.1} s ({:.0} execs/s), {} features ({} new), {kept} inputs kept{}, {} failure(s)",
        execs as f64 / fuzz_time.max(1e-9),
        seen.len(),
        seen.len() - seed_features,
        corpus_out
            .as_ref()
            .map(|d| format!(" (written to {})", d.display()))
            .unwrap_or_default(),
        failures.len()
    );
    if notes.non_finite_metric > 0 {
        eprintln!(
            "fuzz: note: {} job metric(s) not finite (not a failure), e.g. {}",
            notes.non_finite_metric,
            notes.non_finite_example.as_deref().unwrap_or("")
        );
    }
    eprintln!(
        "fuzz: slowest input {:.1} ms ({} bytes); largest host-list expansion {} bytes",
        slowest.0.as_secs_f64() * 1e3,
        slowest.1,
        notes.max_nodelist_bytes
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
