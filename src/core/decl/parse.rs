//! One file's HCL, parsed by hcl-edit (when [`super::fast`] leaves it), reduced to the few facts orgvend needs: module
//! blocks, `variable` defaults, `locals` and tfvars assignments, each expression lowered to a
//! small IR that outlives the syntax tree (so a 10,000-account repo never holds every tree).

use super::ParseError;
use crate::core::model::{Excerpt, LineIndex, Loc};
use hcl::edit::Span;
use hcl::edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::edit::structure::{Attribute, Block, Body, Structure};
use hcl::edit::template::{Element, Template};
use std::collections::HashMap;
use std::sync::Arc;

/// An expression, lowered: what orgvend evaluates, and the source text of what it does not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Template(Vec<Part>),
    /// `var.x`, `local.x` or `module.x.y` followed by attribute or index steps.
    Traversal {
        root: String,
        ops: Vec<Op>,
        text: String,
    },
    Call {
        name: String,
        args: Vec<Expr>,
        text: String,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    /// Anything else (conditionals, arithmetic, `for`, data sources): its source text.
    Opaque(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Attr(String),
    Index(Expr),
}

#[derive(Debug, PartialEq)]
pub(crate) struct RawAttr {
    pub name: String,
    pub expr: Expr,
    pub at: Loc,
}

#[derive(Debug, PartialEq)]
pub(crate) struct RawModule {
    pub key: String,
    pub at: Loc,
    pub attrs: Vec<RawAttr>,
    pub text: Excerpt,
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct FileFacts {
    pub modules: Vec<RawModule>,
    /// `variable` blocks: name, default (if any), where.
    pub variables: Vec<(String, Option<Expr>, Loc)>,
    pub locals: Vec<RawAttr>,
    /// Top-level assignments of a `.tfvars` file.
    pub assignments: Vec<RawAttr>,
}

/// What kind of Terraform file a path is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Config,
    Tfvars,
    TfvarsJson,
}

pub(crate) fn file_kind(path: &str) -> Option<FileKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.split('/').any(|part| part.starts_with('.')) {
        return None; // .terraform/, .git/ and other hidden trees are never configuration
    }
    if name.ends_with(".tf") {
        Some(FileKind::Config)
    } else if name == "terraform.tfvars" || name.ends_with(".auto.tfvars") {
        Some(FileKind::Tfvars)
    } else if name == "terraform.tfvars.json" || name.ends_with(".auto.tfvars.json") {
        Some(FileKind::TfvarsJson)
    } else {
        None
    }
}

struct Ctx<'a> {
    file: Arc<str>,
    /// The file as read, and where `text` starts in it (after a byte-order mark).
    whole: &'a Arc<str>,
    from: usize,
    text: &'a str,
    lines: LineIndex,
}

impl Ctx<'_> {
    fn loc(&self, offset: usize) -> Loc {
        let (line, col) = self.lines.line_col(self.text, offset);
        Loc::new(self.file.clone(), line, col)
    }

    fn loc_of(&self, span: Option<std::ops::Range<usize>>) -> Loc {
        self.loc(span.map(|s| s.start).unwrap_or(0))
    }

    fn text_of(&self, span: Option<std::ops::Range<usize>>) -> String {
        span.and_then(|s| self.text.get(s))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

pub(crate) fn parse_file(
    path: &str,
    whole: &Arc<str>,
    kind: FileKind,
) -> Result<FileFacts, ParseError> {
    let file: Arc<str> = Arc::from(path);
    // Terraform accepts a UTF-8 byte-order mark; positions stay those of the file.
    let from = bom(whole);
    if kind == FileKind::TfvarsJson {
        return parse_tfvars_json(file, &whole[from..]);
    }
    parse_hcl(file, whole, from, kind)
}

/// The length of the UTF-8 byte-order mark `text` starts with (Terraform accepts one;
/// positions stay those of the text after it), or 0.
pub(crate) fn bom(text: &str) -> usize {
    const BOM: char = '\u{feff}';
    if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    }
}

/// The file read by hcl-edit: everything the fast path leaves, and every syntax error.
/// `whole[from..]` is read (`from` past a byte-order mark); module blocks keep their part of
/// `whole`.
pub(crate) fn parse_hcl(
    file: Arc<str>,
    whole: &Arc<str>,
    from: usize,
    kind: FileKind,
) -> Result<FileFacts, ParseError> {
    let text = &whole[from..];
    let body = hcl::edit::parser::parse_body(text).map_err(|e| {
        let at = e.location();
        ParseError {
            at: Loc::new(file.clone(), at.line() as u32, at.column() as u32),
            message: e.message().to_string(),
        }
    })?;
    let ctx = Ctx {
        file,
        whole,
        from,
        text,
        lines: LineIndex::new(text),
    };
    let mut facts = FileFacts::default();
    match kind {
        FileKind::Config => collect_config(&ctx, &body, &mut facts),
        FileKind::Tfvars => {
            for attr in body.attributes() {
                facts.assignments.push(raw_attr(&ctx, attr));
            }
        }
        FileKind::TfvarsJson => unreachable!("handled above"),
    }
    Ok(facts)
}

