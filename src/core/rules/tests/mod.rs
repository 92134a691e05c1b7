use super::*;
use crate::core::approval::requirement;
use crate::core::decl;
use crate::core::model::SourceFile;
use crate::core::plan;
use crate::core::policy::PolicyError;

const EXAMPLE_POLICY: &str = include_str!("../../../../policies/orgvend.toml");
const EXAMPLE_REGO: &str = include_str!("../../../../policies/clients.rego");

fn policy_with(toml: &str, rego: &[(&str, &str)]) -> Result<Policy, PolicyError> {
    let mut files = vec![SourceFile::new("policies/orgvend.toml", toml)];
    files.extend(
        rego.iter()
            .map(|(p, t)| SourceFile::new(format!("policies/{p}"), *t)),
    );
    Policy::load(&files, "policies")
}

fn example() -> Policy {
    policy_with(EXAMPLE_POLICY, &[("clients.rego", EXAMPLE_REGO)])
        .expect("the example policy loads")
}

/// One account pair in the house style; `extra` lines go into the base module.
fn pair(slug: &str, account_type: &str, extra_tags: &str) -> String {
    let name = slug.to_string();
    let key = slug.replace('-', "_");
    format!(
        r#"
module "subaccount_{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "{name}"
  email  = "aws+{name}@example.com"
}}

module "subaccount_{key}_base" {{
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = "${{module.subaccount_{key}.id}}"
  account_alias   = "{name}"
  account_type    = "{account_type}"
  tags            = {{ owner = "team", cost-center = "cc-1" {extra_tags} }}
}}
"#
    )
}

fn client(slug: &str) -> String {
    pair(
        &format!("client-{slug}"),
        "client",
        &format!(", client = \"{slug}\""),
    )
}

fn decls(policy: &Policy, files: &[(&str, &str)]) -> decl::Declarations {
    let files: Vec<SourceFile> = files.iter().map(|(p, t)| SourceFile::new(*p, *t)).collect();
    decl::read(&files, &policy.sources)
}

fn run(policy: &Policy, base: Option<&[(&str, &str)]>, head: &[(&str, &str)]) -> Vec<Violation> {
    let head = decls(policy, head);
    assert!(head.parse_errors.is_empty(), "{:?}", head.parse_errors);
    let base = base.map(|b| decls(policy, b));
    let plan = plan::plan(base.as_ref(), &head, policy);
    check(
        policy,
        &CheckInput {
            head: &head,
            base: base.as_ref(),
            plan: &plan,
            mr: None,
            policy_changed: &[],
            proposed_policy: None,
        },
    )
}

