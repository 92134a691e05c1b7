//! The incremental review against the whole one: randomized edits of a generated repository,
//! each judged both ways, must give the same report (JSON and note).

use super::*;
use crate::core::model::SourceFile;
use crate::core::render;
use crate::core::rules::MrFacts;
use crate::core::testing::Rng;

const EXAMPLE_POLICY: &str = include_str!("../../../policies/orgvend.toml");
const EXAMPLE_REGO: &str = include_str!("../../../policies/clients.rego");

fn policy(toml: &str) -> Policy {
    let files = vec![
        SourceFile::new("policies/orgvend.toml", toml),
        SourceFile::new("policies/clients.rego", EXAMPLE_REGO),
    ];
    Policy::load(&files, "policies").expect("the policy loads")
}

/// One account as the generator writes it.
#[derive(Clone, Debug)]
struct Acct {
    file: String,
    key: String,
    name: String,
    email: String,
    alias: String,
    client: String,
    /// The base module, and the account module its `account_id` names.
    base: Option<String>,
    /// A second base module for the same account.
    second_base: bool,
}

impl Acct {
    fn new(file: &str, n: u32) -> Acct {
        let name = format!("client-c{n:03}");
        Acct {
            file: file.into(),
            key: format!("subaccount_c{n:03}"),
            email: format!("aws+{name}@example.com"),
            alias: name.clone(),
            client: format!("c{n:03}"),
            base: Some(format!("subaccount_c{n:03}")),
            name,
            second_base: false,
        }
    }

    fn text(&self, interpolated: bool) -> String {
        let mut out = format!(
            "module \"{}\" {{\n  source = \"git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0\"\n  name   = \"{}\"\n  email  = \"{}\"\n}}\n\n",
            self.key, self.name, self.email
        );
        let bases = if self.second_base { 2 } else { 1 };
        for b in 0..bases {
            let Some(target) = &self.base else { break };
            let (id, tags) = if interpolated {
                (
                    format!("\"${{module.{target}.id}}\""),
                    format!(
                        "\"${{merge(var.tags, map(\"client\", \"{}\"))}}\"",
                        self.client
                    ),
                )
            } else {
                (
                    format!("module.{target}.id"),
                    format!("merge(var.tags, {{ client = \"{}\" }})", self.client),
                )
            };
            let suffix = if b == 0 { "" } else { "_again" };
            out.push_str(&format!(
                "module \"{}_base{suffix}\" {{\n  source        = \"git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0\"\n  account_id    = {id}\n  account_alias = \"{}\"\n  account_type  = \"client\"\n  tags          = {tags}\n}}\n\n",
                self.key, self.alias
            ));
        }
        out
    }
}

struct Repo {
    accounts: Vec<Acct>,
    owner: String,
    /// Files with a comment at the top (every module in them a few lines down).
    commented: Vec<String>,
    next: u32,
}

impl Repo {
    fn files(&self) -> Vec<SourceFile> {
        let mut files = vec![SourceFile::new(
            "variables.tf",
            format!(
                "variable \"tags\" {{\n  default = {{ owner = \"{}\", cost-center = \"cc-1\" }}\n}}\n",
                self.owner
            ),
        )];
        let mut by_file: std::collections::BTreeMap<&str, String> = Default::default();
        for (i, a) in self.accounts.iter().enumerate() {
            let text = by_file.entry(&a.file).or_insert_with(|| {
                if self.commented.contains(&a.file) {
                    "# accounts\n\n".to_string()
                } else {
                    String::new()
                }
            });
            text.push_str(&a.text(i % 3 == 0));
        }
        files.extend(by_file.into_iter().map(|(p, t)| SourceFile::new(p, t)));
        files
    }
}

const FILES: [&str; 4] = [
    "accounts-a.tf",
    "accounts-b.tf",
    "sub/accounts-c.tf",
    "z.tf",
];

fn base_repo() -> Repo {
    let mut accounts: Vec<Acct> = (0..24)
        .map(|n| Acct::new(FILES[n as usize % 3], n))
        .collect();
    // some violations the base already has: a used email, a mistagged client
    accounts[5].email = accounts[4].email.clone();
    accounts[7].client = "wrong".into();
    Repo {
        accounts,
        owner: "team".into(),
        commented: Vec::new(),
        next: 100,
    }
}

