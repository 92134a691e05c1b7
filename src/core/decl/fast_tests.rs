//! The fast path against hcl-edit: whatever the fast path accepts, hcl-edit accepts and lowers
//! to the same facts, on every fixture, every style of the benchmarks, hand-written corners
//! and thousands of mutations of them.

use super::super::ParseError;
use super::super::parse::{FileFacts, FileKind, parse_hcl};
use super::parse_each;
use crate::core::testing::Rng;
use std::sync::Arc;

/// The fast path's facts with their modules, as hcl-edit gives them.
fn parse(file: &Arc<str>, whole: &Arc<str>, from: usize, kind: FileKind) -> Option<FileFacts> {
    let mut modules = Vec::new();
    let mut facts = parse_each(file, whole, from, kind, &mut |m| modules.push(m))?;
    facts.modules = modules;
    Some(facts)
}

/// The fast path on a text of its own.
fn fast_path(file: &Arc<str>, text: &str, kind: FileKind) -> Option<FileFacts> {
    parse(file, &Arc::from(text), 0, kind)
}

/// Both readers on one text: `Some(true)` when the fast path read it (and agreed),
/// `Some(false)` when it gave it to hcl-edit.
fn compare(name: &str, text: &str, kind: FileKind) -> bool {
    let file: Arc<str> = Arc::from(name);
    let whole: Arc<str> = Arc::from(text);
    let slow = parse_hcl(file.clone(), &whole, 0, kind);
    if kind == FileKind::Config {
        parts_agree(&file, &whole, &slow);
    }
    match parse(&file, &whole, 0, kind) {
        None => false,
        Some(fast) => {
            match slow {
                Ok(slow) => assert_eq!(fast, slow, "the two readers differ on {name}:\n{text}"),
                Err(e) => panic!("the fast path accepts what hcl-edit refuses ({e}):\n{text}"),
            }
            true
        }
    }
}

/// The file read in parts, one beginning at each line that begins with `module `, as a large
/// file is read (`read_parts.rs`): when every part reads, hcl-edit reads the whole file to the
/// same facts.
fn parts_agree(file: &Arc<str>, whole: &Arc<str>, slow: &Result<FileFacts, ParseError>) {
    // as `compare` reads the file: from its first byte, a byte-order mark included
    let from = 0;
    let mut starts: Vec<usize> = memchr::memmem::find_iter(&whole.as_bytes()[from..], b"\nmodule ")
        .map(|at| from + at + 1)
        .collect();
    starts.insert(0, from);
    starts.push(whole.len());
    let mut facts = FileFacts::default();
    let mut line = 1;
    for span in starts.windows(2) {
        let mut modules = Vec::new();
        let range = (span[0], span[1]);
        let Some(part) =
            super::parse_part(file, whole, from, range, line, &mut |m| modules.push(m))
        else {
            return;
        };
        facts.modules.extend(modules);
        facts.variables.extend(part.variables);
        facts.locals.extend(part.locals);
        line += whole[span[0]..span[1]].matches('\n').count() as u32;
    }
    match slow {
        Ok(slow) => assert_eq!(&facts, slow, "read in parts, the file differs:\n{whole}"),
        Err(e) => {
            panic!("read in parts, the file is accepted, but hcl-edit refuses it ({e}):\n{whole}")
        }
    }
}

/// The fixture repository's Terraform (core/ reads no files: they are compiled in).
fn fixtures() -> Vec<(String, String)> {
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name.to_string(),
                include_str!(concat!("../../../fixtures/subaccounts/", $name)).to_string(),
            )
        };
    }
    vec![
        fixture!("main.tf"),
        fixture!("variables.tf"),
        fixture!("management.tf"),
        fixture!("clients.tf"),
        fixture!("internal.tf"),
    ]
}

