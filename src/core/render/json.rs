//! `--format json`: the report as one JSON document, with each change's diff and steps. The
//! shape is documented in `docs/check.md`.
//!
//! Written straight from the values, with no tree of JSON values in between: the changes
//! (most of a large document) are written on every core in contiguous runs, each already
//! indented for its place, then joined in order.

use crate::core::plan::{Change, Plan, Step};
use crate::core::report::Report;
use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

pub fn render(report: &Report) -> String {
    let mut out = Vec::new();
    write(report, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes the document to `out` as [`render`] returns it.
pub fn write<W: Write + ?Sized>(report: &Report, out: &mut W) -> io::Result<()> {
    out.write_all(b"{")?;
    field(out, "approvals", &report.approvals, false)?;
    field(out, "head_label", &report.head_label, true)?;
    field(out, "parse_errors", &report.parse_errors, true)?;
    out.write_all(b",\n  \"plan\": {\n    \"changes\": ")?;
    changes(&report.plan, out)?;
    out.write_all(b"\n  }")?;
    field(out, "summary", &report.summary, true)?;
    field(out, "verdict", &report.verdict, true)?;
    field(out, "violations", &report.violations, true)?;
    out.write_all(b"\n}\n")
}

/// `  "key": value` at the document's first level.
fn field<W: Write + ?Sized>(
    out: &mut W,
    key: &str,
    value: &impl Serialize,
    comma: bool,
) -> io::Result<()> {
    if comma {
        out.write_all(b",")?;
    }
    write!(out, "\n  \"{key}\": ")?;
    value
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut *out,
            Indented::at(1),
        ))
        .map_err(io::Error::other)
}

/// A value at `level` of the document, as serde_json's pretty printer writes it there.
fn value(buf: &mut Vec<u8>, level: usize, value: &impl Serialize) -> io::Result<()> {
    value
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut *buf,
            Indented::at(level),
        ))
        .map_err(io::Error::other)
}

/// The level of a change in the document (`{"plan": {"changes": [...]}}`).
const CHANGE: usize = 3;

/// One change as the document shows it, as serde_json's pretty printer writes an object of
/// the plan's fields, its diff and its steps (keys in this order), at [`CHANGE`]. A step
/// equal to the same step of the change written before it (`last`: each step and where its
/// text is in `buf`) is copied rather than written again: most of a large plan's steps repeat
/// from one account to the next.
fn change(
    buf: &mut Vec<u8>,
    plan: &Plan,
    c: &Change,
    last: &mut Vec<(Step, std::ops::Range<usize>)>,
) -> io::Result<()> {
    let inner = CHANGE + 1;
    buf.push(b'{');
    entry(buf, true, "account_type")?;
    value(buf, inner, &c.account_type)?;
    put(buf, "action", &c.action)?;
    put(buf, "at", &c.at)?;
    put(buf, "destructive", &c.destructive())?;
    entry(buf, false, "diff")?;
    diff(buf, c)?;
    put(buf, "fields", &c.fields)?;
    put(buf, "key", &c.key)?;
    put(buf, "name", &c.name)?;
    entry(buf, false, "steps")?;
    let steps = plan.steps(c);
    if steps.is_empty() {
        buf.extend_from_slice(b"[]");
    } else {
        buf.push(b'[');
        let mut written = Vec::with_capacity(steps.len());
        for (i, step) in steps.into_iter().enumerate() {
            Indented::at(inner + 1).item(buf, i == 0)?;
            let start = buf.len();
            match last.get(i) {
                Some((same, text)) if *same == step => buf.extend_from_within(text.clone()),
                _ => value(buf, inner + 1, &step)?,
            }
            written.push((step, start..buf.len()));
        }
        *last = written;
        buf.push(b'\n');
        Indented::at(inner).indent(buf)?;
        buf.push(b']');
    }
    put(buf, "target", &c.target)?;
    buf.push(b'\n');
    Indented::at(CHANGE).indent(buf)?;
    buf.push(b'}');
    Ok(())
}

/// A change's `diff`, as serde_json writes the string [`super::unified_diff`] makes. A text
/// added or removed whole (a create, a close: most of a large plan) is escaped straight into
/// `buf`, each line after its sign, rather than joined, made into a diff and escaped, three
/// passes and two strings; anything else is made by `unified_diff`.
fn diff(buf: &mut Vec<u8>, c: &Change) -> io::Result<()> {
    let (blocks, sign) = match (c.before.is_empty(), c.after.is_empty()) {
        (true, false) => (&c.after, b'+'),
        (false, true) => (&c.before, b'-'),
        _ => return value(buf, CHANGE + 1, &super::unified_diff(c)),
    };
    let blocks: Vec<&str> = blocks.iter().map(|b| &**b).collect();
    if !one_sided(buf, &blocks, sign) {
        value(buf, CHANGE + 1, &super::unified_diff(c))?;
    }
    Ok(())
}