/// One random edit, of the kinds an MR makes (and a few it should not).
fn edit(repo: &mut Repo, rng: &mut Rng) {
    let n = repo.accounts.len();
    let i = rng.below(n);
    let j = rng.below(n);
    match rng.below(16) {
        0 | 1 => {
            let mut a = Acct::new(FILES[rng.below(FILES.len())], repo.next);
            repo.next += 1;
            if rng.below(4) == 0 && n > 0 {
                a.email = repo.accounts[j].email.clone();
            }
            let at = rng.below(n + 1);
            repo.accounts.insert(at, a);
        }
        2 if n > 0 => {
            repo.accounts.remove(i);
        }
        3 if n > 0 => repo.accounts[i].base = None,
        4 if n > 0 => repo.accounts[i].email = repo.accounts[j].email.clone(),
        5 if n > 0 => repo.accounts[i].name = repo.accounts[j].name.clone(),
        6 if n > 0 => repo.accounts[i].name = format!("Bad*{}", rng.below(9)),
        7 if n > 0 => {
            let key = format!("subaccount_renamed_{}", rng.below(1000));
            repo.accounts[i].base = Some(key.clone());
            repo.accounts[i].key = key;
        }
        8 if n > 0 => repo.accounts[i].alias = repo.accounts[j].alias.clone(),
        9 if n > 0 => repo.accounts[i].client = format!("x{}", rng.below(9)),
        10 if n > 0 => repo.accounts[i].base = Some(format!("subaccount_missing_{}", rng.below(9))),
        11 if n > 0 => repo.accounts[i].second_base = true,
        12 if n > 0 => repo.accounts[i].key = repo.accounts[j].key.clone(),
        13 if n > 0 => repo.accounts[i].file = FILES[rng.below(FILES.len())].into(),
        14 => {
            let f = FILES[rng.below(FILES.len())].to_string();
            if !repo.commented.contains(&f) {
                repo.commented.push(f);
            }
        }
        15 => repo.owner = format!("team-{}", rng.below(3)), // a variable: read whole
        _ => {}
    }
}

fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("a report serializes")
}

#[test]
fn randomized_edits_are_judged_as_a_whole_check_judges_them() {
    let policy = policy(EXAMPLE_POLICY);
    assert!(
        policy.rego_per_account,
        "the shipped policy says per_account"
    );
    let facts = MrFacts {
        author: "alice".into(),
        approved_by: vec!["bob".into()],
        ..MrFacts::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut judged, mut whole) = (0, 0);
    for round in 0..300 {
        let mut repo = base_repo();
        for _ in 0..round % 5 {
            edit(&mut repo, &mut rng); // a base of its own
        }
        let base_files = repo.files();
        let base = decl::read(&base_files, &policy.sources);
        let (kept_decls, reading) = decl::read_kept(base_files, &policy.sources);
        let known = Known::new(Arc::new(kept_decls), Arc::new(reading), &policy)
            .expect("the base can be known");
        for _ in 0..1 + rng.below(3) {
            edit(&mut repo, &mut rng);
        }
        let head_files = repo.files();
        let head = decl::read(&head_files, &policy.sources);
        // the same facts both ways
        let input = || ChangeInput {
            mr: Some(&facts),
            approvals: Some((vec!["bob".to_string()], Vec::new())),
            head_label: Some("head".into()),
            ..ChangeInput::local(&policy)
        };
        let full = report::assess(input().with(Some(&base), &head));
        let change = assess_change(&known, &head_files, input());
        let Some(change) = change else {
            whole += 1;
            continue;
        };
        judged += 1;
        assert_eq!(
            json(&change),
            json(&full),
            "round {round}: the incremental report differs from the whole check's"
        );
        assert_eq!(
            render::markdown::render(&change),
            render::markdown::render(&full),
            "round {round}: the notes differ"
        );
    }
    // most edits stay within their modules; a changed variable is read whole
    assert!(
        judged > 200,
        "judged incrementally: {judged}, whole: {whole}"
    );
    assert!(whole > 0, "no edit changed a variable: {whole}");
}