/// The account pair in each style the benchmarks generate.
pub(crate) fn styles(i: usize) -> Vec<String> {
    let name = format!("client-c{i:05}");
    let key = format!("subaccount_client_c{i:05}");
    let pair = |id: &str, root: &str, tags: &str| {
        format!(
            "### client - {name} ###\nmodule \"{key}\" {{\n  source = \"git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0\"\n  name   = \"{name}\"\n  email  = \"aws+{name}@example.com\"\n}}\n\nmodule \"{key}_base\" {{\n  source          = \"git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0\"\n  account_id      = {id}\n  root_account_id = {root}\n  account_alias   = \"{name}\"\n  account_type    = \"client\"\n  tags            = {tags}\n}}\n\n"
        )
    };
    let hcl2 = pair(
        &format!("module.{key}.id"),
        "local.root",
        &format!("merge(local.tags, {{\n    client = \"c{i:05}\" # the client it serves\n  }})"),
    );
    // an escape, a conditional and a comment mid-line: expressions hcl-edit reads alone
    let expressions = hcl2.replace(
        &format!("  name   = \"{name}\"\n"),
        &format!("  name   = /* the name */ \"{name}\"\n  description = \"Client \\\"c{i:05}\\\" (INFRA-{i})\"\n  enabled     = var.root != \"\" ? true : false\n"),
    );
    assert!(
        expressions.contains("INFRA-"),
        "the style's account has its expressions"
    );
    vec![
        hcl2,
        expressions,
        pair(
            &format!("\"${{module.{key}.id}}\""),
            "\"${var.root_account_id}\"",
            &format!("\"${{ merge(var.tags, map(\"client\", \"c{i:05}\")) }}\""),
        ),
        pair(
            &format!("module.{key}.id"),
            "var.root_account_id",
            &format!("merge(var.tags, {{ client = \"c{i:05}\" }})"),
        ),
        pair(
            &format!("module.{key}.id"),
            "local.root",
            &format!(
                "{{\n    owner       = \"platform\" # who pays\n    cost-center = \"cc-1\",\n    \"client\"    : \"c{i:05}\"\n  }}"
            ),
        ),
        pair(
            &format!("module.{key}[\"id\"]"),
            "var.ids.0",
            &format!(
                "merge(\n    var.tags,\n    local.extra[0],\n    {{ client = \"c{i:05}\" }},\n  )"
            ),
        ),
    ]
}

const CORNERS: &[&str] = &[
    "",
    "\n\n",
    "# only a comment",
    "/* a\n block */\nlocals {\n  a = 1\n}\n",
    "terraform {\n  required_version = \">= 0.12\"\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \"~> 5.0\"\n    }\n  }\n}\n",
    "provider \"aws\" {\n  region = \"eu-west-1\"\n  assume_role {\n    role_arn = \"arn:aws:iam::123:role/x\"\n  }\n}\n",
    "variable \"tags\" {\n  type = map(string)\n  default = {\n    owner = \"platform\"\n  }\n}\nvariable \"ids\" {\n  default = [\"a\", \"b\",]\n}\nvariable \"none\" {}\n",
    "locals {\n  root = \"123456789012\"\n  n    = 42\n  on   = true\n  off  = false\n  nil  = null\n  paren = (var.x)\n  bare = foo\n  keyed = { (var.k) = 1, \"q\" = 2 }\n  nested = [[1, 2], {a = [3]}]\n}\n",
    "module \"a\" {\n  source = \"x\"\n  name = \"é ü 日本\"\n}\n",
    "module \"a\" {\r\n  source = \"x\"\r\n  name = \"b\"\r\n}\r\n",
    "module a {\n  source = \"x\"\n}\n",
    "module \"a\" \"b\" {\n  source = \"x\"\n}\nmodule \"c\" {}\n",
    "module \"a\" {\n  source = \"x\"\n  name = \"b\"\n  name = \"c\"\n}\n",
    "module \"a\" {\n  source = \"x\" // trailing\n  lifecycle {\n    ignore_changes = [tags]\n  }\n}",
    "module \"a\" {\n  source = \"x\"\n  tags = \"${var.a}-${var.b}x${local.c[\"k\"]}\"\n  empty = \"\"\n  call = lower(\"ABC\")\n  noargs = timestamp()\n}\n",
    "a = 1\nb = \"two\"\nc = [\"x\"]\nd = { e = \"f\" }\n",
    "locals {\n  a0 = 0\n  a1 = 1\n  a2 = 2\n  a3 = 3\n  a4 = 4\n  a5 = 5\n  a6 = 6\n  a7 = 7\n  a8 = 8\n  a9 = 9\n  a10 = 10\n  a11 = 11\n  a12 = 12\n  a13 = 13\n  a14 = 14\n  a15 = 15\n  a16 = 16\n  a17 = 17\n  a18 = 18\n  a19 = 19\n}\n",
    // heredocs of plain text
    "locals {\n  a = <<EOT\nhello\n  world $ 100%\nEOT\n  b = 1\n}\n",
    "locals {\n  a = <<-EOT\n      x\n\n    y\n  \n    EOT\n  b = [<<-X\n\t\tq\n\t  r\n X\n  , 2]\n}\n",
    "module \"a\" {\n  source = \"x\"\n  d = lower(<<EOT\nA EOTB\nEOTX\n EOT\n)\n}\n",
    // one-line blocks: one attribute
    "locals { a = 1 }\n",
    "variable \"root\" { default = \"123456789012\" }\nvariable \"t\" { default = { a = \"b\", c = [1] } }\n",
    "module \"a\" { source = \"x\" }\nlocals {a=\"${var.b}\"}  # after\n",
    // comments between the tokens of a line
    "module /* m */ \"a\" /* b */ { /* c */\n  source /* d */ = /* e */ \"x\" /* f */ # g\n  tags = { /* h */ a /* i */ = /* j */ \"b\" /* k */, c = \"${ /* l */ var.d /* m */ }\" }\n}\nlocals { /* n */ a /* o */ = 1 /* p */ }\n",
    // escapes, decoded as hcl-edit decodes them
    "locals {\n  a = \"q\\\"\\\\\\n\\r\\t $${x} %%{y} $$ %% 100%\"\n  b = \"${var.x}\\t\\\"${var.y}\\\"\"\n}\n",
];

