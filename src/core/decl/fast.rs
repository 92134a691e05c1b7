//! The fast path of the reader: one pass over the bytes of a file in the shape subaccounts
//! repositories are written in (blocks, attributes, strings with `${}` interpolations,
//! traversals, function calls, lists, maps; comments anywhere between them), straight into
//! the lowered form of [`super::parse`], with no syntax tree.
//!
//! It is strict and never judges. Escapes in strings (`\"`, `\n`, `$${`) it decodes itself,
//! and binary operators and conditionals between its terms on one line it reads itself
//! (`fast_operations.rs`). An expression outside that shape (a `for`, a splat, a unary
//! operator, a `\u` escape, a template directive, a heredoc with `${}`, an operator across
//! lines) is read alone by hcl-edit, once the fast path has found where it ends
//! (`fast_fragment.rs`). Anything else (a syntax error, a block comment running across lines
//! mid-line, an expression whose end is unclear or that hcl-edit does not read alone) makes
//! it give up on the whole file, and hcl-edit reads the file instead, with its own error
//! messages. What it does accept, it lowers exactly as hcl-edit's tree would be lowered:
//! `tests` compare both on every fixture, every style of the benchmarks and on thousands of
//! mutated files.

use super::parse::{Expr, FileFacts, FileKind, Op, RawAttr, RawModule};
use crate::core::model::{Excerpt, Loc};
use names::Names;
use std::sync::Arc;

#[path = "fast_fragment.rs"]
mod fragment;
#[path = "fast_heredoc.rs"]
mod heredoc;
#[path = "fast_names.rs"]
mod names;
#[path = "fast_operations.rs"]
mod operations;
#[path = "fast_string.rs"]
mod string;
#[path = "fast_trivia.rs"]
mod trivia;

/// The facts of `whole[from..]` (`from` past a byte-order mark), or `None` when the file is
/// not in the shape this path reads. Each module block is given to `module` as soon as it is
/// read (and not kept in the facts): a file's lowered form is never held whole. On `None`
/// some modules may have been given already: the caller drops them. Module blocks keep their
/// part of `whole`.
pub(crate) fn parse_each(
    file: &Arc<str>,
    whole: &Arc<str>,
    from: usize,
    kind: FileKind,
    module: &mut dyn FnMut(RawModule),
) -> Option<FileFacts> {
    let mut p = P::new(file, whole, from, whole.len(), 1);
    let mut facts = FileFacts::default();
    match kind {
        FileKind::Config => p.body_each(false, &mut |item| collect(item, &mut facts, module)),
        FileKind::Tfvars => p.body_each(false, &mut |item| {
            if let Item::Attr(a) = item {
                facts.assignments.push(a);
            }
        }),
        FileKind::TfvarsJson => return None,
    }
    .ok()?;
    Some(facts)
}

/// [`parse_each`] of the part `whole[start..end]` of a configuration file, read as if it were
/// a file of its own whose first line is line `line` of the file: `start` at the beginning of
/// a line, `end` at the beginning of a line or the end of the file. A large file is read in
/// parts on every core (`read.rs`). Read alone, a part ends at the top level of the file or
/// is refused (a block, a bracket, a string, a heredoc or a comment left open at its end is
/// a syntax error in it), so the parts of a file read alike read as the file does. A part
/// with an attribute at the top level is refused as well: hcl-edit refuses a file with one
/// twice, which no part alone can see.
pub(crate) fn parse_part(
    file: &Arc<str>,
    whole: &Arc<str>,
    from: usize,
    (start, end): (usize, usize),
    line: u32,
    module: &mut dyn FnMut(RawModule),
) -> Option<FileFacts> {
    let mut p = P::new(file, whole, from, end, line);
    p.i = start - from;
    p.line_start = p.i;
    p.budget = end - start;
    let mut facts = FileFacts::default();
    let mut attribute = false;
    p.body_each(false, &mut |item| {
        attribute |= matches!(item, Item::Attr(_));
        collect(item, &mut facts, module)
    })
    .ok()?;
    (!attribute).then_some(facts)
}