/// "rule module file:line" for each violation.
fn summary(vs: &[Violation]) -> Vec<String> {
    vs.iter()
        .map(|v| {
            format!(
                "{} {} {}",
                v.rule,
                v.module.as_deref().unwrap_or("-"),
                v.at.as_ref().map(|a| a.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

fn has(vs: &[Violation], rule: &str, module: &str, line: u32) {
    assert!(
        vs.iter().any(|v| v.rule == rule
            && v.module.as_deref() == Some(module)
            && v.at.as_ref().map(|a| a.line) == Some(line)
            && !v.message.is_empty()
            && !v.fix.is_empty()),
        "expected {rule} on {module} at line {line}, got {:#?}",
        summary(vs)
    );
}

#[test]
fn the_fixture_repository_passes() {
    let p = example();
    let files = [
        (
            "main.tf",
            include_str!("../../../../fixtures/subaccounts/main.tf"),
        ),
        (
            "variables.tf",
            include_str!("../../../../fixtures/subaccounts/variables.tf"),
        ),
        (
            "terraform.tfvars",
            include_str!("../../../../fixtures/subaccounts/terraform.tfvars"),
        ),
        (
            "management.tf",
            include_str!("../../../../fixtures/subaccounts/management.tf"),
        ),
        (
            "internal.tf",
            include_str!("../../../../fixtures/subaccounts/internal.tf"),
        ),
        (
            "clients.tf",
            include_str!("../../../../fixtures/subaccounts/clients.tf"),
        ),
    ];
    let vs = run(&p, None, &files);
    assert!(vs.is_empty(), "{:#?}", vs);
    assert_eq!(decls(&p, &files).accounts.len(), 10);
}

#[test]
fn a_clean_client_passes() {
    let p = example();
    let tf = client("acme");
    assert!(run(&p, None, &[("main.tf", &tf)]).is_empty());
}

#[test]
fn aws_limits_are_enforced() {
    let p = example();
    let long = format!("client-{}", "x".repeat(50));
    let tf = client("acme")
        .replace("name   = \"client-acme\"", &format!("name   = \"{long}\""))
        .replace("aws+client-acme@example.com", "aws+client acme@example.com")
        .replace(
            "account_alias   = \"client-acme\"",
            "account_alias   = \"client--acme\"",
        )
        .replace("owner = \"team\"", "\"aws:owner\" = \"team\"");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "aws.account-name", "subaccount_client_acme", 4);
    has(&vs, "aws.email", "subaccount_client_acme", 5);
    has(&vs, "aws.alias", "subaccount_client_acme_base", 11);
    has(&vs, "aws.tags", "subaccount_client_acme_base", 13);
}

#[test]
fn unknown_account_type_is_refused() {
    let p = example();
    let tf = pair("sandbox-x", "sandbox", "");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "type.known", "subaccount_sandbox_x_base", 12);
    let v = vs.iter().find(|v| v.rule == "type.known").unwrap();
    assert!(
        v.fix.contains("`client`") && v.fix.contains("`management`"),
        "{}",
        v.fix
    );
}

#[test]
fn naming_follows_the_type() {
    let p = example();
    // a client account not named client-<slug>, whose alias differs from its name
    let tf = pair("acme", "client", ", client = \"acme\"").replace(
        "account_alias   = \"acme\"",
        "account_alias   = \"acme-corp\"",
    );
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "naming.name", "subaccount_acme", 4);
    has(&vs, "naming.alias-matches-name", "subaccount_acme_base", 11);
    let v = vs.iter().find(|v| v.rule == "naming.name").unwrap();
    assert!(v.fix.contains("client-[a-z0-9]+"), "{}", v.fix);

    let strict = EXAMPLE_POLICY.replace(
        "name_pattern  = 'client-[a-z0-9]+(-[a-z0-9]+)*'",
        "name_pattern  = 'client-[a-z0-9]+(-[a-z0-9]+)*'\nalias_pattern = 'c-[a-z]+'",
    );
    let p = policy_with(&strict, &[]).unwrap();
    let vs = run(&p, None, &[("main.tf", &client("acme"))]);
    has(&vs, "naming.alias", "subaccount_client_acme_base", 11);
}

#[test]
fn email_convention_and_domain() {
    let p = example();
    let tf = client("acme").replace("aws+client-acme@example.com", "someone@gmail.com");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "email.domain", "subaccount_client_acme", 5);
    has(&vs, "email.template", "subaccount_client_acme", 5);
    let v = vs.iter().find(|v| v.rule == "email.template").unwrap();
    assert!(v.fix.contains("aws+client-acme@example.com"), "{}", v.fix);

    // case does not matter for the template
    let tf = client("acme").replace("aws+client-acme@example.com", "AWS+client-acme@Example.com");
    assert!(run(&p, None, &[("main.tf", &tf)]).is_empty());

    let with_pattern = EXAMPLE_POLICY.replace(
        "template = \"aws+{name}@example.com\"",
        "pattern = 'aws\\+[a-z-]+@example\\.com'",
    );
    let p = policy_with(&with_pattern, &[]).unwrap();
    let tf = client("acme").replace("aws+client-acme@example.com", "aws+CLIENT@example.com");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "email.pattern", "subaccount_client_acme", 5);
}

