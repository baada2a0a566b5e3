//! Property tests of the sacct parser and the field parsers (issue 7's fuzz target).
//!
//! Default: 256 cases per property (`PROPTEST_CASES=N` for a longer run, e.g. in a nightly
//! job). Failing inputs are persisted by proptest under `tests/proptest-regressions/` and
//! replayed first on every run; commit them.

use proptest::prelude::*;
use slurm_usage::sacct::fields::{FieldLayout, DELIMITER, SACCT_FIELDS};
use slurm_usage::sacct::parser::*;
use slurm_usage::sacct::stream::{Event, StreamParser};
use slurm_usage::slurm::hostlist::expand_nodelist;
use slurm_usage::slurm::job::{array_parts, is_final_state, job_of_step, normalize_state};
use slurm_usage::slurm::tres::{tres_cpu_seconds, tres_gpus, tres_mem_mb, tres_pairs, tres_value};
use slurm_usage::slurm::units::{parse_duration, parse_int, parse_memory_mb};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // cargo test runs in the crate root; one file for all properties of this target.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/proptest-regressions/parser_props.txt",
            ),
        )),
        ..ProptestConfig::default()
    }
}

/// Bytes that look a little like sacct output: digits, delimiters, newlines, text, invalid
/// UTF-8, so the interesting branches are reached, not just "no job id".
fn sacctish(delim: u8) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[0-9]{1,6}(_[0-9]{1,3})?(\\.batch|\\.extern|\\.[0-9])?".prop_map(String::into_bytes),
        6 => Just(vec![delim]),
        3 => Just(vec![b'\n']),
        2 => "[ -~]{0,12}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..6),
        1 => Just(vec![delim; 61]),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|v| v.concat())
}

/// Every non-empty line of the decoded text is in exactly one record or malformed entry.
fn check_coverage(out: &SacctOutput) {
    let lines: Vec<&str> = if out.text.is_empty() {
        Vec::new()
    } else {
        let t = out.text.strip_suffix('\n').unwrap_or(&out.text);
        t.split('\n').collect()
    };
    assert_eq!(out.lines, lines.len(), "line count");
    let mut owner = vec![0u32; lines.len()];
    let mut mark = |first: usize, text: &str| {
        let n = text.matches('\n').count() + 1;
        for l in first..first + n {
            assert!(l >= 1 && l <= lines.len(), "line {l} out of range");
            owner[l - 1] += 1;
        }
    };
    for r in &out.records {
        let text = out.record_text(r);
        assert!(r.start <= r.end && r.end <= out.text.len());
        mark(r.line, text);
    }
    for m in &out.malformed {
        mark(m.line, &m.text);
    }
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            assert!(owner[i] <= 1, "empty line {} taken twice", i + 1);
        } else {
            assert_eq!(
                owner[i],
                1,
                "line {} ({line:?}) taken {} times",
                i + 1,
                owner[i]
            );
        }
    }
}

