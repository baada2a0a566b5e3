//! Turning sacct's bytes into rows, and sacct's value formats into numbers.
//!
//! Pure functions only: every parser here is tested with string literals and real captured
//! lines. Nothing aborts a whole day: a record that cannot be split is returned as
//! [`Malformed`] with its line number, and a value that cannot be read becomes `None`.
//!
//! Record splitting keeps the whole output as one `String` and each record as a byte range
//! into it, so a 350,000-line day costs one buffer plus 24 bytes a record, and fields are
//! split on demand without allocating.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use memchr::{memchr, memchr_iter};

use super::fields::FieldLayout;

/// A record's place in the output text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Byte range in [`SacctOutput::text`]; may span several lines (newlines inside fields).
    pub start: usize,
    pub end: usize,
    /// 1-based line number of the record's first line.
    pub line: usize,
}

/// A record that could not be split into the expected fields. Kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number where it starts.
    pub line: usize,
    /// The text, verbatim (lossily decoded).
    pub text: String,
    /// Why it was rejected.
    pub reason: String,
}

/// One sacct run's output, split into records.
#[derive(Debug, Default)]
pub struct SacctOutput {
    /// The whole output, decoded (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// Records with the full field count (extra delimiters stay in the last field).
    pub records: Vec<Record>,
    /// Records that could not be split.
    pub malformed: Vec<Malformed>,
    /// Lines in the output.
    pub lines: usize,
    /// Whether the output held invalid UTF-8 that was replaced.
    pub lossy: bool,
}

impl SacctOutput {
    /// Splits raw sacct output (`-P -n`, any delimiter) into records. Lines that continue a
    /// free-text field (a newline inside SubmitLine or JobName) are joined to their record.
    pub fn parse(bytes: Vec<u8>, layout: &FieldLayout) -> SacctOutput {
        let (text, lossy) = match String::from_utf8(bytes) {
            Ok(s) => (s, false),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
        };
        let mut out = SacctOutput {
            lossy,
            ..Default::default()
        };
        let mut splitter = Splitter::new(layout);
        let bytes = text.as_bytes();
        let mut emit = |p: Piece| match p {
            Piece::Record(r) => out.records.push(r),
            Piece::Malformed(r, reason) => out.malformed.push(Malformed {
                line: r.line,
                text: text[r.start..r.end].to_string(),
                reason,
            }),
        };
        let mut line_start = 0;
        while line_start < bytes.len() {
            let line_end =
                memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
            splitter.line(bytes, line_start, line_end, &mut emit);
            line_start = line_end + 1;
        }
        splitter.finish(&mut emit);
        out.lines = splitter.lines;
        out.text = text;
        out
    }

    /// The record's text.
    pub fn record_text(&self, r: &Record) -> &str {
        &self.text[r.start..r.end]
    }

    /// Splits a record into its fields (the last field keeps any extra delimiters).
    pub fn fields<'a>(&'a self, r: &Record, layout: &FieldLayout, out: &mut Vec<&'a str>) {
        split_fields(self.record_text(r), layout, out);
    }
}

/// What [`Splitter`] closes: a record, or a range that is not one (with the reason). Ranges
/// are byte offsets into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Record(Record),
    Malformed(Record, String),
}

/// The record being built: its range so far, first line and delimiters seen.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: usize,
    end: usize,
    line: usize,
    delims: usize,
}

/// The line-by-line state machine that joins sacct's lines into records. Shared by
/// [`SacctOutput::parse`] (a whole output in memory) and the streaming parser (output read
/// while sacct prints it), so both split exactly alike.
///
/// A line that starts with a job id opens a record. Lines after it continue it while it
/// lacks delimiters (a newline inside a field), or when they do not look like a record of
/// their own (a newline inside the last, free-text field). Anything else is malformed.
#[derive(Debug)]
pub struct Splitter {
    want: usize,
    delim: u8,
    cur: Option<Open>,
    /// Lines seen so far.
    pub lines: usize,
}