#[test]
fn a_renamed_account_keeps_its_email_and_a_new_one_follows_the_template() {
    let p = example();
    let base = client("acme");
    // renamed: its email is its own (immutable), not the template's for the new name
    let renamed = client("acme")
        .replace("name   = \"client-acme\"", "name   = \"client-acme-eu\"")
        .replace(
            "account_alias   = \"client-acme\"",
            "account_alias   = \"client-acme-eu\"",
        )
        .replace("client = \"acme\"", "client = \"acme-eu\"");
    assert_ne!(renamed, base);
    let vs = run(&p, Some(&[("main.tf", &base)]), &[("main.tf", &renamed)]);
    assert!(
        !vs.iter().any(|v| v.rule == "email.template"),
        "{:?}",
        summary(&vs)
    );
    // a new account with that old address is another matter (and so is a new one off the
    // template)
    let vs = run(&p, None, &[("main.tf", &renamed)]);
    has(&vs, "email.template", "subaccount_client_acme", 5);
}

#[test]
fn duplicates_are_caught_case_insensitively() {
    let p = example();
    let a = client("acme");
    // same key, name, alias and (differently cased) email in a second file
    let b = client("acme").replace("aws+client-acme@example.com", "AWS+Client-Acme@example.com");
    let vs = run(&p, None, &[("a.tf", &a), ("b.tf", &b)]);
    has(&vs, "unique.module-key", "subaccount_client_acme", 2);
    has(&vs, "unique.name", "subaccount_client_acme", 4);
    has(&vs, "unique.email", "subaccount_client_acme", 5);
    let v = vs.iter().find(|v| v.rule == "unique.email").unwrap();
    assert_eq!(&*v.at.as_ref().unwrap().file, "b.tf");
    assert!(v.message.contains("a.tf:5"), "{}", v.message);
}

#[test]
fn alias_reuse_is_caught() {
    let p = example();
    let a = client("acme");
    let b = client("beta").replace(
        "account_alias   = \"client-beta\"",
        "account_alias   = \"client-acme\"",
    );
    let vs = run(&p, None, &[("a.tf", &a), ("b.tf", &b)]);
    has(&vs, "unique.alias", "subaccount_client_beta_base", 11);
}

#[test]
fn pairing_is_exact() {
    let p = example();
    let tf = client("acme")
        + r#"
module "stray_base" {
  source       = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id   = module.subaccount_client_ghost.id
  account_type = "client"
}
module "second_base" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id = module.subaccount_client_acme.arn
}
module "subaccount_client_lonely" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-lonely"
  email  = "aws+client-lonely@example.com"
}
"#;
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "pairing.missing-account", "stray_base", 18);
    has(&vs, "pairing.second-base", "second_base", 21);
    has(&vs, "pairing.no-base", "subaccount_client_lonely", 25);

    // pairing through the wrong output
    let tf = client("acme").replace("subaccount_client_acme.id}", "subaccount_client_acme.arn}");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "pairing.account-id", "subaccount_client_acme_base", 10);
}

#[test]
fn sources_must_be_allowed_and_pinned() {
    let p = example();
    let tf = client("acme")
        .replace("subaccount.git?ref=v1.4.0", "subaccount.git")
        .replace(
            "subaccount-base.git?ref=v2.1.0",
            "subaccount-base.git?ref=master",
        )
        + r#"
module "vpc" {
  source = "terraform-aws-modules/vpc/aws"
}
module "sneaky" {
  name = "x"
}
"#;
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "source.pinned", "subaccount_client_acme", 3);
    has(&vs, "source.pinned", "subaccount_client_acme_base", 9);
    has(&vs, "source.allowed", "vpc", 17);
    has(&vs, "source.missing", "sneaky", 19);
}

#[test]
fn count_and_for_each_are_refused_on_accounts() {
    let p = example();
    let tf = client("acme").replace(
        "name   = \"client-acme\"",
        "name   = \"client-acme\"\n  count  = 2",
    );
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "source.meta-argument", "subaccount_client_acme", 5);
}

#[test]
fn required_tags_per_type() {
    let p = example();
    let tf = pair("client-acme", "client", "");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "tags.required", "subaccount_client_acme_base", 13);
    let v = vs.iter().find(|v| v.rule == "tags.required").unwrap();
    assert!(v.message.contains("`client`"), "{}", v.message);
    // an internal account does not need the client tag
    assert!(
        run(
            &p,
            None,
            &[("main.tf", &pair("internal-ci", "internal", ""))]
        )
        .is_empty()
    );
}