/// The JSON string of [`super::one_sided_diff`] of `blocks` joined as a change's text is (a
/// blank line between blocks, a line break after the last), each line after `sign`. `false`,
/// with nothing written, for a text `one_sided_diff` leaves to `similar`: a carriage return
/// not ending a line.
fn one_sided(buf: &mut Vec<u8>, blocks: &[&str], sign: u8) -> bool {
    let lone_cr = blocks.iter().any(|b| {
        let b = b.as_bytes();
        memchr::memchr_iter(b'\r', b).any(|i| i + 1 < b.len() && b[i + 1] != b'\n')
    });
    if lone_cr || blocks.is_empty() {
        return false;
    }
    let breaks: usize = blocks
        .iter()
        .map(|b| memchr::memchr_iter(b'\n', b.as_bytes()).count())
        .sum();
    let lines = breaks + 2 * (blocks.len() - 1) + 1;
    buf.push(b'"');
    escape_into(
        buf,
        super::one_sided_header(char::from(sign), lines).as_bytes(),
    );
    let mut line_start = true;
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            lines_into(buf, b"\n\n", sign, &mut line_start);
        }
        lines_into(buf, block.as_bytes(), sign, &mut line_start);
    }
    lines_into(buf, b"\n", sign, &mut line_start);
    buf.push(b'"');
    true
}

/// `text` escaped into `buf`, `sign` before each line; `line_start` says whether the text
/// before it ended a line.
fn lines_into(buf: &mut Vec<u8>, mut text: &[u8], sign: u8, line_start: &mut bool) {
    while !text.is_empty() {
        if *line_start {
            buf.push(sign);
        }
        let end = memchr::memchr(b'\n', text).map_or(text.len(), |i| i + 1);
        escape_into(buf, &text[..end]);
        *line_start = text[end - 1] == b'\n';
        text = &text[end..];
    }
}