fn collect_config(ctx: &Ctx, body: &Body, facts: &mut FileFacts) {
    for structure in body.iter() {
        let Structure::Block(block) = structure else {
            continue;
        };
        match (block.ident.as_str(), block.labels.as_slice()) {
            ("module", [label]) => facts.modules.push(module(ctx, block, label.as_str())),
            ("variable", [label]) => {
                let default = block
                    .body
                    .get_attribute("default")
                    .map(|a| lower(ctx, &a.value));
                facts.variables.push((
                    label.as_str().to_string(),
                    default,
                    ctx.loc_of(block.span()),
                ));
            }
            ("locals", []) => {
                for attr in block.body.attributes() {
                    facts.locals.push(raw_attr(ctx, attr));
                }
            }
            _ => {}
        }
    }
}

fn module(ctx: &Ctx, block: &Block, key: &str) -> RawModule {
    RawModule {
        key: key.to_string(),
        at: ctx.loc_of(block.span()),
        attrs: block.body.attributes().map(|a| raw_attr(ctx, a)).collect(),
        text: match block.span().filter(|s| ctx.text.get(s.clone()).is_some()) {
            Some(s) => Excerpt::new(ctx.whole, ctx.from + s.start..ctx.from + s.end),
            None => Excerpt::from(""),
        },
    }
}

fn raw_attr(ctx: &Ctx, attr: &Attribute) -> RawAttr {
    RawAttr {
        name: attr.key.as_str().to_string(),
        expr: lower(ctx, &attr.value),
        at: ctx.loc_of(attr.span()),
    }
}

fn lower(ctx: &Ctx, expr: &Expression) -> Expr {
    match expr {
        Expression::Null(_) => Expr::Null,
        Expression::Bool(b) => Expr::Bool(*b.value()),
        Expression::Number(n) => Expr::Number(n.to_string()),
        Expression::String(s) => Expr::String(s.value().to_string()),
        Expression::Array(items) => Expr::List(items.iter().map(|e| lower(ctx, e)).collect()),
        Expression::Object(object) => Expr::Map(
            object
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        ObjectKey::Ident(ident) => Expr::String(ident.as_str().to_string()),
                        ObjectKey::Expression(e) => lower(ctx, e),
                    };
                    (key, lower(ctx, v.expr()))
                })
                .collect(),
        ),
        Expression::StringTemplate(t) => template(ctx, t),
        // `<<-EOT`: hcl-edit has already dropped the common indent from the literals
        Expression::HeredocTemplate(h) => template(ctx, &h.template),
        Expression::Parenthesis(p) => lower(ctx, p.inner()),
        Expression::Traversal(t) => {
            let text = ctx.text_of(t.span());
            let Expression::Variable(root) = &t.expr else {
                return Expr::Opaque(text);
            };
            let mut ops = Vec::with_capacity(t.operators.len());
            for op in &t.operators {
                match op.value() {
                    TraversalOperator::GetAttr(ident) => ops.push(Op::Attr(ident.to_string())),
                    TraversalOperator::Index(e) => ops.push(Op::Index(lower(ctx, e))),
                    TraversalOperator::LegacyIndex(i) => {
                        ops.push(Op::Index(Expr::Number(i.to_string())))
                    }
                    TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                        return Expr::Opaque(text);
                    }
                }
            }
            Expr::Traversal {
                root: root.to_string(),
                ops,
                text,
            }
        }
        Expression::FuncCall(call) => {
            let text = ctx.text_of(call.span());
            if !call.name.namespace.is_empty() || call.args.expand_final() {
                return Expr::Opaque(text);
            }
            Expr::Call {
                name: call.name.name.to_string(),
                args: call.args.iter().map(|a| lower(ctx, a)).collect(),
                text,
            }
        }
        other => Expr::Opaque(ctx.text_of(other.span())),
    }
}

/// An expression read alone by hcl-edit (one the fast path finds the end of but does not
/// read itself), lowered as in a whole file; `None` when hcl-edit does not read it.
pub(crate) fn lower_fragment(text: &str) -> Option<Expr> {
    let expr = hcl::edit::parser::parse_expr(text).ok()?;
    let none: Arc<str> = Arc::from("");
    let ctx = Ctx {
        file: none.clone(),
        whole: &none,
        from: 0,
        text,
        lines: LineIndex::new(text),
    };
    Some(lower(&ctx, &expr))
}

fn template(ctx: &Ctx, t: &Template) -> Expr {
    let mut parts = Vec::with_capacity(t.len());
    for element in t.iter() {
        match element {
            Element::Literal(lit) => parts.push(Part::Lit(lit.value().to_string())),
            Element::Interpolation(i) => parts.push(Part::Expr(lower(ctx, &i.expr))),
            Element::Directive(_) => {
                // %{ if } / %{ for } directives: left to Terraform.
                return Expr::Opaque(String::from("a template with %{} directives"));
            }
        }
    }
    Expr::Template(parts)
}