/// Values of one valid record: field i of the layout. The last four fields are free text and
/// may hold `|` and newlines (never at the end, never a delimiter).
fn record_values() -> impl Strategy<Value = Vec<String>> {
    let n = SACCT_FIELDS.len();
    let id = "[0-9]{1,7}(_[0-9]{1,3})?(\\.batch|\\.extern|\\.[0-9]{1,2})?";
    let plain = "[^\u{1f}\n\r]{0,10}";
    let free = "[^\u{1f}\n]{0,8}(\n[^\u{1f}\n]{1,8}){0,2}|[a-z|]{0,6}";
    (
        id,
        prop::collection::vec(plain, n - 5),
        prop::collection::vec(free, 4),
    )
        .prop_map(|(id, mid, free)| {
            let mut v = vec![id];
            v.extend(mid);
            v.extend(free);
            v
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_and_every_line_is_accounted_for(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let out = SacctOutput::parse(bytes, &FieldLayout::ours());
        check_coverage(&out);
    }

    #[test]
    fn sacct_like_bytes_never_panic_and_every_line_is_accounted_for(bytes in sacctish(DELIMITER)) {
        let layout = FieldLayout::ours();
        let out = SacctOutput::parse(bytes, &layout);
        check_coverage(&out);
        let mut fields = Vec::new();
        for r in &out.records {
            out.fields(r, &layout, &mut fields);
            prop_assert_eq!(fields.len(), layout.len());
        }
    }

    /// The streaming parser, fed the same bytes in any chunking, yields exactly the records
    /// and malformed entries of the whole-output parser (same text, same line numbers).
    #[test]
    fn streamed_output_splits_like_the_whole(bytes in sacctish(DELIMITER), cut in 1usize..300) {
        let layout = FieldLayout::ours();
        let whole = SacctOutput::parse(bytes.clone(), &layout);
        let mut want: Vec<(usize, String, bool)> = whole
            .records
            .iter()
            .map(|r| (r.line, whole.record_text(r).to_string(), true))
            .chain(whole.malformed.iter().map(|m| (m.line, m.text.clone(), false)))
            .collect();
        want.sort();
        let mut got = Vec::new();
        let mut p = StreamParser::new(&layout);
        let mut sink = |e: Event<'_>| -> Result<(), ()> {
            match e {
                Event::Record { text, line } => got.push((line, text.to_string(), true)),
                Event::Malformed(m) => got.push((m.line, m.text, false)),
            }
            Ok(())
        };
        for chunk in bytes.chunks(cut) {
            p.feed(chunk, &mut sink).unwrap();
        }
        p.finish(&mut sink).unwrap();
        got.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(p.lines(), whole.lines);
        prop_assert_eq!(p.lossy, whole.lossy);
    }

    #[test]
    fn pipe_delimited_bytes_never_panic(bytes in sacctish(b'|')) {
        let layout = FieldLayout::new(SACCT_FIELDS.iter().copied(), b'|').unwrap();
        let out = SacctOutput::parse(bytes, &layout);
        check_coverage(&out);
    }

    #[test]
    fn valid_records_round_trip(records in prop::collection::vec(record_values(), 1..12)) {
        let layout = FieldLayout::ours();
        let d = (DELIMITER as char).to_string();
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.join(&d));
            text.push('\n');
        }
        let out = SacctOutput::parse(text.into_bytes(), &layout);
        prop_assert!(out.malformed.is_empty(), "malformed: {:?}", out.malformed);
        prop_assert_eq!(out.records.len(), records.len());
        let mut fields = Vec::new();
        for (r, want) in out.records.iter().zip(&records) {
            out.fields(r, &layout, &mut fields);
            prop_assert_eq!(&fields, want);
        }
    }

    #[test]
    fn field_parsers_never_panic(s in any::<String>()) {
        field_parsers(&s);
    }

    #[test]
    fn field_parsers_never_panic_on_sacct_like_values(s in "[0-9:.\\-+KMGTPkmgtpncT=,/a-z_\\[\\] ]{0,40}") {
        field_parsers(&s);
    }
}

fn field_parsers(s: &str) {
    let _ = parse_duration(s);
    let _ = parse_memory_mb(s);
    let _ = parse_req_mem(s);
    let _ = tres_pairs(s).count();
    let _ = tres_value(s, "mem");
    let _ = tres_value(s, "gres/gpu");
    let _ = tres_mem_mb(s);
    let _ = tres_cpu_seconds(s);
    let _ = tres_gpus(s);
    let _ = parse_int(s);
    let _ = parse_time_utc(s);
    let _ = parse_date(s);
    let _ = normalize_state(s);
    let _ = is_final_state(s);
    let _ = job_of_step(s);
    let _ = array_parts(s);
    let _ = parse_timelimit_seconds(Some(s), Some(s));
    // Nested ranges multiply (`a[0-99999]b[0-99999]` is 10^10 names, see the report of
    // issue 7); one bracket group is bounded at 100,000 names.
    if s.matches('[').count() <= 1 {
        let nodes = expand_nodelist(s);
        assert!(
            nodes.len() <= 100_000,
            "{s:?} expands to {} nodes",
            nodes.len()
        );
    }
}