impl Splitter {
    pub fn new(layout: &FieldLayout) -> Self {
        Splitter {
            want: layout.len().saturating_sub(1), // delimiters in a complete record
            delim: layout.delimiter,
            cur: None,
            lines: 0,
        }
    }

    /// Feeds the line `buf[start..end]` (without its newline); `emit` gets what it closes.
    pub fn line(&mut self, buf: &[u8], start: usize, end: usize, emit: &mut impl FnMut(Piece)) {
        self.lines += 1;
        let line = &buf[start..end];
        let delims = memchr_iter(self.delim, line).count();
        let starts_record = delims > 0 && looks_like_job_id(line, self.delim);
        self.cur = match self.cur.take() {
            // An unfinished record takes the next line, unless that line is plainly a
            // complete record of its own (then the unfinished one was truncated).
            Some(c) if c.delims < self.want && !(starts_record && delims >= self.want) => {
                Some(Open {
                    end,
                    delims: c.delims + delims,
                    ..c
                })
            }
            // A continuation of the last (free-text) field.
            Some(c) if !starts_record => Some(Open {
                end,
                delims: c.delims + delims,
                ..c
            }),
            prev => {
                if let Some(c) = prev {
                    self.close(c, emit);
                }
                if starts_record {
                    Some(Open {
                        start,
                        end,
                        line: self.lines,
                        delims,
                    })
                } else {
                    if !line.is_empty() {
                        let r = Record {
                            start,
                            end,
                            line: self.lines,
                        };
                        emit(Piece::Malformed(
                            r,
                            "line does not start with a job id".to_string(),
                        ));
                    }
                    None
                }
            }
        };
    }

    /// Ends the output: closes the record being built.
    pub fn finish(&mut self, emit: &mut impl FnMut(Piece)) {
        if let Some(c) = self.cur.take() {
            self.close(c, emit);
        }
    }

    /// Where the record being built starts, if one is open (its bytes must be kept).
    pub fn open_start(&self) -> Option<usize> {
        self.cur.map(|c| c.start)
    }

    /// The caller dropped the first `by` bytes of its buffer.
    pub fn shift(&mut self, by: usize) {
        if let Some(c) = &mut self.cur {
            c.start -= by;
            c.end -= by;
        }
    }

    /// Ends the record being built: complete, or malformed with the reason.
    fn close(&self, c: Open, emit: &mut impl FnMut(Piece)) {
        let r = Record {
            start: c.start,
            end: c.end,
            line: c.line,
        };
        if c.delims >= self.want {
            emit(Piece::Record(r));
        } else {
            emit(Piece::Malformed(
                r,
                format!("expected {} fields, found {}", self.want + 1, c.delims + 1),
            ));
        }
    }
}

/// Splits one record's text into exactly `layout.len()` fields.
///
/// A plain byte loop: fields are short (a few bytes each), where a SIMD search per field
/// costs more in setup than it saves.
pub fn split_fields<'a>(text: &'a str, layout: &FieldLayout, out: &mut Vec<&'a str>) {
    split_prefix(text, layout, layout.len(), out);
}

