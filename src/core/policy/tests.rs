use super::*;

const EXAMPLE_POLICY: &str = include_str!("../../../policies/orgvend.toml");

fn policy_with(toml: &str, rego: &[(&str, &str)]) -> Result<Policy, PolicyError> {
    let mut files = vec![SourceFile::new("policies/orgvend.toml", toml)];
    files.extend(
        rego.iter()
            .map(|(p, t)| SourceFile::new(format!("policies/{p}"), *t)),
    );
    Policy::load(&files, "policies")
}

#[test]
fn rego_syntax_errors_are_policy_errors() {
    let err = policy_with(
        EXAMPLE_POLICY,
        &[("bad.rego", "package main\ndeny contains msg if {")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("policies/bad.rego"), "{err}");
}

#[test]
fn policy_file_errors_name_file_and_line() {
    let err = policy_with(
        &EXAMPLE_POLICY.replace(
            "alias_equals_name = true",
            "alias_equals_name = true\nshout = 1",
        ),
        &[],
    )
    .unwrap_err();
    let at = err.at.clone().unwrap();
    assert_eq!(&*at.file, "policies/orgvend.toml");
    assert_eq!(at.line, 25, "{err}");
    assert!(err.message.contains("shout"), "{err}");

    let err = policy_with(
        &EXAMPLE_POLICY.replace("'client-[a-z0-9]+(-[a-z0-9]+)*'", "'client-[a-z'"),
        &[],
    )
    .unwrap_err();
    assert!(err.message.contains("types.client.name_pattern"), "{err}");
    assert_eq!(err.at.unwrap().line, 63);

    let err = policy_with(
        &EXAMPLE_POLICY.replace("ou            = \"/Clients\"", "ou = \"Clients\""),
        &[],
    )
    .unwrap_err();
    assert!(err.message.contains("OU path"), "{err}");

    let err = policy_with(
        &EXAMPLE_POLICY.replace(
            "immutable = [\"email\", \"account_type\", \"role_name\"]",
            "immutable = [\"colour\"]",
        ),
        &[],
    )
    .unwrap_err();
    assert!(err.message.contains("colour"), "{err}");

    let err = policy_with(
        "[modules]\naccount_source = \"a\"\nbase_source = \"b\"\n[types]\n",
        &[],
    )
    .unwrap_err();
    assert!(err.message.contains("at least one account type"), "{err}");

    let err = policy_with("this is = = not toml", &[]).unwrap_err();
    assert_eq!(err.at.unwrap().line, 1);

    let err = Policy::load(&[], "policies").unwrap_err();
    assert!(err.message.contains("policies/orgvend.toml"), "{err}");
}

#[test]
fn email_stays_immutable_whatever_the_policy_says() {
    let p = policy_with(
        &EXAMPLE_POLICY.replace(
            "immutable = [\"email\", \"account_type\", \"role_name\"]",
            "immutable = []",
        ),
        &[],
    )
    .unwrap();
    assert_eq!(p.immutable, ["email"]);
}

#[test]
fn zero_approvals_anywhere_is_a_policy_error() {
    for (from, to, line) in [
        ("default = 1", "default = 0", 37),
        ("approvals     = 2", "approvals     = 0", 52),
        ("close_approvals = 2", "close_approvals = 0", 31),
        ("policy_changes = 2", "policy_changes = 0", 45),
    ] {
        let err = policy_with(&EXAMPLE_POLICY.replace(from, to), &[]).unwrap_err();
        assert!(err.message.contains("is 0"), "{from}: {err}");
        assert_eq!(err.at.unwrap().line, line, "{from}: {}", err.message);
    }
}

#[test]
fn approvers_need_developer_access_by_default_and_policy_changes_the_most_any_type_needs() {
    let p = policy_with(EXAMPLE_POLICY, &[]).unwrap();
    assert_eq!(p.min_access_level, 30);
    assert!(p.inherited_members);
    assert_eq!(p.policy_approvals, 2);
    let p = policy_with(
        &EXAMPLE_POLICY
            .replace("\"developer\"", "\"maintainer\"")
            .replace("inherited = true", "inherited = false")
            .replace("policy_changes = 2", "policy_changes = 3"),
        &[],
    )
    .unwrap();
    assert_eq!(
        (p.min_access_level, p.inherited_members, p.policy_approvals),
        (40, false, 3)
    );
    let err = policy_with(&EXAMPLE_POLICY.replace("\"developer\"", "\"boss\""), &[]).unwrap_err();
    assert!(err.message.contains("boss"), "{err}");
}
