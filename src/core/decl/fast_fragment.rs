//! Expressions outside the fast path's own shape (a `for`, a splat, a unary operator, a `\u`
//! escape, a template directive, an operator across lines): the fast path finds where such
//! an expression ends, and hcl-edit reads that expression alone, lowered as in a whole file.
//! A file with such an expression in every account stays on the fast path for everything
//! else (left whole to hcl-edit, such a repository took three times as long).
//!
//! Where the expression ends is found from brackets, strings and line breaks; hcl-edit must
//! then read exactly that text as one expression, or the whole file is left to it. Its reading
//! alone is never more lenient than in the file: an attribute's value is read as alone (no
//! line break outside brackets), and a list item or an interpolation, which may span lines
//! in the file, may not here.

use super::super::parse::{Expr, lower_fragment};
use super::{Bail, MAX_DEPTH, P, R, ident_continue};

impl P<'_> {
    /// One expression: a term of the fast path's shape, followed by what may end an
    /// expression; else the expression read alone by hcl-edit. When that fails too, the
    /// whole file is left to hcl-edit (`fatal`): no enclosing expression tries again, so no
    /// text is read by hcl-edit more than once before the file is.
    pub(super) fn expr(&mut self) -> R<Expr> {
        let (start, line, line_start) = (self.i, self.line, self.line_start);
        let operators = self.operators;
        match self.deeper(Self::term) {
            Ok(e) if self.plain_end() => return Ok(e),
            _ if self.fatal => return Err(Bail),
            Ok(_) => {
                // an operator or a conditional on this line: read here if it can be
                if let Some(e) = self.operations(start) {
                    return Ok(e);
                }
                if self.fatal {
                    return Err(Bail);
                }
            }
            Err(_) => {}
        }
        (self.i, self.line, self.line_start) = (start, line, line_start);
        self.operators = operators;
        self.fragment().ok_or_else(|| {
            self.fatal = true;
            Bail
        })
    }

    /// Whether what follows a term (after spaces) may end an expression: a separator, a
    /// closing bracket, a line break, a comment, the end of the file, or what follows an
    /// object's key (`=`, `:`) or an interpolation (`~}`). Anything else (an operator, `?`)
    /// makes the term part of a larger expression.
    pub(super) fn plain_end(&self) -> bool {
        let rest = &self.b[self.i..];
        let rest = &rest[rest
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t'))
            .unwrap_or(rest.len())..];
        match rest.first() {
            None => true,
            Some(b',' | b')' | b']' | b'}' | b'\n' | b'\r' | b'#' | b':' | b'~') => true,
            Some(b'=') => !matches!(rest.get(1), Some(b'=' | b'>')),
            Some(b'/') => matches!(rest.get(1), Some(b'/' | b'*')),
            _ => false,
        }
    }

    /// Whether a `for` expression opens at the cursor (just past `[` or `{`): what hcl-edit
    /// reads whole, from the bracket.
    pub(super) fn for_next(&self) -> bool {
        let rest = &self.b[self.i..];
        let rest = &rest[rest
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len())..];
        rest.starts_with(b"for") && !rest.get(3).is_some_and(|&c| ident_continue(c))
    }

    /// The expression at the cursor, read alone by hcl-edit; the cursor and the line count
    /// moved past it. `None` when its end is not found, or hcl-edit does not read it as one
    /// expression.
    fn fragment(&mut self) -> Option<Expr> {
        let start = self.i;
        let (mut end, openers) = extent(self.b, start)?;
        while end > start && matches!(self.b[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        // hcl-edit refuses more than 64 levels, counted from the file's top: read alone, the
        // expression's levels start from none. Every level this text can open counts twice,
        // as a `for` or a conditional takes two of hcl-edit's.
        if end == start || self.depth + 2 * openers + 2 >= MAX_DEPTH {
            return None;
        }
        let text = &self.s[start..end];
        let expr = self.read_alone(start..end)?;
        for at in memchr::memchr_iter(b'\n', text.as_bytes()) {
            self.line += 1;
            self.line_start = start + at + 1;
        }
        self.i = end;
        Some(expr)
    }
}

impl P<'_> {
    /// `self.s[range]` read alone by hcl-edit and lowered. `None` once the texts read alone
    /// would add up to more than the file: an expression read alone and then again as part
    /// of an enclosing one (`[[a + 1] + 1]`) must not cost more than leaving the whole file
    /// to hcl-edit would.
    pub(super) fn read_alone(&mut self, range: std::ops::Range<usize>) -> Option<Expr> {
        self.read_alone += range.len();
        if self.read_alone > self.budget {
            return None;
        }
        let text = &self.s[range];
        // what may be a binary operator in it counts towards hcl-edit's limit on chains
        // (see `fast_operations.rs`)
        self.operators += text.bytes().filter(|c| b"+-*/%<>=!&|?".contains(c)).count();
        lower_fragment(text)
    }
}

