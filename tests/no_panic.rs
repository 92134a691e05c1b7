//! No input makes the reader, the policy, the plan or a renderer panic: random text, HCL token
//! soup, and mutations of a valid repository, run through the whole check.

use orgvend::core::decl;
use orgvend::core::model::SourceFile;
use orgvend::core::policy::Policy;
use orgvend::core::render;
use orgvend::core::report::{self, AssessInput};
use proptest::prelude::*;
use std::sync::LazyLock;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::load(
        &[
            SourceFile::new(
                "policies/orgvend.toml",
                include_str!("../policies/orgvend.toml"),
            ),
            SourceFile::new(
                "policies/clients.rego",
                include_str!("../policies/clients.rego"),
            ),
        ],
        "policies",
    )
    .unwrap()
});

const VALID: &str = include_str!("../fixtures/subaccounts/clients.tf");
const VARIABLES: &str = include_str!("../fixtures/subaccounts/variables.tf");

/// Runs everything on one head (and the fixture as base) and touches every output.
fn whole_check(files: Vec<SourceFile>) {
    let p = &*POLICY;
    let head = decl::read(&files, &p.sources);
    let base = decl::read(
        &[
            SourceFile::new("clients.tf", VALID),
            SourceFile::new("variables.tf", VARIABLES),
        ],
        &p.sources,
    );
    for base in [None, Some(&base)] {
        let r = report::assess(AssessInput::local(base, &head, p));
        assert!(!render::markdown::render(&r).is_empty());
        assert!(!render::text::render(&r).is_empty());
        assert!(render::json::render(&r).starts_with('{'));
    }
}

const TOKENS: &[&str] = &[
    "module",
    "variable",
    "locals",
    "\"subaccount_a\"",
    "\"x\"",
    "{",
    "}",
    "=",
    "\n",
    " ",
    "source",
    "\"git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0\"",
    "\"git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2\"",
    "name",
    "email",
    "account_id",
    "account_alias",
    "account_type",
    "tags",
    "\"${module.subaccount_a.id}\"",
    "module.subaccount_a.id",
    "var.tags",
    "local.x",
    "\"${var.tags}\"",
    "merge(",
    "map(",
    "lookup(",
    "format(",
    ")",
    ",",
    "[",
    "]",
    "0",
    "1.5e3",
    "true",
    "null",
    "<<EOF\n",
    "<<-EOF\n",
    "EOF\n",
    "#",
    "//",
    "/*",
    "*/",
    "\"${",
    "%{ if true }",
    "%{ endif }",
    "...",
    "?",
    ":",
    "for",
    "in",
    "x => y",
    "\"client-a\"",
    "\"aws+client-a@example.com\"",
    "\"client\"",
    "default",
    "-",
    "!",
    "count",
    "for_each",
    "\u{0}",
    "é",
    "\"\\u0041\"",
    "var",
    "module.",
    ".id",
    "[0]",
    "[\"k\"]",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|t| t.concat())
}

/// A valid file with a few random edits: deletions, insertions and swaps of characters.
fn mutated() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..8).prop_map(
        |edits| {
            let mut chars: Vec<char> = VALID.chars().collect();
            for (at, c, kind) in edits {
                if chars.is_empty() {
                    break;
                }
                let i = at.index(chars.len());
                match kind {
                    0 => {
                        chars.remove(i);
                    }
                    1 => chars.insert(i, c),
                    _ => chars[i] = c,
                }
            }
            chars.into_iter().collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC*", tfvars in "\\PC*") {
        whole_check(vec![
            SourceFile::new("main.tf", text.clone()),
            SourceFile::new("terraform.tfvars", tfvars),
            SourceFile::new("x.auto.tfvars.json", text),
        ]);
    }

    #[test]
    fn hcl_token_soup_never_panics(a in token_soup(), b in token_soup(), vars in token_soup()) {
        whole_check(vec![
            SourceFile::new("a.tf", a),
            SourceFile::new("dir/b.tf", b),
            SourceFile::new("variables.tf", vars),
        ]);
    }

    #[test]
    fn mutated_repositories_never_panic(text in mutated()) {
        whole_check(vec![SourceFile::new("clients.tf", text), SourceFile::new("variables.tf", VARIABLES)]);
    }
}

#[test]
fn deep_nesting_and_self_reference_terminate() {
    let deep = format!(
        "locals {{ a = {}1{} }}\nmodule \"m\" {{ source = \"x\" name = local.a }}",
        "[".repeat(500),
        "]".repeat(500)
    );
    whole_check(vec![SourceFile::new("deep.tf", deep)]);
    let cycle = "locals {\n a = local.b\n b = merge(local.a, {})\n}\nmodule \"subaccount_a\" {\n source = \"git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0\"\n name = local.a\n}\n";
    whole_check(vec![SourceFile::new("cycle.tf", cycle)]);
}