/// Expressions the fast path once left whole files to hcl-edit for: each now read alone by
/// hcl-edit, or (an operator or a conditional on one line) by the fast path itself; the rest
/// of the file stays on the fast path.
const READ_ALONE_BY_HCL_EDIT: &[&str] = &[
    "locals {\n  a = var.x ? 1 : 2\n}\n",
    "locals {\n  a = [for x in var.l : x]\n}\n",
    "locals {\n  a = var.l[*].id\n}\n",
    "locals {\n  a = \"\\n\"\n}\n",
    "locals {\n  a = \"%{ if true }x%{ endif }\"\n}\n",
    "locals {\n  a = 1 + 2\n}\n",
    "locals {\n  a = -1\n}\n",
    "locals {\n  a = 1.5\n}\n",
    "module \"a\" {\n  source = \"x\"\n  description = \"Client \\\"acme\\\" account\"\n  count = var.on ? 1 : 0 # on\n  tags = merge(local.t, { \"k\\\\\" = \"v\" }, { for k, v in var.m : k => v if v != \"\" })\n  ids = [\n    module.b.id,\n    var.x == \"y\" ? \"z\" : \"${var.w}-${var.v ? \"a\" : \"b\"}\",\n    (var.p\n    + 1),\n    f(x).y,\n    !var.q, \"a\"[0],\n  ]\n  s = \"${var.a}\\t$${b} %%{c} ${var.d ~}\"\n  neg = -1.5e3\n  ns = provider::aws::arn_parse(var.arn)\n}\n",
    "locals {\n  a = <<EOT\n${var.x}\nEOT\n  b = lower(<<-EOT\n    Account ${var.y} \"q\"\n      $${x} %{ if true }y%{ endif }\n    EOT\n  )\n}\n",
    "locals {\n  a = { a = 1, \"a\" = 2 }\n  b = var.m[\"k\"].x[*].y\n  c = var.l.*.id\n  d = { (var.k) = var.x ? 1 : 2 }\n}\n",
];