/// Gave up: the file is read by hcl-edit instead.
struct Bail;

type R<T> = Result<T, Bail>;

enum Item {
    Attr(RawAttr),
    Block {
        ident: String,
        labels: Vec<String>,
        at: Loc,
        text: Excerpt,
        body: Vec<Item>,
    },
}

/// One top-level item of a configuration file: a module block goes to `module`, a
/// `variable` or `locals` block to the facts; anything else is not read.
fn collect(item: Item, facts: &mut FileFacts, module: &mut dyn FnMut(RawModule)) {
    let Item::Block {
        ident,
        mut labels,
        at,
        text,
        body,
    } = item
    else {
        return;
    };
    match (ident.as_str(), labels.len()) {
        ("module", 1) => module(RawModule {
            key: labels.pop().unwrap_or_default(),
            at,
            attrs: attrs(body).collect(),
            text,
        }),
        ("variable", 1) => {
            let default = attrs(body).find(|a| a.name == "default").map(|a| a.expr);
            facts
                .variables
                .push((labels.pop().unwrap_or_default(), default, at));
        }
        ("locals", 0) => facts.locals.extend(attrs(body)),
        _ => {}
    }
}

fn attrs(body: Vec<Item>) -> impl Iterator<Item = RawAttr> {
    body.into_iter().filter_map(|i| match i {
        Item::Attr(a) => Some(a),
        Item::Block { .. } => None,
    })
}

/// Deeper nesting than this (of expressions or blocks) is left to hcl-edit: recursion here
/// must not exhaust a thread's stack on a hostile file, and hcl-edit refuses more than 64
/// levels (its `MAX_NESTING_DEPTH`), which this count, at least hcl-edit's, stays under.
const MAX_DEPTH: usize = 48;

impl<'a> P<'a> {
    /// At the start of `whole[from..end]`, line `line`.
    fn new(file: &Arc<str>, whole: &'a Arc<str>, from: usize, end: usize, line: u32) -> Self {
        let text = &whole[from..end];
        P {
            whole,
            from,
            depth: 0,
            s: text,
            b: text.as_bytes(),
            i: 0,
            line,
            line_start: 0,
            file: file.clone(),
            fatal: false,
            read_alone: 0,
            budget: end - from,
            operators: 0,
        }
    }
}