#[test]
fn the_part_judged_is_what_the_change_reaches() {
    let policy = policy(EXAMPLE_POLICY);
    let repo = base_repo();
    let (decls, reading) = decl::read_kept(repo.files(), &policy.sources);
    let known = Known::new(Arc::new(decls), Arc::new(reading), &policy).unwrap();
    let mut head = repo;
    let mut a = Acct::new("z.tf", 500);
    a.email = head.accounts[10].email.clone();
    head.accounts.push(a);
    let report = assess_change(&known, &head.files(), ChangeInput::local(&policy))
        .expect("judged incrementally");
    assert_eq!(report.plan.changes.len(), 1);
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule.as_str()).collect();
    // the new account's email is another's; the base's own violations stay
    assert!(rules.contains(&"unique.email"), "{rules:?}");
    assert!(rules.contains(&"change.email-reuse"), "{rules:?}");
    assert!(rules.contains(&"rego.main"), "{rules:?}");
}

#[test]
fn custom_rules_that_may_look_across_accounts_or_at_the_mr_are_judged_whole() {
    let repo = base_repo();
    let across = policy(&EXAMPLE_POLICY.replace("per_account = true", "per_account = false"));
    let (decls, reading) = decl::read_kept(repo.files(), &across.sources);
    let (decls, reading) = (Arc::new(decls), Arc::new(reading));
    assert!(Known::new(decls.clone(), reading.clone(), &across).is_none());

    let files = vec![
        SourceFile::new("policies/orgvend.toml", EXAMPLE_POLICY),
        SourceFile::new(
            "policies/mr.rego",
            "package mr\nimport rego.v1\ndeny contains \"no\" if { input.mr.title == \"x\" }\n",
        ),
    ];
    let reads_the_mr = Policy::load(&files, "policies").unwrap();
    assert!(Known::new(decls.clone(), reading.clone(), &reads_the_mr).is_none());
    assert!(Known::new(decls, reading, &policy(EXAMPLE_POLICY)).is_some());
}

/// A local reached first through a deep expression must not change what a later module of
/// the same file reads (found by an attacker's review: the whole check said Blocked, the
/// part Ready).
#[test]
fn a_module_reads_a_local_the_same_whoever_read_it_first() {
    let policy = policy(EXAMPLE_POLICY);
    let mut chain = String::from("locals {\n");
    for i in 0..62 {
        let name = if i == 0 {
            "e".to_string()
        } else {
            format!("e{i}")
        };
        chain.push_str(&format!("  {name} = local.e{}\n", i + 1));
    }
    chain.push_str("  e62 = \"aws+client-y@example.com\"\n}\n");
    let mut p = Acct::new("accounts.tf", 1);
    p.file = "accounts.tf".into();
    let p_text = p.text(false).replacen("  name ", "\n  name ", 1);
    let mut y = Acct::new("accounts.tf", 2);
    y.name = "client-y".into();
    y.alias = "client-y".into();
    y.client = "y".into();
    let y_text = y.text(false).replace(
        "email  = \"aws+client-c002@example.com\"",
        "email  = local.e",
    );
    let variables =
        "variable \"tags\" {\n  default = { owner = \"team\", cost-center = \"cc-1\" }\n}\n";
    let files = |p_text: &str| {
        vec![
            SourceFile::new("locals.tf", chain.clone()),
            SourceFile::new("variables.tf", variables),
            SourceFile::new("accounts.tf", format!("{p_text}{y_text}")),
        ]
    };
    let base_files = files(&p_text);
    let head_files = files(&p_text.replacen("\n\n  name ", "\n  notes = [[local.e]]\n  name ", 1));
    assert_ne!(base_files[2].text, head_files[2].text);
    let (base, head) = (
        decl::read(&base_files, &policy.sources),
        decl::read(&head_files, &policy.sources),
    );
    let email = |d: &Declarations| d.accounts[1].email.clone().map(|f| f.value);
    assert_eq!(
        email(&head),
        Some(Value::String("aws+client-y@example.com".into())),
        "the later module reads the local's value"
    );
    assert_eq!(email(&base), email(&head));
    let (decls, reading) = decl::read_kept(base_files, &policy.sources);
    let known = Known::new(Arc::new(decls), Arc::new(reading), &policy).expect("known");
    let change = assess_change(&known, &head_files, ChangeInput::local(&policy))
        .expect("judged on its part");
    let full = report::assess(AssessInput::local(Some(&base), &head, &policy));
    assert_eq!(json(&change), json(&full));
}