/// Splits the first `k` fields (of `layout.len()`; fields past `k` are not looked at and are
/// left empty). With `k == layout.len()` the last field keeps any extra delimiters.
///
/// Finds delimiters eight bytes at a time (SWAR): fields are a few bytes long, so a loop
/// over bytes, or a SIMD search started per field, costs more.
pub fn split_prefix<'a>(text: &'a str, layout: &FieldLayout, k: usize, out: &mut Vec<&'a str>) {
    out.clear();
    let bytes = text.as_bytes();
    let n = layout.len();
    let k = k.min(n);
    let delim = layout.delimiter;
    let mut start = 0;
    // Takes the delimiter at `pos`; false once no more fields are wanted.
    let mut take = |pos: usize, out: &mut Vec<&'a str>| -> bool {
        if out.len() + 1 >= n || out.len() >= k {
            return false;
        }
        // `delim` is ASCII, so `start..pos` lies on char boundaries.
        out.push(&text[start..pos]);
        start = pos + 1;
        out.len() < k
    };
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_ne_bytes([delim; 8]);
    let mut i = 0;
    let mut more = k > 0 && n > 1;
    while more && i + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let x = word ^ pattern;
        // 0x80 in every byte of `x` that is zero (exact: no carry crosses a byte).
        let mut hits = !(((x & LOW7) + LOW7) | x | LOW7);
        while hits != 0 {
            let pos = i + (hits.trailing_zeros() / 8) as usize;
            if !take(pos, out) {
                more = false;
                break;
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    if more {
        for (j, &b) in bytes.iter().enumerate().skip(i) {
            if b == delim && !take(j, out) {
                break;
            }
        }
    }
    if out.len() < k {
        out.push(&text[start..]);
    }
    while out.len() < n {
        out.push("");
    }
}

/// An empty vector of field slices that reuses `v`'s allocation for another lifetime, so a
/// per-record split allocates nothing.
pub fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// Does the line begin with something shaped like a JobID (`123`, `4_1.batch`, `7+0.0`,
/// `5_[1-3]`) followed by the delimiter?
fn looks_like_job_id(line: &[u8], delim: u8) -> bool {
    let end = memchr(delim, line).unwrap_or(line.len());
    let id = &line[..end];
    !id.is_empty()
        && id[0].is_ascii_digit()
        && id.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b'+' | b'.' | b'[' | b']' | b'-' | b',' | b'%')
        })
}

/// A value sacct prints when it has nothing to say.
fn is_blank(s: &str) -> bool {
    matches!(
        s.trim(),
        "" | "Unknown" | "None" | "N/A" | "n/a" | "INVALID" | "(null)"
    )
}

/// Parses sacct's durations: `MM:SS.mmm`, `MM:SS`, `HH:MM:SS`, `D-HH:MM:SS`, with optional
/// fractional seconds. `UNLIMITED`, `Partition_Limit`, `INVALID` and empty give `None`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if is_blank(s) || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let mut parts = [0f64; 3];
    let mut count = 0;
    for p in rest.split(':') {
        if count == 3 {
            return None;
        }
        parts[count] = plain_number(p)?;
        count += 1;
    }
    let secs = match count {
        1 => parts[0],
        2 => parts[0] * 60.0 + parts[1],
        3 => parts[0] * 3600.0 + parts[1] * 60.0 + parts[2],
        _ => return None,
    };
    Some(days as f64 * 86_400.0 + secs)
}

/// How a ReqMem value is counted (Slurm < 21.08 appended `c` or `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemPer {
    Job,
    Cpu,
    Node,
}

/// Parses a memory size into MiB: `K`, `M`, `G`, `T`, `P` are binary; a bare number is bytes.
pub fn parse_memory_mb(s: &str) -> Option<f64> {
    let s = s.trim();
    if is_blank(s) {
        return None;
    }
    let (num, mult) = match s.as_bytes()[s.len() - 1] {
        b'K' | b'k' => (&s[..s.len() - 1], 1.0 / 1024.0),
        b'M' | b'm' => (&s[..s.len() - 1], 1.0),
        b'G' | b'g' => (&s[..s.len() - 1], 1024.0),
        b'T' | b't' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        b'P' | b'p' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0 / (1024.0 * 1024.0)),
    };
    plain_number(num)
        .map(|v| v * mult)
        .filter(|v| v.is_finite())
}