/// `text` inside a JSON string, escaped as serde_json escapes it: `"`, `\\` and control
/// characters, short forms where JSON has one, else `\u00XX` in lower-case hex. Eight bytes
/// are passed over at a time while none of them needs escaping (most of a diff's text).
fn escape_into(buf: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (mut from, mut i) = (0, 0);
    while i < text.len() {
        if let Some(word) = text.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if !may_need_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = text[i];
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => b'u',
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&text[from..i]);
        buf.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            buf.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
        i += 1;
        from = i;
    }
    buf.extend_from_slice(&text[from..]);
}

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\\` (never `false` when
/// one is; sometimes `true` when none is, which costs only a closer look). The classic
/// tests for a zero byte and for a byte below `n`, on the word and on it XORed with each
/// character.
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    (below(word, 0x20) | below(word ^ (ONES * 0x22), 1) | below(word ^ (ONES * 0x5c), 1)) != 0
}

/// `"key": ` one level into a change, after a comma unless `first`.
fn entry(buf: &mut Vec<u8>, first: bool, key: &str) -> io::Result<()> {
    Indented::at(CHANGE + 1).item(buf, first)?;
    buf.push(b'"');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\": ");
    Ok(())
}

/// `"key": value`, one level into a change, after a comma.
fn put(buf: &mut Vec<u8>, key: &str, v: &impl Serialize) -> io::Result<()> {
    entry(buf, false, key)?;
    value(buf, CHANGE + 1, v)
}

fn changes<W: Write + ?Sized>(plan: &Plan, out: &mut W) -> io::Result<()> {
    if plan.changes.is_empty() {
        return out.write_all(b"[]");
    }
    // Buffers go back to `spare` once written: each run reuses one, rather than growing a
    // fresh one (fresh memory is zeroed by the kernel, at about a millisecond per MB here).
    let spare: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    let run = |cs: &[Change]| -> io::Result<Vec<u8>> {
        let mut buf = spare
            .lock()
            .expect("spare buffers")
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(cs.len() * 8192));
        buf.clear();
        let mut last = Vec::new();
        for c in cs {
            buf.extend_from_slice(b",\n      ");
            change(&mut buf, plan, c, &mut last)?;
        }
        Ok(buf)
    };
    // Runs of BLOCK changes are written by every core, taken in order, and go out in order
    // as soon as they are ready: a few runs are held at a time, never the whole document.
    const BLOCK: usize = 256;
    let blocks: Vec<&[Change]> = plan.changes.chunks(BLOCK).collect();
    let threads = crate::core::par::cores().min(blocks.len());
    out.write_all(b"[")?;
    let mut first = true;
    let mut put = |buf: Vec<u8>| -> io::Result<()> {
        // every change starts with ",\n": the document's first one drops its comma
        let skip = usize::from(std::mem::take(&mut first));
        out.write_all(&buf[skip..])?;
        spare.lock().expect("spare buffers").push(buf);
        Ok(())
    };
    if threads <= 1 {
        for b in &blocks {
            put(run(b)?)?;
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| -> io::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(threads);
            for _ in 0..threads {
                let (tx, next, blocks, run) = (tx.clone(), &next, &blocks, &run);
                s.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(b) = blocks.get(i) else { break };
                        if tx.send((i, run(b))).is_err() {
                            break; // the writer stopped on an error
                        }
                    }
                });
            }
            drop(tx);
            let mut ready = std::collections::BTreeMap::new();
            let mut due = 0;
            for (i, buf) in rx {
                ready.insert(i, buf?);
                while let Some(buf) = ready.remove(&due) {
                    put(buf)?;
                    due += 1;
                }
            }
            Ok(())
        })?;
    }
    out.write_all(b"\n    ]")
}

/// serde_json's pretty formatter (two spaces), starting `level` levels deep.
struct Indented {
    level: usize,
    has_value: bool,
}

impl Indented {
    fn at(level: usize) -> Indented {
        Indented {
            level,
            has_value: false,
        }
    }

    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        const SPACES: &[u8] = &[b' '; 64];
        let mut n = self.level * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(c)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(c)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Every text a change adds or removes whole is written as serde_json writes the diff
    /// `unified_diff` makes of it, byte for byte, or left to `unified_diff` when it holds a
    /// carriage return not ending a line.
    #[test]
    fn a_diff_written_straight_is_the_diff_serde_json_writes() {
        const PIECES: [&str; 16] = [
            "module \"a\" {",
            "}",
            "\n",
            "\r\n",
            "\r",
            "\"",
            "\\",
            "\t",
            "\u{1}",
            "\u{8}",
            "\u{c}",
            "\u{1f}",
            "\u{7f}",
            "é",
            "\u{2028}",
            "  name = \"x\" # c",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut written, mut left) = (0, 0);
        for round in 0..4_000 {
            let blocks: Vec<String> = (0..1 + next(3))
                .map(|_| (0..next(12)).map(|_| PIECES[next(PIECES.len())]).collect())
                .collect();
            let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
            let text = format!("{}\n", refs.join("\n\n"));
            let sign = if round % 2 == 0 { b'+' } else { b'-' };
            let (before, after) = match sign {
                b'+' => ("", text.as_str()),
                _ => (text.as_str(), ""),
            };
            let mut buf = Vec::new();
            match super::super::one_sided_diff(before, after) {
                Some(diff) => {
                    assert!(super::one_sided(&mut buf, &refs, sign), "{refs:?}");
                    let expected = serde_json::to_string(&diff).unwrap();
                    assert_eq!(String::from_utf8(buf).unwrap(), expected, "{refs:?}");
                    written += 1;
                }
                None => {
                    assert!(!super::one_sided(&mut buf, &refs, sign), "{refs:?}");
                    assert!(buf.is_empty());
                    left += 1;
                }
            }
        }
        // both ways were taken, many times
        assert!(
            written > 1_000 && left > 1_000,
            "{written} written, {left} left"
        );
    }

    /// The word test never passes over a byte that needs escaping: every byte value at every
    /// place among plain bytes of every kind, then random words.
    #[test]
    fn no_byte_that_needs_escaping_is_passed_over() {
        let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for filler in [b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut word = [filler; 8];
                    word[at] = b;
                    assert_eq!(
                        super::may_need_escape(u64::from_le_bytes(word)),
                        special(b),
                        "{b:#04x} at {at} among {filler:#04x}"
                    );
                }
            }
        }
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.to_le_bytes().into_iter().any(special) {
                assert!(super::may_need_escape(seed), "{seed:#018x}");
            }
        }
    }
}