/// Where the expression starting at `from` ends: at a line break, a comma, a comment or an
/// unmatched closing bracket outside every bracket and string (or at the end of the text);
/// with how many brackets, interpolations and conditionals it opens. `None` at a heredoc, a
/// carriage return not before a line feed, an unclosed string or comment, or mismatched
/// brackets: the whole file is then left to hcl-edit.
fn extent(b: &[u8], from: usize) -> Option<(usize, usize)> {
    // open brackets: `(`, `[`, `{`, a string (`"`) and an interpolation or directive in
    // one (`$`)
    let mut open: Vec<u8> = Vec::new();
    let mut openers = 0;
    let mut i = from;
    loop {
        let Some(&c) = b.get(i) else {
            return open.is_empty().then_some((i, openers));
        };
        let next = b.get(i + 1).copied();
        if c == b'\r' && next != Some(b'\n') {
            return None;
        }
        if open.last() == Some(&b'"') {
            match (c, next) {
                (b'"', _) => _ = open.pop(),
                (b'\\', _) => i += 1,
                (b'\n' | b'\r', _) => return None,
                (b'$' | b'%', Some(n)) if n == c && b.get(i + 2) == Some(&b'{') => i += 2,
                (b'$' | b'%', Some(b'{')) => {
                    open.push(b'$');
                    openers += 1;
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match (c, next) {
            (b'\n' | b'\r' | b',' | b'#', _) | (b'/', Some(b'/' | b'*')) | (b'~', Some(b'}'))
                if open.is_empty() =>
            {
                return Some((i, openers));
            }
            (b'#', _) | (b'/', Some(b'/')) => {
                i += b[i..].iter().position(|&c| c == b'\n')?;
                continue;
            }
            (b'/', Some(b'*')) => {
                i += 2 + memchr::memmem::find(&b[i + 2..], b"*/")? + 2;
                continue;
            }
            (b'<', Some(b'<')) => return None,
            (b'"', _) => open.push(b'"'),
            (b'(' | b'[' | b'{', _) => {
                open.push(c);
                openers += 1;
            }
            // a conditional, and a unary operator (a level each in hcl-edit; `-` and `!` as
            // binary operators are counted too, which only makes the bound stricter)
            (b'?' | b'!' | b'-', _) => openers += 1,
            (b')' | b']' | b'}', _) => {
                let Some(o) = open.pop() else {
                    return Some((i, openers));
                };
                let matches = matches!((o, c), (b'(', b')') | (b'[', b']') | (b'{' | b'$', b'}'));
                if !matches {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::extent;

    fn end(text: &str) -> Option<&str> {
        extent(text.as_bytes(), 0).map(|(e, _)| &text[..e])
    }

    #[test]
    fn an_expression_ends_outside_its_brackets_and_strings() {
        assert_eq!(end("var.a ? 1 : 2\nb = 3"), Some("var.a ? 1 : 2"));
        assert_eq!(end("a + b # c"), Some("a + b "));
        assert_eq!(end("a + b // c"), Some("a + b "));
        assert_eq!(end("a + b /* c */"), Some("a + b "));
        assert_eq!(end("a ? 1 : 2, 3]"), Some("a ? 1 : 2"));
        assert_eq!(end("a ? 1 : 2)"), Some("a ? 1 : 2"));
        assert_eq!(end("a ? 1 : 2 ~}"), Some("a ? 1 : 2 "));
        assert_eq!(end("a\r\n"), Some("a"));
        assert_eq!(end("a"), Some("a"));
        // inside brackets: line breaks, commas and comments belong to the expression
        let multi = "[for x in l : x, # c\n  1]\nb = 1";
        assert_eq!(end(multi), Some("[for x in l : x, # c\n  1]"));
        assert_eq!(end("f(/* ) */ 1) + 1\n"), Some("f(/* ) */ 1) + 1"));
        // inside strings: brackets, `#` and escaped quotes; interpolations nest
        let s = "\"a \\\" } # ${ f(\"}\", {b = \"${c}\"}) } $${x} %%{y}\" == d\n";
        assert_eq!(end(s), Some(&s[..s.len() - 1]));
        assert_eq!(
            end("\"%{ if a }b%{ endif }\"\n"),
            Some("\"%{ if a }b%{ endif }\"")
        );
    }

    #[test]
    fn an_expression_whose_end_is_unclear_is_left_to_hcl_edit() {
        for text in [
            "<<EOT\nx\nEOT\n",
            "a + <<EOT\nx\nEOT\n",
            "a\rb",
            "\"unclosed\n\"",
            "\"unclosed",
            "(a + b",
            "(a + b]",
            "[a /* unclosed",
            "{ \"${a)\" }",
        ] {
            assert_eq!(end(text), None, "{text}");
        }
    }

    #[test]
    fn openers_count_brackets_interpolations_and_conditionals() {
        let count = |t: &str| extent(t.as_bytes(), 0).map(|(_, n)| n);
        assert_eq!(count("a + b"), Some(0));
        assert_eq!(count("a ? [1] : f(\"${x}\")"), Some(4));
        assert_eq!(count("\"$${x}\""), Some(0));
    }
}