/// A number as sacct prints one: digits with at most one decimal point. `f64`'s own parser
/// also takes `1e308`, `inf` and `NaN`, which made infinite CPU times and memory (found by
/// the fuzzer).
fn plain_number(s: &str) -> Option<f64> {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let ok =
        digits > 0 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && digits + 1 >= s.len();
    ok.then(|| s.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

/// Parses ReqMem: `32G`, `2.50G`, `4000M` (whole job, Slurm >= 21.08), or `4000Mc` / `4000Mn`
/// (per CPU / per node, older Slurm).
pub fn parse_req_mem(s: &str) -> Option<(f64, MemPer)> {
    let s = s.trim();
    let (body, per) = match s.as_bytes().last()? {
        b'c' => (&s[..s.len() - 1], MemPer::Cpu),
        b'n' => (&s[..s.len() - 1], MemPer::Node),
        _ => (s, MemPer::Job),
    };
    parse_memory_mb(body).map(|mb| (mb, per))
}

/// Iterates the `key=value` pairs of a TRES string (`cpu=2,mem=100M,gres/gpu:a100=4`).
pub fn tres_pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The value of `key` in a TRES string (`key=value` at the start or after a comma).
pub fn tres_value<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key).map(|i| i + from) {
        let after = i + key.len();
        if (i == 0 || s.as_bytes()[i - 1] == b',') && s.as_bytes().get(after) == Some(&b'=') {
            let rest = &s[after + 1..];
            return Some(rest.split(',').next().unwrap_or("").trim());
        }
        from = after;
    }
    None
}

/// `mem=` of a TRES string, in MiB.
pub fn tres_mem_mb(s: &str) -> Option<f64> {
    tres_value(s, "mem").and_then(parse_memory_mb)
}

/// `cpu=` of a TRESUsageInTot string (a duration there), in seconds.
pub fn tres_cpu_seconds(s: &str) -> Option<f64> {
    tres_value(s, "cpu").and_then(parse_duration)
}

/// GPUs in an AllocTRES string: `gres/gpu=N`, or when only typed entries exist
/// (`gres/gpu:a100=2,gres/gpu:v100=1`), their sum.
pub fn tres_gpus(s: &str) -> i64 {
    let mut untyped = None;
    let mut typed = 0i64;
    for (k, v) in tres_pairs(s) {
        let Some(kind) = k.strip_prefix("gres/gpu") else {
            continue;
        };
        let n = v.parse::<i64>().unwrap_or(0).max(0);
        if kind.is_empty() {
            untyped = Some(n);
        } else if kind.starts_with(':') {
            typed = typed.saturating_add(n);
        }
    }
    untyped.unwrap_or(typed)
}

/// Parses a non-negative integer field; `None` for blanks and garbage.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    s.parse().ok()
}

/// Parses a sacct timestamp printed under `TZ=UTC` (`2026-11-25T16:42:00`), or epoch seconds
/// (`SLURM_TIME_FORMAT=%s`). `Unknown`, `None` and blanks give `None`.
pub fn parse_time_utc(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if is_blank(s) {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::from_timestamp(s.parse().ok()?, 0);
    }
    fast_iso(s.as_bytes()).or_else(|| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|n| n.and_utc())
    })
}

/// `YYYY-MM-DDTHH:MM:SS` without the generic format machinery (it is on the hot path:
/// three timestamps per job).
fn fast_iso(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
        .map(|n| n.and_utc())
}

/// The base state: `CANCELLED by 123` -> `CANCELLED`, `RUNNING` -> `RUNNING`.
pub fn normalize_state(s: &str) -> &str {
    s.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
}

/// Whether a normalized state can no longer change (SPEC "Completion").
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

/// The job a step row belongs to: `9.batch` -> `9`, `9` -> `9`, `4_1.extern` -> `4_1`.
pub fn job_of_step(id: &str) -> &str {
    id.split_once('.').map_or(id, |(j, _)| j)
}

/// Array parts of a JobID: `4_1` -> (`4`, Some(1)); `4_[1-3]` -> (`4`, None); `7` -> None.
pub fn array_parts(job_id: &str) -> Option<(&str, Option<i64>)> {
    let (base, task) = job_id.split_once('_')?;
    Some((base, task.parse().ok()))
}

/// Time limit in seconds from `TimelimitRaw` (minutes) or `Timelimit` (`D-HH:MM:SS`).
pub fn parse_timelimit_seconds(raw_minutes: Option<&str>, formatted: Option<&str>) -> Option<i64> {
    if let Some(m) = raw_minutes.and_then(parse_int) {
        // Slurm prints INFINITE as 4294967295 in some versions.
        return (m < u32::MAX as i64).then(|| m * 60);
    }
    formatted.and_then(parse_duration).map(|s| s as i64)
}