/// Corners the fast path gives to hcl-edit (which may refuse them).
const LEFT_TO_HCL_EDIT: &[&str] = &[
    "locals { a = 1 # c }\n}\n",
    "locals {\n  a = <<EOT\nEOT\n}\n",
    "locals {\n  a = <<EOT\nEOT\nx\nEOT\n}\n",
    "locals {\n  a = <<EOT\r\nx\r\nEOT\r\n}\r\n",
    "locals {\n  a = <<EOT \nx\nEOT\n}\n",
    "locals {\n  a = <<EOT\nx\nEOTé\nEOT\n}\n",
    "locals {\n  a = <<EOT\nx\n",
    "locals { a = 1, }\n",
    "locals { a = 1 b = 2 }\n",
    "a { b { c = 1 } }\n",
    "a { b = 1 }}\n",
    "locals { a == 1 }\n",
    "locals {\n  a0 = 0\n  a1 = 1\n  a2 = 2\n  a3 = 3\n  a4 = 4\n  a5 = 5\n  a6 = 6\n  a7 = 7\n  a8 = 8\n  a9 = 9\n  a10 = 10\n  a11 = 11\n  a12 = 12\n  a13 = 13\n  a14 = 14\n  a15 = 15\n  a16 = 16\n  a17 = 17\n  a18 = 18\n  a19 = 19\n  a3 = 3\n}\n",
    "locals {\n  a = f(var.l...)\n}\n",
    "locals {\n  a = 1 b = 2\n}\n",
    "locals {\n  a = 1\n",
    "module \"a\" {\n  source = \"x\"\n}}\n",
];

#[test]
fn every_fixture_and_style_is_read_by_the_fast_path_as_by_hcl_edit() {
    for (name, text) in fixtures() {
        assert!(
            compare(&name, &text, FileKind::Config),
            "the fast path reads the fixture {name}"
        );
    }
    for (n, style) in styles(7).iter().enumerate() {
        let text = format!("{style}{}", styles(8)[n]);
        assert!(
            compare(&format!("style-{n}.tf"), &text, FileKind::Config),
            "the fast path reads style {n}"
        );
    }
}

#[test]
fn corners_agree_or_are_left_to_hcl_edit() {
    let mut fast = 0;
    for (i, text) in CORNERS
        .iter()
        .chain(READ_ALONE_BY_HCL_EDIT)
        .chain(LEFT_TO_HCL_EDIT)
        .enumerate()
    {
        for kind in [FileKind::Config, FileKind::Tfvars] {
            fast += compare(&format!("corner-{i}.tf"), text, kind) as usize;
        }
    }
    assert!(
        fast >= 20,
        "most corners are read by the fast path ({fast})"
    );
    // one-line blocks (`variable "x" { default = "y" }`, common in variables.tf): a large
    // file with one was left whole to hcl-edit, which reads an object in time quadratic in
    // its keys (a local map of 10,000 accounts: 9 s); comments between a line's tokens
    // (`name = /* c */ "x"` in every account: 158 ms instead of 76); escapes
    for text in &CORNERS[CORNERS.len() - 5..] {
        assert!(
            fast_path(&Arc::from("x.tf"), text, FileKind::Config).is_some(),
            "read by the fast path: {text}"
        );
    }
    // an operator, a conditional, a `for`, a splat, an escape or a directive in every
    // account sent every file to hcl-edit: three times as long (BENCHMARKS.md, seventh round)
    for text in READ_ALONE_BY_HCL_EDIT {
        assert!(
            fast_path(&Arc::from("x.tf"), text, FileKind::Config).is_some(),
            "read by the fast path, an expression alone by hcl-edit: {text}"
        );
    }
    for text in LEFT_TO_HCL_EDIT {
        assert!(
            fast_path(&Arc::from("x.tf"), text, FileKind::Config).is_none(),
            "left to hcl-edit: {text}"
        );
    }
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "\"", "{", "}", "[", "]", "(", ")", "=", "==", ",", ".", ":", "$", "${", "%{", "\\", "#",
        "//", "/*", "*/", "\n", "\r", "\t", " ", "x", "1", "-", "?", "*", "...", "<<EOT\n", "é",
        "0", "true", "for", "~", "<<-EOT\n", "\nEOT\n", "EOT", "\n  EOT", "\u{a0}", "+", "!",
        " ? 1 : ", " && ", "[*]", ".*", "\\\"", "$${", "%%{", "[for x in l : x]", " if ",
        "/* c */",
    ];
    let mut s = text.to_string();
    for _ in 0..1 + rng.below(3) {
        let mut at = rng.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(3) {
            0 => s.insert_str(at, PIECES[rng.below(PIECES.len())]),
            1 => {
                let mut end = (at + 1 + rng.below(4)).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                s.replace_range(at..end, "");
            }
            _ => {
                let mut end = (at + 1 + rng.below(8)).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                let piece = s[at..end].to_string();
                s.insert_str(end, &piece);
            }
        }
    }
    s
}

