//! Making text from an MR safe where it lands: GitLab Markdown, HTML inside `<details>`, and
//! terminals. Nothing a declaration holds (names, tags, file names, Rego messages built from
//! them) may become a link, an image, a mention, HTML, or a terminal escape sequence.

/// A zero-width space: placed after a GitLab reference sigil it stops `@user`, `#1`, `!2`,
/// `~label`, `%milestone` and `$snippet` from becoming references.
const ZWSP: char = '\u{200B}';

/// Any character a terminal or Markdown line could misread: controls become U+FFFD.
fn printable(c: char) -> char {
    if c.is_control()
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
    {
        '\u{FFFD}'
    } else {
        c
    }
}

/// Plain text for terminals: control characters (ESC, CR, bidi overrides) replaced.
pub fn plain(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(|c| printable(c) == c) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.chars().map(printable).collect())
    }
}

/// A Markdown code span holding `s` exactly as far as it can be shown: GitLab renders code
/// spans literally and resolves no references inside them.
pub fn code(s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c => printable(c),
        })
        .collect();
    let longest = longest_run(&body, '`');
    let fence = "`".repeat(longest + 1);
    // a code span that starts or ends with a backtick needs padding
    let pad = if body.starts_with('`') || body.ends_with('`') || body.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A table cell holding `s` as a code span: a `|` would end the cell even inside the span.
pub fn cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Text for Markdown outside code: HTML and Markdown syntax escaped, references and
/// autolinks defused.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '@' | '#' | '!' | '~' | '%' | '$' => {
                out.push('\\');
                out.push(c);
                out.push(ZWSP);
            }
            // "https://…" would be autolinked
            ':' if chars.peek() == Some(&'/') => {
                out.push(c);
                out.push(ZWSP);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(printable(c)),
        }
    }
    out
}

/// A message whose `backticked` parts are values: those become code spans, the rest is
/// escaped text. Safe whatever the message holds, even unbalanced backticks.
pub fn inline(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    for (i, part) in message.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&code(part));
        } else {
            out.push_str(&text(part));
        }
    }
    out
}

/// Escaped for HTML text and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(printable(c)),
        }
    }
    out
}

/// A fenced code block that no line of `body` can close early.
pub fn fenced(lang: &str, body: &str) -> String {
    let body: String = body
        .chars()
        .map(|c| {
            if c == '\n' || c == '\t' {
                c
            } else {
                printable(c)
            }
        })
        .collect();
    let longest = body.lines().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let nl = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{lang}\n{body}{nl}{fence}\n")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("line\nbreak"), "`line break`");
    }

    #[test]
    fn text_defuses_html_links_and_mentions() {
        let t = text("<img src=x onerror=alert(1)> [click](http://evil) @admin #1 ![i](x)");
        assert!(!t.contains('<'), "{t}");
        assert!(!t.contains("](http"), "{t}");
        assert!(!t.contains("@admin"), "{t}");
        assert!(!t.contains("#1"), "{t}");
        assert!(!text("see https://evil.example").contains("https://"));
    }

    #[test]
    fn inline_keeps_values_in_code() {
        assert_eq!(inline("name `x<y>` is bad"), "name `x<y>` is bad");
        // unbalanced backticks still yield escaped text or code, never raw HTML
        let hostile = inline("a `b` c `<script>");
        assert!(
            !hostile.contains("<script>") || hostile.contains("`<script>`"),
            "{hostile}"
        );
    }

    #[test]
    fn fences_outgrow_the_body() {
        let f = fenced("diff", "+ x = \"```\"\n");
        assert!(f.starts_with("````diff\n"), "{f}");
        assert!(f.ends_with("````\n"));
    }

    #[test]
    fn terminal_escapes_are_removed() {
        assert_eq!(plain("red\x1b[31m"), "red\u{FFFD}[31m");
        assert_eq!(plain("bidi\u{202E}x"), "bidi\u{FFFD}x");
    }
}