#[test]
fn values_must_be_present_and_known() {
    let p = example();
    let tf = client("acme")
        .replace("  email  = \"aws+client-acme@example.com\"\n", "")
        .replace("account_type    = \"client\"", "account_type    = var.kind")
        .replace(
            "account_alias   = \"client-acme\"",
            "account_alias   = [\"client-acme\"]",
        );
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "value.missing", "subaccount_client_acme", 2);
    has(&vs, "value.unknown", "subaccount_client_acme_base", 11);
    has(&vs, "value.type", "subaccount_client_acme_base", 10);
}

#[test]
fn changes_against_base_email_type_and_close() {
    let p = example();
    let base = client("acme") + &client("beta");
    let head = client("acme")
        .replace(
            "aws+client-acme@example.com",
            "aws+client-acme2@example.com",
        )
        .replace(
            "account_type    = \"client\"",
            "account_type    = \"internal\"",
        );
    let vs = run(&p, Some(&[("main.tf", &base)]), &[("main.tf", &head)]);
    has(&vs, "change.immutable", "subaccount_client_acme", 5);
    has(&vs, "change.immutable", "subaccount_client_acme", 12);
    // beta was removed: closing is not allowed by the example policy
    has(&vs, "change.close", "subaccount_client_beta", 16);
    let close = vs.iter().find(|v| v.rule == "change.close").unwrap();
    assert_eq!(close.severity, Severity::Error);

    // where closing is allowed, it is a destructive warning and not a violation
    let allowing = EXAMPLE_POLICY.replace("allow_close = false", "allow_close = true");
    let p = policy_with(&allowing, &[]).unwrap();
    let vs = run(
        &p,
        Some(&[("main.tf", &base)]),
        &[("main.tf", &client("acme"))],
    );
    assert_eq!(
        summary(&vs),
        ["change.close subaccount_client_beta main.tf:16"]
    );
    assert_eq!(vs[0].severity, Severity::Warning);
}

#[test]
fn a_new_account_never_takes_an_existing_email() {
    let p = example();
    let base = client("acme");
    // acme moves to a new email (immutable: reported) and a new account takes the old one
    let head = client("acme").replace(
        "aws+client-acme@example.com",
        "aws+client-acme-new@example.com",
    ) + &client("beta")
        .replace("aws+client-beta@example.com", "aws+Client-Acme@example.com");
    let vs = run(&p, Some(&[("main.tf", &base)]), &[("main.tf", &head)]);
    has(&vs, "change.immutable", "subaccount_client_acme", 5);
    has(&vs, "change.email-reuse", "subaccount_client_beta", 19);
}

#[test]
fn renaming_a_module_key_is_not_close_and_create() {
    let p = example();
    let base = client("acme");
    let head = client("acme").replace("subaccount_client_acme", "acme");
    let head_d = decls(&p, &[("main.tf", &head)]);
    let base_d = decls(&p, &[("main.tf", &base)]);
    let plan = plan::plan(Some(&base_d), &head_d, &p);
    assert_eq!(plan.changes.len(), 1);
    let c = &plan.changes[0];
    assert_eq!(c.action, plan::Action::Update);
    assert_eq!(c.fields.len(), 1);
    assert_eq!(c.fields[0].field, "module");
    assert!(plan.steps(c).is_empty());
}

#[test]
fn rego_rules_deny_with_messages_and_modules() {
    let p = example();
    // the shipped custom rule: a client account's `client` tag names its client
    let tf = pair("client-acme", "client", ", client = \"globex\"");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    has(&vs, "rego.main", "subaccount_client_acme", 2);
    let v = vs.iter().find(|v| v.rule == "rego.main").unwrap();
    assert!(v.message.contains("globex"), "{}", v.message);
    assert!(v.fix.contains("client = \"acme\""), "{}", v.fix);

    // v0 syntax with plain string messages, reading changes and the (absent) MR
    let v0 = r#"
package orgvend.limits
deny[msg] {
    count(input.changes) > 1
    input.mr == null
    msg := sprintf("at most one account per MR, this one has %d", [count(input.changes)])
}
"#;
    let p = policy_with(EXAMPLE_POLICY, &[("limits.rego", v0)]).unwrap();
    let tf = client("acme") + &client("beta");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    let v = vs
        .iter()
        .find(|v| v.rule == "rego.orgvend.limits")
        .expect("the v0 rule fired");
    assert_eq!(v.message, "at most one account per MR, this one has 2");
    assert!(v.at.is_none());
    assert!(run(&p, None, &[("main.tf", &client("acme"))]).is_empty());
}