#[test]
fn mutated_files_are_read_alike_or_left_to_hcl_edit() {
    let mut corpus: Vec<String> = fixtures().into_iter().map(|(_, t)| t).collect();
    corpus.extend(styles(3));
    corpus.extend(
        CORNERS
            .iter()
            .chain(OPERATIONS)
            .chain(READ_ALONE_BY_HCL_EDIT)
            .chain(LEFT_TO_HCL_EDIT)
            .map(|c| c.to_string()),
    );
    // for a deeper search, raise ROUNDS or change the seed (core/ reads no environment)
    const ROUNDS: usize = 60;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut tried, mut fast) = (0, 0);
    for round in 0..ROUNDS {
        for (i, text) in corpus.iter().enumerate() {
            let mutant = mutate(&mut rng, text);
            let kind = if round % 4 == 0 {
                FileKind::Tfvars
            } else {
                FileKind::Config
            };
            tried += 1;
            fast += compare(&format!("mutant-{round}-{i}.tf"), &mutant, kind) as usize;
        }
    }
    assert!(
        fast * 10 >= tried,
        "a tenth of the mutants at least stay in the fast path's shape ({fast} of {tried})"
    );
}

/// Operators and conditionals between terms of the fast path's shape, on one line: read by
/// the fast path itself.
const OPERATIONS: &[&str] = &[
    "module \"a\" {\n  source = \"x\"\n  count = var.on ? 1 : 0\n  a = var.a == \"x\" && var.b != \"\"\n  b = var.n + 1 - 2 * 3 / 4 % 5\n  c = var.a ? var.b ? 1 : 2 : var.c ? 3 : 4\n  d = \"${var.a ? \"x\" : \"y\"}-${var.n+1}\"\n  e = [var.a > 1, var.b <= 2, var.c >= 3, var.d < 4]\n  f = var.a || var.b /* c */ ? { x = 1 } : { x = 2 } # t\n  g = f(var.x) + length(var.l)\n  h = { k = var.a ? \"p\" : \"q\", (var.k) = (var.x == 1) }\n  i = merge(var.t, { on = var.on ? \"yes\" : \"no\" })\n}\n",
];

#[test]
fn operators_and_conditionals_on_a_line_are_read_by_the_fast_path() {
    for text in OPERATIONS {
        assert!(
            compare("ops.tf", text, FileKind::Config),
            "read by the fast path: {text}"
        );
    }
    // around hcl-edit's limit on chained operators (128, counted across nested scopes):
    // the fast path reads a short chain itself and leaves a long one to hcl-edit, counting
    // the operators of what hcl-edit read alone inside it (`nested`)
    let chain = |n: usize| format!("a = 1{}\n", " + 1".repeat(n));
    let nested = |inner: usize, outer: usize| {
        let list = format!("[for x in l : x{}]", " + x".repeat(inner));
        format!("a = concat({list}){}\n", " + 1".repeat(outer))
    };
    for text in [
        chain(30),
        chain(33),
        chain(127),
        chain(128),
        chain(129),
        chain(300),
        nested(100, 10),
        nested(120, 10),
        nested(127, 1),
        nested(128, 1),
    ] {
        compare("chain.tf", &text, FileKind::Config);
    }
    let file: Arc<str> = Arc::from("chain.tf");
    assert!(fast_path(&file, &chain(30), FileKind::Config).is_some());
    assert!(fast_path(&file, &chain(300), FileKind::Config).is_none());
    assert!(fast_path(&file, &nested(120, 10), FileKind::Config).is_none());
}