fn parse_tfvars_json(file: Arc<str>, text: &str) -> Result<FileFacts, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        at: Loc::new(file.clone(), e.line() as u32, e.column() as u32),
        message: e.to_string(),
    })?;
    let serde_json::Value::Object(object) = value else {
        return Err(ParseError {
            at: Loc::new(file, 1, 1),
            message: "a .tfvars.json file must hold one JSON object".to_string(),
        });
    };
    // serde_json keeps no positions: each name points at where the object gives it
    let at = top_level_keys(text);
    let mut facts = FileFacts::default();
    for (name, value) in object {
        let (line, col) = at.get(&name).copied().unwrap_or((1, 1));
        facts.assignments.push(RawAttr {
            name,
            expr: from_json(value),
            at: Loc::new(file.clone(), line, col),
        });
    }
    Ok(facts)
}

/// Where each key of a JSON document's outer object is first written (line, and column in
/// characters), in one pass: looking for each key from the start of the text, and counting
/// the characters before it on its line, took seconds for 20,000 keys on one line.
fn top_level_keys(text: &str) -> HashMap<String, (u32, u32)> {
    let b = text.as_bytes();
    let mut at = HashMap::new();
    let (mut depth, mut line, mut col) = (0usize, 1u32, 1u32);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'\n' => {
                (line, col) = (line + 1, 1);
                i += 1;
                continue;
            }
            b'"' => {
                let (start, start_col) = (i, col);
                i += 1;
                col += 1;
                while i < b.len() && b[i] != b'"' {
                    let step = if b[i] == b'\\' { 2 } else { 1 };
                    for &c in &b[i..(i + step).min(b.len())] {
                        col += u32::from(c & 0xc0 != 0x80);
                    }
                    i += step;
                }
                let end = (i + 1).min(b.len());
                let rest = text[end..].trim_start_matches([' ', '\t', '\r', '\n']);
                if depth == 1 && rest.starts_with(':') {
                    let raw = &text[start..end];
                    let key = match raw.contains('\\') {
                        false => raw.trim_matches('"').to_string(),
                        true => serde_json::from_str::<String>(raw).unwrap_or_default(),
                    };
                    at.entry(key).or_insert((line, start_col));
                }
            }
            _ => {}
        }
        col += u32::from(b.get(i).is_some_and(|&c| c & 0xc0 != 0x80));
        i += 1;
    }
    at
}

fn from_json(value: serde_json::Value) -> Expr {
    match value {
        serde_json::Value::Null => Expr::Null,
        serde_json::Value::Bool(b) => Expr::Bool(b),
        serde_json::Value::Number(n) => Expr::Number(n.to_string()),
        serde_json::Value::String(s) => Expr::String(s),
        serde_json::Value::Array(items) => Expr::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Expr::Map(
            map.into_iter()
                .map(|(k, v)| (Expr::String(k), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_follow_terraform_names() {
        assert_eq!(file_kind("main.tf"), Some(FileKind::Config));
        assert_eq!(file_kind("envs/prod/main.tf"), Some(FileKind::Config));
        assert_eq!(file_kind("terraform.tfvars"), Some(FileKind::Tfvars));
        assert_eq!(file_kind("x.auto.tfvars"), Some(FileKind::Tfvars));
        assert_eq!(file_kind("x.auto.tfvars.json"), Some(FileKind::TfvarsJson));
        assert_eq!(file_kind("prod.tfvars"), None, "only loaded with -var-file");
        assert_eq!(file_kind(".terraform/modules/x/main.tf"), None);
        assert_eq!(file_kind("main.tf.bak"), None);
    }

    #[test]
    fn a_tfvars_json_name_points_at_the_outer_key_that_gives_it() {
        let text = "{\n  \"tags\": {\"region\": \"é\", \"a\\\"b\": 1},\n  \"é\": 2, \"region\": \"x\",\n  \"q\\u0041\": [{\"k\": 1}]\n}\n";
        let facts = parse_tfvars_json(Arc::from("t.auto.tfvars.json"), text).unwrap();
        let mut at: Vec<(String, u32, u32)> = facts
            .assignments
            .iter()
            .map(|a| (a.name.clone(), a.at.line, a.at.col))
            .collect();
        at.sort();
        // `region` inside `tags` comes first in the text, but is not the variable
        assert_eq!(
            at,
            [
                ("qA".to_string(), 4, 3),
                ("region".to_string(), 3, 11),
                ("tags".to_string(), 2, 3),
                ("é".to_string(), 3, 3),
            ]
        );
        // many keys on one line
        let one_line: String = format!(
            "{{{}}}",
            (0..3_000)
                .map(|i| format!("\"v{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let facts = parse_tfvars_json(Arc::from("x.auto.tfvars.json"), &one_line).unwrap();
        let v2999 = facts
            .assignments
            .iter()
            .find(|a| a.name == "v2999")
            .unwrap();
        assert_eq!(
            (v2999.at.line, v2999.at.col as usize),
            (1, one_line.find("\"v2999\"").unwrap() + 1)
        );
    }
}