struct P<'a> {
    /// The file as read; `s` is `whole[from..]`.
    whole: &'a Arc<str>,
    from: usize,
    depth: usize,
    s: &'a str,
    b: &'a [u8],
    i: usize,
    line: u32,
    line_start: usize,
    file: Arc<str>,
    /// Set when the file is left to hcl-edit whatever encloses the failure (too deep, or an
    /// expression hcl-edit does not read alone): see [`Self::expr`].
    fatal: bool,
    /// How many bytes of the file hcl-edit has read alone, expression by expression.
    read_alone: usize,
    /// What may be read alone at most: the length of what this reads.
    budget: usize,
    /// Binary operators in the attribute's value being read (see `fast_operations.rs`).
    operators: usize,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_continue(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, offset: usize) -> Loc {
        let col = self.s[self.line_start..offset].chars().count() as u32 + 1;
        Loc::new(self.file.clone(), self.line, col)
    }

    fn ident(&mut self) -> R<&'a str> {
        let start = self.i;
        if !self.peek().is_some_and(ident_start) {
            return Err(Bail);
        }
        while self.peek().is_some_and(ident_continue) {
            self.i += 1;
        }
        Ok(&self.s[start..self.i])
    }

    /// `f` one level deeper, or [`Bail`] past [`MAX_DEPTH`].
    fn deeper<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= MAX_DEPTH {
            self.fatal = true;
            return Err(Bail);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A body: until `}` (nested) or the end of the file (top level).
    fn body(&mut self, nested: bool) -> R<Vec<Item>> {
        let mut items = Vec::new();
        self.body_each(nested, &mut |item| items.push(item))?;
        Ok(items)
    }

    /// [`Self::body`], each item given to `each` as soon as it is read.
    fn body_each(&mut self, nested: bool, each: &mut dyn FnMut(Item)) -> R<()> {
        let mut names = Names::default();
        loop {
            self.gap()?;
            match self.peek() {
                None if nested => return Err(Bail),
                None => return Ok(()),
                Some(b'}') if nested => return Ok(()),
                _ => {}
            }
            let start = self.i;
            let at = self.at(start);
            let ident = self.ident()?;
            self.spaces();
            if let Some(expr) = self.assignment()? {
                self.end_of_line()?;
                // a body holds each attribute once (hcl-edit refuses a second)
                if !names.insert(ident) {
                    return Err(Bail);
                }
                each(Item::Attr(RawAttr {
                    name: ident.to_string(),
                    expr,
                    at,
                }));
                continue;
            }
            let mut labels = Vec::new();
            loop {
                match self.peek() {
                    Some(b'"') => match self.quoted()? {
                        Expr::String(s) => labels.push(s),
                        _ => return Err(Bail),
                    },
                    Some(c) if ident_start(c) => labels.push(self.ident()?.to_string()),
                    Some(b'{') => break,
                    _ => return Err(Bail),
                }
                self.spaces();
            }
            self.i += 1;
            self.spaces();
            let body = if self.peek() == Some(b'}') {
                Vec::new()
            } else if self.peek().is_some_and(ident_start) {
                vec![self.deeper(Self::one_line_attr)?]
            } else {
                self.line_comment();
                if !self.newline()? {
                    return Err(Bail); // a one-line block with content
                }
                self.deeper(|p| p.body(true))?
            };
            self.i += 1; // the `}`
            let text = Excerpt::new(self.whole, self.from + start..self.from + self.i);
            self.end_of_line()?;
            each(Item::Block {
                ident: ident.to_string(),
                labels,
                at,
                text,
                body,
            });
        }
    }

    /// The one attribute of a one-line block (`variable "x" { default = "y" }`), up to the
    /// block's `}`.
    fn one_line_attr(&mut self) -> R<Item> {
        let at = self.at(self.i);
        let name = self.ident()?;
        self.spaces();
        let expr = self.assignment()?.ok_or(Bail)?;
        self.spaces();
        if self.peek() != Some(b'}') {
            return Err(Bail);
        }
        Ok(Item::Attr(RawAttr {
            name: name.to_string(),
            expr,
            at,
        }))
    }

    /// `= value` after an attribute's name; `None` where no `=` follows (a block's labels).
    fn assignment(&mut self) -> R<Option<Expr>> {
        if self.peek() != Some(b'=') || self.b.get(self.i + 1) == Some(&b'=') {
            return Ok(None);
        }
        self.i += 1;
        self.spaces();
        self.operators = 0;
        self.expr().map(Some)
    }

    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn term(&mut self) -> R<Expr> {
        let start = self.i;
        let e = match self.peek().ok_or(Bail)? {
            b'"' => self.quoted()?,
            b'[' => {
                self.i += 1;
                if self.for_next() {
                    return Err(Bail); // read whole by hcl-edit, from the bracket
                }
                Expr::List(self.list(b']')?)
            }
            b'{' => self.object()?,
            b'<' if self.b.get(self.i + 1) == Some(&b'<') => self.heredoc()?,
            b'(' => {
                self.i += 1;
                self.gap()?;
                let inner = self.expr()?;
                self.gap()?;
                self.expect(b')')?;
                inner
            }
            b'0'..=b'9' => self.number()?,
            c if ident_start(c) => self.named(start)?,
            _ => return Err(Bail),
        };
        // a term followed by a traversal (`f(x).y`, `"a"[0]`) is not in this shape
        match self.peek() {
            Some(b'.' | b'[') => Err(Bail),
            _ => Ok(e),
        }
    }

    fn number(&mut self) -> R<Expr> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        let plain = (digits == "0" || !digits.starts_with('0')) && digits.len() <= 15;
        match self.peek() {
            Some(b'.' | b'e' | b'E') => Err(Bail),
            Some(c) if ident_continue(c) => Err(Bail),
            _ if plain => Ok(Expr::Number(digits.to_string())),
            _ => Err(Bail),
        }
    }

    /// A literal, a variable, a traversal or a function call.
    fn named(&mut self, start: usize) -> R<Expr> {
        let name = self.ident()?;
        let next = self.peek();
        match name {
            "true" | "false" | "null" | "for" | "in" | "if" => {
                if matches!(next, Some(b'.' | b'[' | b'(' | b':')) {
                    return Err(Bail);
                }
                return match name {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    "null" => Ok(Expr::Null),
                    _ => Err(Bail),
                };
            }
            _ => {}
        }
        if next == Some(b'(') {
            self.i += 1;
            let args = self.list(b')')?;
            return Ok(Expr::Call {
                name: name.to_string(),
                args,
                text: self.s[start..self.i].to_string(),
            });
        }
        let mut ops = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'0'..=b'9') => match self.number()? {
                            Expr::Number(n) => ops.push(Op::Index(Expr::Number(n))),
                            _ => return Err(Bail),
                        },
                        Some(c) if ident_start(c) => ops.push(Op::Attr(self.ident()?.to_string())),
                        _ => return Err(Bail),
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.gap()?;
                    if self.peek() == Some(b'*') {
                        return Err(Bail); // a splat: the traversal is read by hcl-edit
                    }
                    let index = self.expr()?;
                    self.gap()?;
                    self.expect(b']')?;
                    ops.push(Op::Index(index));
                }
                Some(b':') => return Err(Bail), // a namespaced function
                _ => break,
            }
        }
        let text = self.s[start..self.i].to_string();
        if ops.is_empty() {
            return Ok(Expr::Opaque(text));
        }
        Ok(Expr::Traversal {
            root: name.to_string(),
            ops,
            text,
        })
    }

    /// Comma-separated expressions up to `close` (a list or a call's arguments); the opening
    /// bracket is consumed already.
    fn list(&mut self, close: u8) -> R<Vec<Expr>> {
        let mut items = Vec::new();
        self.gap()?;
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            self.gap()?;
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.gap()?;
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(items);
                    }
                }
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(Bail),
            }
        }
    }

    fn object(&mut self) -> R<Expr> {
        self.i += 1;
        let mut entries = Vec::new();
        let mut keys = std::collections::HashSet::new();
        // keys that are expressions, by their lowered form written out: compared with each
        // other, 20,000 of them took seconds
        let mut exprs = std::collections::HashSet::new();
        self.gap()?;
        while self.peek() != Some(b'}') {
            let key = match self.peek().ok_or(Bail)? {
                // a level, then one for an interpolation, as hcl-edit reads a key
                b'"' => self.deeper(Self::quoted)?,
                b'(' => self.expr()?,
                c if ident_start(c) => {
                    let name = self.ident()?;
                    if matches!(name, "true" | "false" | "null" | "for")
                        || matches!(self.peek(), Some(b'.' | b'[' | b'('))
                    {
                        return Err(Bail);
                    }
                    Expr::String(name.to_string())
                }
                _ => return Err(Bail),
            };
            self.spaces();
            match self.peek() {
                Some(b'=') if self.b.get(self.i + 1) != Some(&b'=') => self.i += 1,
                Some(b':') => self.i += 1,
                _ => return Err(Bail),
            }
            self.spaces();
            let value = self.expr()?;
            // hcl-edit refuses a key written twice; whether `a` and `"a"` count as the same
            // is left to it
            let repeated = match &key {
                Expr::String(k) => !keys.insert(k.clone()),
                other => !exprs.insert(format!("{other:?}")),
            };
            if repeated {
                return Err(Bail);
            }
            entries.push((key, value));
            self.spaces();
            self.line_comment();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.gap()?;
                }
                Some(b'}') => {}
                Some(b'\n' | b'\r') => self.gap()?,
                _ => return Err(Bail),
            }
        }
        self.i += 1;
        Ok(Expr::Map(entries))
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
pub(super) mod tests;