#[test]
fn hcl_edit_reads_alone_no_more_than_the_file_before_it_reads_the_file() {
    // each level is read alone, then again as part of the next: the texts add up
    // quadratically, so past the file's length the file is left whole to hcl-edit
    // (a unary minus is read alone, and makes each level's chain read alone)
    let nest = |n: usize| format!("a = {}-x{}\n", "[".repeat(n), "] + -1".repeat(n));
    let file: Arc<str> = Arc::from("nest.tf");
    assert!(fast_path(&file, &nest(1), FileKind::Config).is_some());
    assert!(fast_path(&file, &nest(5), FileKind::Config).is_none());
    for n in 0..8 {
        compare("nest.tf", &nest(n), FileKind::Config);
    }
}

#[test]
fn deep_nesting_is_left_to_hcl_edit_before_the_stack_runs_out() {
    let file: Arc<str> = Arc::from("deep.tf");
    let deep = |n: usize| format!("a = {}1{}\n", "[".repeat(n), "]".repeat(n));
    let blocks = |n: usize| format!("{}{}", "b {\n".repeat(n), "}\n".repeat(n));
    // around hcl-edit's own limit (64 levels), both readers agree or the fast path steps aside
    for n in [1, 30, 46, 47, 48, 60, 63, 64, 65, 66, 100] {
        compare(&format!("deep-{n}.tf"), &deep(n), FileKind::Config);
        compare(&format!("blocks-{n}.tf"), &blocks(n), FileKind::Config);
    }
    // levels hcl-edit counts that brackets do not show: a quoted object key (a level, then
    // one for its interpolation) and unary operators in what hcl-edit reads alone
    let keys = |n: usize| format!("a = {}1{}\n", "{\"${".repeat(n), "}\" = 1}".repeat(n));
    let unary = |b: usize, n: usize| {
        format!(
            "a = {}{}true{}\n",
            "[".repeat(b),
            "!".repeat(n),
            "]".repeat(b)
        )
    };
    for n in [16, 31, 32, 33, 34, 40] {
        compare(&format!("keys-{n}.tf"), &keys(n), FileKind::Tfvars);
    }
    for (b, n) in [(1, 63), (2, 62), (3, 62), (3, 60), (10, 60), (0, 70)] {
        compare(&format!("unary-{b}-{n}.tf"), &unary(b, n), FileKind::Tfvars);
    }
    let heredoc = |b: usize, n: usize| {
        let (open, close) = ("[".repeat(b), "]".repeat(b));
        format!(
            "a = {open}<<EOT\n${{{}true}}\nEOT\n{close}\n",
            "!".repeat(n)
        )
    };
    for (b, n) in [(1, 62), (3, 60), (3, 62), (10, 50)] {
        compare(
            &format!("heredoc-{b}-{n}.tf"),
            &heredoc(b, n),
            FileKind::Tfvars,
        );
    }
    assert!(fast_path(&file, &deep(30), FileKind::Config).is_some());
    assert!(fast_path(&file, &deep(100), FileKind::Config).is_none());
    assert!(fast_path(&file, &deep(100_000), FileKind::Config).is_none());
    assert!(fast_path(&file, &blocks(100_000), FileKind::Config).is_none());
}

#[test]
fn a_key_written_twice_in_an_object_is_left_to_hcl_edit() {
    for text in [
        "locals {\n  t = { owner = \"a\", owner = \"b\" }\n}\n",
        "locals {\n  t = { \"a\" = 1, \"a\" = 2 }\n}\n",
        "module \"m\" {\n  source = \"x\"\n  tags = {\n    client = \"a\"\n    client = \"b\"\n  }\n}\n",
    ] {
        assert!(
            fast_path(&Arc::from("dup.tf"), text, FileKind::Config).is_none(),
            "left to hcl-edit: {text}"
        );
        compare("dup.tf", text, FileKind::Config);
    }
    // whether `a` and `"a"` are the same key is hcl-edit's to say: it reads the object alone
    let mixed = "locals {\n  t = { a = 1, \"a\" = 2 }\n}\n";
    assert!(compare("dup.tf", mixed, FileKind::Config));
}
