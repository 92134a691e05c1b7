//! The files read after their directory's values, a large one in parts on every core: a
//! repository that keeps every account in one file (6 MB at 10,000 accounts) was otherwise
//! read on one core, at nearly twice the time of the same accounts in twenty files.

use super::super::eval::Env;
use super::super::parse::{self, FileKind};
use super::super::{Module, ModuleSources, ParseError, fast, module};
use super::{has_env, module_lines, parse_all, parse_one_into};
use crate::core::model::SourceFile;
use std::sync::Arc;

/// A configuration file larger than twice this is read in parts of about this size, each
/// beginning at a line that begins a module block.
pub(super) const PART: usize = 256 * 1024;

/// What one core reads at a time: a whole file, or a part of one (its range and the number
/// of its first line).
struct Part {
    file: usize,
    range: Option<((usize, usize), u32)>,
}

/// A file read: its modules in runs (one for a whole file, one for each part of a large one),
/// or `None` when it gives its directory values after all.
pub(super) type LateRead = Result<Option<Vec<Vec<Module>>>, ParseError>;

/// Each of `files` read and its modules evaluated with its directory's values (`env_of`), on
/// every core. A file larger than twice `part` is read in parts of about `part` bytes, each as
/// a file of its own ([`fast::parse_part`]); if any part is refused, the file is read whole,
/// as any other.
pub(super) fn read_late<'e>(
    files: &[(&SourceFile, FileKind)],
    env_of: &(dyn Fn(&str) -> &'e Env<'e> + Sync),
    sources: &ModuleSources,
    part: usize,
) -> Vec<LateRead> {
    let whole = |(f, k): (&SourceFile, FileKind)| -> LateRead {
        let env = env_of(&f.path).fork();
        let mut modules = Vec::with_capacity(module_lines(&f.text));
        let facts = parse_one_into(&f.path, &f.text, k, &mut modules, |m| {
            module(&env, m, sources)
        })?;
        Ok((!has_env(k, &facts)).then(|| vec![modules]))
    };
    enum Read {
        Whole(LateRead),
        /// A part's modules, and whether it gives values; `None` when it is refused.
        Part(Option<(bool, Vec<Module>)>),
    }
    let parts = parts(files, part);
    let size = |p: &Part| match p.range {
        Some(((start, end), _)) => end - start,
        None => files[p.file].0.text.len(),
    };
    let reads = parse_all(&parts, size, |p| {
        let (f, k) = files[p.file];
        let Some((range, line)) = p.range else {
            return Read::Whole(whole((f, k)));
        };
        let env = env_of(&f.path).fork();
        let mut modules = Vec::with_capacity(module_lines(&f.text[range.0..range.1]));
        let facts = fast::parse_part(
            &Arc::from(f.path.as_str()),
            &f.text,
            parse::bom(&f.text),
            range,
            line,
            &mut |m| modules.push(module(&env, m, sources)),
        );
        Read::Part(facts.map(|facts| (has_env(k, &facts), modules)))
    });
    let mut reads = parts.iter().zip(reads).peekable();
    let mut out = Vec::with_capacity(files.len());
    for (n, &file) in files.iter().enumerate() {
        let mut read = None;
        // the runs of the parts read so far, and whether one gives values
        let mut joined = Some((false, Vec::new()));
        while let Some((_, r)) = reads.next_if(|(p, _)| p.file == n) {
            match (r, &mut joined) {
                (Read::Whole(r), _) => read = Some(r),
                (Read::Part(Some((env, modules))), Some((gives, runs))) => {
                    *gives |= env;
                    runs.push(modules);
                }
                (Read::Part(_), _) => joined = None,
            }
        }
        out.push(match (read, joined) {
            (Some(r), _) => r,
            (None, Some((true, _))) => Ok(None),
            (None, Some((false, runs))) => Ok(Some(runs)),
            // a part refused: the file read whole, with hcl-edit's error if it has one
            (None, None) => whole(file),
        });
    }
    out
}

/// `files` as the cores read them: each whole, but a configuration file larger than twice
/// `part` in parts.
fn parts(files: &[(&SourceFile, FileKind)], part: usize) -> Vec<Part> {
    let mut out = Vec::with_capacity(files.len());
    for (n, (f, k)) in files.iter().enumerate() {
        let text = f.text.as_bytes();
        if *k != FileKind::Config || text.len() <= 2 * part {
            out.push(Part {
                file: n,
                range: None,
            });
            continue;
        }
        let (mut start, mut line) = (parse::bom(&f.text), 1);
        while start < text.len() {
            let end = text
                .get(start + part..)
                .and_then(|rest| memchr::memmem::find(rest, b"\nmodule "))
                .map_or(text.len(), |at| start + part + at + 1);
            out.push(Part {
                file: n,
                range: Some(((start, end), line)),
            });
            line += memchr::memchr_iter(b'\n', &text[start..end]).count() as u32;
            start = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modules of `files` read by [`read_late`] in parts of `part` bytes, and whole.
    fn both(files: &[(&SourceFile, FileKind)], part: usize) -> (String, String) {
        let env = Env::empty();
        let env_of = |_: &str| &env;
        let sources = ModuleSources::default();
        // the modules in one run, as the declarations take them
        let read = |part| {
            let reads = read_late(files, &env_of, &sources, part).into_iter();
            let flat = reads.map(|r| r.map(|o| o.map(|runs| runs.concat())));
            format!("{:?}", flat.collect::<Vec<_>>())
        };
        (read(part), read(usize::MAX / 4))
    }

    fn accounts(n: usize) -> String {
        let styles = super::super::fast::tests::styles;
        (0..n)
            .map(|i| styles(i)[i % styles(i).len()].clone())
            .collect()
    }

    #[test]
    fn a_large_file_is_read_in_parts_as_it_is_read_whole() {
        let file = SourceFile::new("main.tf", accounts(200));
        let files = [(&file, FileKind::Config)];
        let parts = parts(&files, 2048);
        assert!(parts.len() > 20, "{} parts", parts.len());
        // every part is read on the fast path as a file of its own
        for p in &parts {
            let ((start, end), line) = p.range.expect("in parts");
            let read = fast::parse_part(
                &Arc::from("main.tf"),
                &file.text,
                0,
                (start, end),
                line,
                &mut |_| {},
            );
            assert!(read.is_some(), "part at line {line} read");
        }
        let (parts, whole) = both(&files, 2048);
        assert!(parts == whole, "read in parts as whole");
    }

    #[test]
    fn a_file_whose_parts_do_not_read_alone_is_read_whole() {
        // `\nmodule ` inside a heredoc, a block comment and a list: a part beginning there is
        // refused (and one ending there), and the file is read whole
        let tricks = "locals {\n  doc = <<EOT\nmodule \"fake\" {\n  source = \"x\"\n}\nEOT\n}\n\n/*\nmodule \"gone\" {\n  source = \"y\"\n}\n*/\n\nmodule \"l\" {\n  source = \"z\"\n  ids = [\nmodule \"m\" {}\n  ]\n}\n";
        // an attribute at the top level, twice, in two parts: hcl-edit refuses the file
        let top = "a = 1\n";
        for extra in [tricks, top] {
            let text = format!("{}{extra}{}{extra}", accounts(40), accounts(40));
            let file = SourceFile::new("main.tf", text);
            let files = [(&file, FileKind::Config)];
            for part in [16, 64, 700, 2048] {
                let (parts, whole) = both(&files, part);
                assert!(parts == whole, "read in parts of {part} as whole");
            }
        }
    }
}