#[test]
fn a_failing_rego_rule_blocks_instead_of_passing() {
    let broken = r#"
package main
import rego.v1
deny contains msg if {
    msg := 1 / 0
}
"#;
    let p = policy_with(EXAMPLE_POLICY, &[("broken.rego", broken)]).unwrap();
    let vs = run(&p, None, &[("main.tf", &client("acme"))]);
    // either an evaluation error or a non-string message: never silence
    assert!(
        vs.iter().any(|v| v.rule == "rego.main"),
        "{:#?}",
        summary(&vs)
    );
}

#[test]
fn approvals_need_the_most_any_change_needs() {
    let p = example();
    let head = decls(
        &p,
        &[(
            "main.tf",
            &(client("acme") + &pair("mgmt-vpn", "management", "")),
        )],
    );
    let plan = plan::plan(None, &head, &p);
    let r = requirement(&p, &plan, &[]);
    assert_eq!(r.count, 2);
    assert_eq!(r.group, "infrastructure");
    assert!(r.reason.unwrap().contains("mgmt-vpn"));

    let head = decls(&p, &[("main.tf", &client("acme"))]);
    assert_eq!(requirement(&p, &plan::plan(None, &head, &p), &[]).count, 1);
    // nothing changes: nothing to approve
    assert_eq!(
        requirement(&p, &plan::plan(Some(&head), &head, &p), &[]).count,
        0
    );
}

#[test]
fn rego_sees_modules_and_changes_when_it_names_them() {
    let rules = r#"
package modules
import rego.v1
deny contains msg if {
    some m in input.modules
    m.kind == "base"
    m.attributes.account_type == "client"
    not m.attributes.tags.owner
    msg := sprintf("%s has no owner", [m.key])
}
"#;
    let p = policy_with(EXAMPLE_POLICY, &[("modules.rego", rules)]).unwrap();
    let tf = client("acme").replace("owner = \"team\", ", "");
    let vs = run(&p, None, &[("main.tf", &tf)]);
    assert!(
        vs.iter()
            .any(|v| v.rule == "rego.modules"
                && v.message == "subaccount_client_acme_base has no owner"),
        "{:#?}",
        summary(&vs)
    );

    // a rule that reaches the input dynamically gets every part
    let dynamic = r#"
package dynamic
import rego.v1
deny contains msg if {
    some part in ["changes"]
    count(input[part]) > 0
    msg := sprintf("%d changes", [count(input[part])])
}
"#;
    let p = policy_with(EXAMPLE_POLICY, &[("dynamic.rego", dynamic)]).unwrap();
    let vs = run(&p, None, &[("main.tf", &client("acme"))]);
    assert!(
        vs.iter()
            .any(|v| v.rule == "rego.dynamic" && v.message == "1 changes"),
        "{:#?}",
        summary(&vs)
    );
}

mod access;
/// The rules that keep changes of the rules, adoptions and project paths in check.
mod gate;
mod guard;
mod parallel;

#[test]
fn rego_per_account_runs_deny_what_one_whole_document_denies() {
    // 600 accounts: several runs; three mistagged ones in different runs
    let tf: String = (0..600)
        .map(|i| match i {
            0 | 260 | 599 => pair(&format!("client-c{i}"), "client", ", client = \"x\""),
            _ => client(&format!("c{i}")),
        })
        .collect();
    let denied = |p: &Policy| {
        let mut vs: Vec<(Option<String>, String)> = run(p, None, &[("main.tf", &tf)])
            .into_iter()
            .filter(|v| v.rule == "rego.main")
            .map(|v| (v.module, v.message))
            .collect();
        vs.sort();
        vs
    };
    let mut whole = example();
    whole.rego_per_account = false;
    let runs = denied(&example());
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs, denied(&whole));
}
