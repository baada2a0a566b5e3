//! Splitting sacct's output into records while sacct prints it.
//!
//! A 100,000-job day is ~180 MB of text. Holding it whole, then its records, then their
//! Arrow copy, is what made a day cost 500 MB. [`StreamParser`] keeps only the bytes of
//! the record being built (normally less than one read chunk) and hands each complete
//! record to the caller, which turns it into rows and jobs at once.
//!
//! It uses the same [`Splitter`] as [`super::parser::SacctOutput::parse`], so both split
//! alike; invalid UTF-8 is replaced per record, which gives the same text as replacing it in
//! the whole output (a newline or the delimiter is never part of a multi-byte sequence).

use std::borrow::Cow;

use memchr::memchr;

use super::fields::FieldLayout;
use super::parser::{Malformed, Piece, Splitter};

/// A record or an unparsable line, as the parser hands it over.
#[derive(Debug)]
pub enum Event<'a> {
    /// A complete record (it may span lines) and the line it starts on.
    Record { text: &'a str, line: usize },
    /// Text that is not a record, kept verbatim with its line number and the reason.
    Malformed(Malformed),
}

/// Incremental record splitter over chunks of sacct's stdout.
#[derive(Debug)]
pub struct StreamParser {
    splitter: Splitter,
    /// Unconsumed bytes: the record being built and the last, unfinished line.
    buf: Vec<u8>,
    /// Where the next unread line starts in `buf`.
    scan: usize,
    pieces: Vec<Piece>,
    /// Whether invalid UTF-8 was replaced.
    pub lossy: bool,
}

impl StreamParser {
    pub fn new(layout: &FieldLayout) -> Self {
        StreamParser {
            splitter: Splitter::new(layout),
            buf: Vec::new(),
            scan: 0,
            pieces: Vec::new(),
            lossy: false,
        }
    }

    /// Lines seen so far.
    pub fn lines(&self) -> usize {
        self.splitter.lines
    }

    /// Feeds the next chunk of output; `sink` gets every record the chunk completes. Stops
    /// at the first error the sink returns.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        sink: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.buf.extend_from_slice(chunk);
        while let Some(i) = memchr(b'\n', &self.buf[self.scan..]) {
            let end = self.scan + i;
            let pieces = &mut self.pieces;
            self.splitter
                .line(&self.buf, self.scan, end, &mut |p| pieces.push(p));
            self.scan = end + 1;
            self.emit(sink)?;
        }
        // Keep only what a later line may still belong to.
        let keep_from = self.splitter.open_start().unwrap_or(self.scan);
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.scan -= keep_from;
            self.splitter.shift(keep_from);
        }
        Ok(())
    }

    /// Ends the output: the last line (if it had no newline) and the last record.
    pub fn finish<E>(
        &mut self,
        sink: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let pieces = &mut self.pieces;
        if self.scan < self.buf.len() {
            self.splitter
                .line(&self.buf, self.scan, self.buf.len(), &mut |p| {
                    pieces.push(p)
                });
            self.scan = self.buf.len();
        }
        self.splitter.finish(&mut |p| pieces.push(p));
        self.emit(sink)?;
        self.buf = Vec::new();
        self.scan = 0;
        Ok(())
    }

    fn emit<E>(&mut self, sink: &mut impl FnMut(Event<'_>) -> Result<(), E>) -> Result<(), E> {
        for p in self.pieces.drain(..) {
            let (r, reason) = match p {
                Piece::Record(r) => (r, None),
                Piece::Malformed(r, why) => (r, Some(why)),
            };
            let bytes = &self.buf[r.start..r.end];
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => Cow::Borrowed(t),
                Err(_) => {
                    self.lossy = true;
                    String::from_utf8_lossy(bytes)
                }
            };
            match reason {
                None => sink(Event::Record {
                    text: &text,
                    line: r.line,
                })?,
                Some(reason) => sink(Event::Malformed(Malformed {
                    line: r.line,
                    text: text.into_owned(),
                    reason,
                }))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sacct::parser::SacctOutput;

    /// (line, text) of every record and malformed entry, streaming in chunks of `size`.
    fn streamed(bytes: &[u8], layout: &FieldLayout, size: usize) -> Vec<(usize, String, bool)> {
        let mut p = StreamParser::new(layout);
        let mut got = Vec::new();
        let mut sink = |e: Event<'_>| -> Result<(), ()> {
            match e {
                Event::Record { text, line } => got.push((line, text.to_string(), true)),
                Event::Malformed(m) => got.push((m.line, m.text, false)),
            }
            Ok(())
        };
        for chunk in bytes.chunks(size.max(1)) {
            p.feed(chunk, &mut sink).unwrap();
        }
        p.finish(&mut sink).unwrap();
        got.sort();
        got
    }

    fn whole(bytes: &[u8], layout: &FieldLayout) -> Vec<(usize, String, bool)> {
        let out = SacctOutput::parse(bytes.to_vec(), layout);
        let mut got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.line, out.record_text(r).to_string(), true))
            .chain(
                out.malformed
                    .iter()
                    .map(|m| (m.line, m.text.clone(), false)),
            )
            .collect();
        got.sort();
        got
    }

    #[test]
    fn any_chunking_splits_like_the_whole_output() {
        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State", "SubmitLine"], b'|').unwrap();
        let text = b"1|1|COMPLETED|sbatch a.sh\n\
            1.batch|1.batch|COMPLETED|\n\
            2|2|FAILED|sbatch --wrap 'echo a|b\nsecond line'\n\
            garbage line\n\
            3|3|RUN\n\
            NING|x\n\
            4|4|PENDING|bad \xff byte\n\
            5|5\n\
            6|6|COMPLETED|no newline at end";
        let expected = whole(text, &layout);
        assert_eq!(expected.len(), 7, "{expected:?}");
        for size in [1, 2, 3, 7, 16, 64, 1 << 20] {
            assert_eq!(streamed(text, &layout, size), expected, "chunk size {size}");
        }
    }

    #[test]
    fn lossy_and_line_count_are_reported() {
        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap();
        let mut p = StreamParser::new(&layout);
        let mut n = 0;
        let mut sink = |_: Event<'_>| -> Result<(), ()> {
            n += 1;
            Ok(())
        };
        p.feed(b"1|1|A\n2|2|\xfe\n", &mut sink).unwrap();
        p.finish(&mut sink).unwrap();
        assert_eq!(n, 2);
        assert!(p.lossy);
        assert_eq!(p.lines(), 2);
    }

    #[test]
    fn a_sink_error_stops_the_feed() {
        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap();
        let mut p = StreamParser::new(&layout);
        let mut seen = 0;
        let r = p.feed(b"1|1|A\n2|2|B\n3|3|C\n", &mut |_| {
            seen += 1;
            if seen == 2 {
                Err("disk full")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("disk full"));
        assert_eq!(seen, 2);
    }
}
