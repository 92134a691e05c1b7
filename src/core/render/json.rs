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
    put(buf, "diff", &super::unified_diff(c))?;
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

/// `"key": ` one level into a change, after a comma unless `first`.
fn entry(buf: &mut Vec<u8>, first: bool, key: &str) -> io::Result<()> {
    Indented::at(CHANGE + 1).item(buf, first)?;
    write!(buf, "\"{key}\": ")
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
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blocks.len());
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