/// Expands a Slurm host list: `node[001-003,010]` -> node001, node002, node003, node010;
/// `gpu-[1-2],cpu01` -> gpu-1, gpu-2, cpu01. `None assigned` and blanks are no nodes.
pub fn expand_nodelist(s: &str) -> Vec<String> {
    let s = s.trim();
    if is_blank(s) || s == "None assigned" {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Split on commas that are outside brackets.
    let mut depth = 0;
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b',' if depth == 0 => {
                expand_one(&s[start..i], &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_one(&s[start..], &mut out);
    out
}

/// At most this many names from one host list: nested ranges multiply (`a[0-99999]b[0-99999]`
/// would be 10^10 names), and no cluster has more nodes.
const MAX_NODES: usize = 200_000;

fn expand_one(item: &str, out: &mut Vec<String>) {
    let item = item.trim();
    if item.is_empty() || out.len() >= MAX_NODES {
        return;
    }
    let Some(open) = item.find('[') else {
        out.push(item.to_string());
        return;
    };
    let Some(close) = item[open..].find(']').map(|c| c + open) else {
        out.push(item.to_string());
        return;
    };
    let (prefix, ranges, suffix) = (&item[..open], &item[open + 1..close], &item[close + 1..]);
    let mut tails = Vec::new();
    expand_one(suffix, &mut tails);
    if tails.is_empty() {
        tails.push(String::new());
    }
    for part in ranges.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        match (lo.parse::<u64>(), hi.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b && b - a < 100_000 => {
                let width = lo.len();
                for n in a..=b {
                    for t in &tails {
                        if out.len() >= MAX_NODES {
                            return;
                        }
                        out.push(format!("{prefix}{n:0width$}{t}"));
                    }
                }
            }
            _ => out.push(format!("{prefix}{part}{suffix}")),
        }
    }
}

/// A date as the archive names it (`2026-11-25`).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer: huge values must not overflow (a panic in debug builds).
    #[test]
    fn huge_counts_saturate_or_are_rejected() {
        let max = i64::MAX.to_string();
        assert_eq!(
            tres_gpus(&format!("gres/gpu:a={max},gres/gpu:b={max}")),
            i64::MAX
        );
        assert_eq!(parse_timelimit_seconds(Some(&max), None), None);
        assert_eq!(parse_timelimit_seconds(Some("90"), None), Some(5400));
        assert_eq!(parse_duration("1e308:00:00"), None);
        assert_eq!(parse_duration("1-inf:00:00"), None);
        assert_eq!(parse_duration("01:02:03.5"), Some(3723.5));
        assert_eq!(parse_memory_mb("1e308P"), None);
        assert_eq!(parse_memory_mb("NaNM"), None);
        assert_eq!(parse_memory_mb("1.5G"), Some(1536.0));
        assert_eq!(parse_memory_mb("1..5G"), None);
    }

    /// The SWAR split agrees with a plain `splitn` on every length and delimiter position.
    #[test]
    fn split_prefix_matches_a_naive_split() {
        let names: Vec<String> = (0..9).map(|i| format!("F{i}")).collect();
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names[0] = "JobID";
        names[1] = "JobIDRaw";
        let layout = FieldLayout::new(names.iter().copied(), b'|').unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut out = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let text: String = (0..len)
                .map(|b| match (seed >> (b % 60)) % 5 {
                    0 => '|',
                    1 => '\u{e9}',
                    _ => 'a',
                })
                .collect();
            for k in [1, 3, 8, 9] {
                split_prefix(&text, &layout, k, &mut out);
                let mut want: Vec<&str> = text.splitn(9, '|').take(k).collect();
                want.resize(9, "");
                assert_eq!(out, want, "{text:?} k={k}");
            }
        }
    }
    use crate::sacct::fields::FieldLayout;

    fn pipe_layout(names: &[&str]) -> FieldLayout {
        FieldLayout::new(names.iter().copied(), b'|').unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("00:10.189"), Some(10.189));
        assert_eq!(parse_duration("00:05.448"), Some(5.448));
        assert_eq!(parse_duration("00:00:00"), Some(0.0));
        assert_eq!(parse_duration("01:02:03"), Some(3723.0));
        assert_eq!(parse_duration("2-01:00:00"), Some(2.0 * 86_400.0 + 3600.0));
        assert_eq!(parse_duration("12:34"), Some(754.0));
        assert_eq!(parse_duration("1-00:00:00.500"), Some(86_400.5));
        for bad in [
            "",
            "UNLIMITED",
            "Partition_Limit",
            "INVALID",
            "Unknown",
            "1:2:3:4",
            "a:b",
            "-5",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_units_are_binary_and_bare_is_bytes() {
        assert_eq!(parse_memory_mb("6108K"), Some(6108.0 / 1024.0));
        assert_eq!(parse_memory_mb("100M"), Some(100.0));
        assert_eq!(parse_memory_mb("2.50G"), Some(2560.0));
        assert_eq!(parse_memory_mb("1T"), Some(1_048_576.0));
        assert_eq!(parse_memory_mb("1048576"), Some(1.0));
        assert_eq!(parse_memory_mb("0"), Some(0.0));
        assert_eq!(parse_memory_mb("0.01M"), Some(0.01));
        assert_eq!(parse_memory_mb(""), None);
        assert_eq!(parse_memory_mb("lots"), None);
    }

    #[test]
    fn req_mem_old_and_new_forms() {
        assert_eq!(parse_req_mem("32G"), Some((32768.0, MemPer::Job)));
        assert_eq!(parse_req_mem("4000Mc"), Some((4000.0, MemPer::Cpu)));
        assert_eq!(parse_req_mem("4000Mn"), Some((4000.0, MemPer::Node)));
        assert_eq!(parse_req_mem("0n"), Some((0.0, MemPer::Node)));
        assert_eq!(parse_req_mem(""), None);
    }

    #[test]
    fn tres_values() {
        let alloc = "billing=2,cpu=2,mem=100M,node=1";
        assert_eq!(tres_mem_mb(alloc), Some(100.0));
        assert_eq!(tres_gpus(alloc), 0);
        assert_eq!(tres_gpus("cpu=8,gres/gpu=4,gres/gpu:a100=4"), 4);
        assert_eq!(tres_gpus("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1"), 3);
        assert_eq!(tres_gpus("cpu=8,gres/gpumem=40G"), 0);
        let usage = "cpu=00:00:05,energy=0,fs/disk=8100,mem=6108K,pages=0,vmem=13080K";
        assert_eq!(tres_mem_mb(usage), Some(6108.0 / 1024.0));
        assert_eq!(tres_cpu_seconds(usage), Some(5.0));
        assert_eq!(tres_mem_mb(""), None);
        assert_eq!(tres_mem_mb("vmem=5G,mem=1G"), Some(1024.0));
        assert_eq!(tres_mem_mb("vmem=5G"), None);
        assert_eq!(
            tres_value("gres/gpumem=4,gres/gpu=2", "gres/gpu"),
            Some("2")
        );
    }

    #[test]
    fn times_are_utc() {
        let t = parse_time_utc("2026-11-25T16:42:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T16:42:00+00:00");
        assert_eq!(
            parse_time_utc("1764088920").unwrap().timestamp(),
            1_764_088_920
        );
        assert_eq!(parse_time_utc("Unknown"), None);
        assert_eq!(parse_time_utc("None"), None);
        assert_eq!(parse_time_utc(""), None);
        assert_eq!(parse_time_utc("yesterday"), None);
    }

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

    #[test]
    fn timelimits() {
        assert_eq!(
            parse_timelimit_seconds(Some("5"), Some("00:05:00")),
            Some(300)
        );
        assert_eq!(
            parse_timelimit_seconds(Some("UNLIMITED"), Some("UNLIMITED")),
            None
        );
        assert_eq!(
            parse_timelimit_seconds(None, Some("1-00:00:00")),
            Some(86_400)
        );
        assert_eq!(parse_timelimit_seconds(Some("4294967295"), None), None);
    }

    #[test]
    fn nodelists() {
        assert_eq!(expand_nodelist("vm"), ["vm"]);
        assert_eq!(
            expand_nodelist("node[001-003,010]"),
            ["node001", "node002", "node003", "node010"]
        );
        assert_eq!(
            expand_nodelist("gpu-[1-2],cpu-[01-03]"),
            ["gpu-1", "gpu-2", "cpu-01", "cpu-02", "cpu-03"]
        );
        assert_eq!(
            expand_nodelist("rack[1-2]-n[1-2]"),
            ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
        );
        assert!(expand_nodelist("None assigned").is_empty());
        assert_eq!(
            expand_nodelist("a[0-99999]b[0-99999]").len(),
            MAX_NODES,
            "bounded"
        );
        assert!(expand_nodelist("").is_empty());
    }

    #[test]
    fn split_joins_newlines_and_keeps_extra_delimiters_in_last_field() {
        let layout = pipe_layout(&["JobID", "JobIDRaw", "State", "SubmitLine"]);
        let text = "1|1|COMPLETED|sbatch --wrap=a|b\n\
                    2|2|RUNNING|sbatch --wrap=line one\nline two\n\
                    3|3|PEND\nING|x\n\
                    4|4|COMPLETED|\n";
        let out = SacctOutput::parse(text.as_bytes().to_vec(), &layout);
        assert!(out.malformed.is_empty(), "{:?}", out.malformed);
        let mut buf = Vec::new();
        let rows: Vec<Vec<String>> = out
            .records
            .iter()
            .map(|r| {
                out.fields(r, &layout, &mut buf);
                buf.iter().map(|s| s.to_string()).collect()
            })
            .collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0][3], "sbatch --wrap=a|b");
        assert_eq!(rows[1][3], "sbatch --wrap=line one\nline two");
        assert_eq!(rows[2][2], "PEND\nING");
        assert_eq!(rows[3][3], "");
        assert_eq!(out.records[2].line, 4);
    }

    #[test]
    fn truncated_and_garbage_lines_are_counted_not_fatal() {
        let layout = pipe_layout(&["JobID", "JobIDRaw", "State", "SubmitLine"]);
        let text = "garbage at the top\n1|1|COMPLE\n2|2|COMPLETED|ok\n3|3|FAILED|x\n";
        let out = SacctOutput::parse(text.as_bytes().to_vec(), &layout);
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.malformed.len(), 2);
        assert_eq!(out.malformed[0].line, 1);
        assert_eq!(out.malformed[1].line, 2);
        assert!(out.malformed[1]
            .reason
            .contains("expected 4 fields, found 3"));
        assert_eq!(out.malformed[1].text, "1|1|COMPLE");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let layout = pipe_layout(&["JobID", "JobIDRaw", "JobName"]);
        let mut bytes = b"1|1|caf".to_vec();
        bytes.push(0xe9);
        bytes.extend_from_slice(b"\n");
        let out = SacctOutput::parse(bytes, &layout);
        assert!(out.lossy);
        assert_eq!(out.records.len(), 1);
        assert!(out.record_text(&out.records[0]).ends_with("caf\u{fffd}"));
    }

    #[test]
    fn real_fixture_splits_into_every_line() {
        let text = include_str!("../../tests/fixtures/sacct/sacct-parsable-with-header.txt");
        let (header, body) = text.split_once('\n').unwrap();
        let layout = FieldLayout::new(header.split('|'), b'|').unwrap();
        let out = SacctOutput::parse(body.as_bytes().to_vec(), &layout);
        assert!(out.malformed.is_empty(), "{:?}", out.malformed);
        assert_eq!(out.records.len(), body.lines().count());
    }
}
