//! Turning sacct's bytes into rows, and the values only sacct prints (ReqMem, timestamps
//! under `TZ=UTC`, time limits) into numbers. SLURM's shared vocabulary (durations, memory
//! sizes, TRES strings, host lists, job states) is in [`crate::slurm`].
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
use crate::slurm::units::{is_blank, parse_duration, parse_int, parse_memory_mb, trim};

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

/// How a ReqMem value is counted (Slurm < 21.08 appended `c` or `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemPer {
    Job,
    Cpu,
    Node,
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

/// Parses a sacct timestamp printed under `TZ=UTC` (`2026-11-25T16:42:00`), or epoch seconds
/// (`SLURM_TIME_FORMAT=%s`). `Unknown`, `None` and blanks give `None`.
pub fn parse_time_utc(s: &str) -> Option<DateTime<Utc>> {
    let s = trim(s);
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

/// Time limit in seconds from `TimelimitRaw` (minutes) or `Timelimit` (`D-HH:MM:SS`).
pub fn parse_timelimit_seconds(raw_minutes: Option<&str>, formatted: Option<&str>) -> Option<i64> {
    if let Some(m) = raw_minutes.and_then(parse_int) {
        // Slurm prints INFINITE as 4294967295 in some versions.
        return (m < u32::MAX as i64).then(|| m * 60);
    }
    formatted.and_then(parse_duration).map(|s| s as i64)
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
    fn huge_timelimits_are_rejected() {
        let max = i64::MAX.to_string();
        assert_eq!(parse_timelimit_seconds(Some(&max), None), None);
        assert_eq!(parse_timelimit_seconds(Some("90"), None), Some(5400));
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
    fn req_mem_old_and_new_forms() {
        assert_eq!(parse_req_mem("32G"), Some((32768.0, MemPer::Job)));
        assert_eq!(parse_req_mem("4000Mc"), Some((4000.0, MemPer::Cpu)));
        assert_eq!(parse_req_mem("4000Mn"), Some((4000.0, MemPer::Node)));
        assert_eq!(parse_req_mem("0n"), Some((0.0, MemPer::Node)));
        assert_eq!(parse_req_mem(""), None);
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
