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
    assert_eq!(err.at.unwrap().line, 71);

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
        ("default = 1", "default = 0", 45),
        ("approvals     = 2", "approvals     = 0", 60),
        ("close_approvals = 2", "close_approvals = 0", 31),
        ("policy_changes = 2", "policy_changes = 0", 53),
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

/// The line of the first occurrence of `needle` in the example policy after `edit`.
fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

#[test]
fn access_loads_with_its_grants_and_the_admin_group() {
    let p = policy_with(
        &EXAMPLE_POLICY.replace("provider = \"none\"", "provider = \"identity-center\""),
        &[],
    )
    .unwrap();
    assert_eq!(p.access.provider, Provider::IdentityCenter);
    assert_eq!(p.access.admin_group.as_deref(), Some("aws-infrastructure"));
    let client = &p.access.types["client"];
    assert!(
        client
            .grants
            .contains(&("PowerUser".to_string(), "{name}-engineers".to_string()))
    );
    assert_eq!(client.may_add["ReadOnly"], "{name}-[a-z0-9-]+");
    assert_eq!(
        p.access.permission_set_name("BoundedAdmin"),
        "orgvend-BoundedAdmin"
    );
}

#[test]
fn admin_to_anyone_but_the_admin_group_is_a_policy_error_at_its_line() {
    // the attack: a policy edit that hands Admin to a client's own group
    let text = EXAMPLE_POLICY.replace(
        "grants = { Admin = [\"aws-infrastructure\"], PowerUser = [\"{name}-engineers\"], ReadOnly = [\"auditors\"] }\n# Groups",
        "grants = { Admin = [\"{name}-engineers\"], PowerUser = [\"{name}-engineers\"], ReadOnly = [\"auditors\"] }\n# Groups",
    );
    assert_ne!(text, EXAMPLE_POLICY);
    let err = policy_with(&text, &[]).unwrap_err();
    assert!(err.message.contains("only the admin group"), "{err}");
    assert_eq!(
        err.at.unwrap().line,
        line_of(&text, "Admin = [\"{name}-engineers\"]")
    );

    // a declaration may never be allowed to add groups to an admin role
    let text = EXAMPLE_POLICY.replace("may_add = { ReadOnly", "may_add = { Admin = '.*', ReadOnly");
    let err = policy_with(&text, &[]).unwrap_err();
    assert!(
        err.message.contains("never add groups to an admin role"),
        "{err}"
    );
    assert_eq!(err.at.unwrap().line, line_of(&text, "may_add = { Admin"));

    // nor can the admin role be dropped from the admin roles to get around it
    let text = EXAMPLE_POLICY.replace("admin_roles = [\"Admin\"]", "admin_roles = [\"Root\"]");
    let err = policy_with(&text, &[]).unwrap_err();
    assert!(err.message.contains("`Root`"), "{err}");
}

#[test]
fn access_names_are_checked_where_they_are_written() {
    for (from, to, says) in [
        (
            "provider = \"none\"",
            "provider = \"ldap\"",
            "access.provider",
        ),
        (
            "permission_set_prefix = \"orgvend-\"",
            "permission_set_prefix = \"orgvend-permission-set-for-\"",
            "1–32",
        ),
        (
            "session_duration = \"PT8H\"",
            "session_duration = \"PT13H\"",
            "1 to 12 hours",
        ),
        (
            "group_name = \"aws#{alias}#{role}#{account_id}\"",
            "group_name = \"aws#{alias}\"",
            "{role} and {account_id}",
        ),
        (
            "[access.types.client]",
            "[access.types.clients]",
            "no account type `clients`",
        ),
        (
            "ReadOnly = [\"auditors\"] }\n# Groups",
            "ReadOnly = [\"audit*\"] }\n# Groups",
            "not a valid group name",
        ),
        (
            "ViewOnly = '{name}-[a-z0-9-]+'",
            "ViewOnly = '{name}-[a-z'",
            "not a valid regex",
        ),
        (
            "ViewOnly = '{name}",
            "Root = '{name}",
            "not a role of [baseline]",
        ),
    ] {
        let text = EXAMPLE_POLICY.replace(from, to);
        assert_ne!(text, EXAMPLE_POLICY, "{from}");
        let err = policy_with(&text, &[]).unwrap_err();
        assert!(err.message.contains(says), "{from}: {err}");
        let needle = to.lines().next().unwrap();
        assert_eq!(
            err.at.clone().unwrap().line,
            line_of(&text, needle),
            "{from}: {err}"
        );
    }
}

#[test]
fn each_type_carries_its_own_guard_over_the_defaults() {
    use super::security::Trail;
    let p = policy_with(EXAMPLE_POLICY, &[]).unwrap();
    let internal = p.security.of(Some("internal"));
    assert_eq!(internal.cloudtrail, Trail::Organization);
    assert_eq!(
        internal.kms.as_ref().unwrap().alias,
        "alias/orgvend-{alias}"
    );
    let config = internal.config.as_ref().unwrap();
    assert_eq!(config.bucket, "example-config-logs");
    assert_eq!(config.rules.len(), 7, "the default rules");
    // client accounts keep their own trail; the rest of their guard is the default
    let client = p.security.of(Some("client"));
    assert_eq!(
        client.cloudtrail,
        Trail::Account {
            name: "orgvend-trail".into(),
            bucket: "example-cloudtrail-logs".into()
        }
    );
    assert_eq!(client.kms, internal.kms);
    assert_eq!(client.config, internal.config);
    // a type may turn a part off
    let text = EXAMPLE_POLICY.replace(
        "[baseline.types.client]",
        "[baseline.types.management]\nconfig = { enabled = false }\ncloudtrail = { mode = \"off\" }\n\n[baseline.types.client]",
    );
    let p = policy_with(&text, &[]).unwrap();
    let m = p.security.of(Some("management"));
    assert!(m.config.is_none());
    assert_eq!(m.cloudtrail, Trail::Off);
    assert!(m.kms.is_some());
}

#[test]
fn guard_errors_name_their_line() {
    for (from, to, says) in [
        (
            "mode = \"organization\"",
            "mode = \"everywhere\"",
            "baseline.cloudtrail.mode",
        ),
        (
            "alias = \"alias/orgvend-{alias}\"",
            "alias = \"orgvend-{alias}\"",
            "must start with alias/",
        ),
        (
            "alias = \"alias/orgvend-{alias}\"",
            "alias = \"alias/aws/orgvend\"",
            "AWS's own",
        ),
        (
            "cloudtrail = { mode = \"account\", name = \"orgvend-trail\", bucket = \"example-cloudtrail-logs\" }",
            "cloudtrail = { mode = \"account\" }",
            "needs bucket",
        ),
        (
            "[baseline.types.client]",
            "[baseline.types.clients]",
            "no account type `clients`",
        ),
    ] {
        let text = EXAMPLE_POLICY.replace(from, to);
        assert_ne!(text, EXAMPLE_POLICY, "{from}");
        let err = policy_with(&text, &[]).unwrap_err();
        assert!(err.message.contains(says), "{from}: {err}");
        assert_eq!(
            err.at.clone().unwrap().line,
            line_of(&text, to.lines().next().unwrap()),
            "{from}: {err}"
        );
    }
    // an account trail needs the key it is encrypted with
    let text = EXAMPLE_POLICY.replace(
        "[baseline.types.client]\n",
        "[baseline.types.client]\nkms = { enabled = false }\n",
    );
    let err = policy_with(&text, &[]).unwrap_err();
    assert!(err.message.contains("turn on baseline.kms"), "{err}");
}

#[test]
fn requests_default_on_for_reporters_and_their_errors_name_their_line() {
    let p = policy_with(EXAMPLE_POLICY, &[]).unwrap();
    assert!(p.requests.enabled);
    assert_eq!(
        (p.requests.max_open_per_user, p.requests.min_access_level),
        (3, 20)
    );
    assert_eq!(
        (p.account_ref.as_deref(), p.base_ref.as_deref()),
        (None, None)
    );
    let text = format!(
        "{EXAMPLE_POLICY}\n[requests]\nmax_open_per_user = 5\nmin_access_level = \"developer\"\n"
    );
    let p = policy_with(&text, &[]).unwrap();
    assert_eq!(
        (p.requests.max_open_per_user, p.requests.min_access_level),
        (5, 30)
    );
    for (bad, needle) in [
        ("max_open_per_user = 0", "is 0"),
        ("min_access_level = \"boss\"", "boss"),
        ("colour = \"red\"", "colour"),
    ] {
        let text = format!("{EXAMPLE_POLICY}\n[requests]\n{bad}\n");
        let err = policy_with(&text, &[]).unwrap_err();
        assert!(err.message.contains(needle), "{bad}: {err}");
        assert_eq!(err.at.unwrap().line, line_of(&text, bad), "{bad}");
    }
    let text = EXAMPLE_POLICY.replace(
        "allowed_sources = []",
        "allowed_sources = []\naccount_ref = \"v1.5.0\"\nbase_ref = \"v2 2\"",
    );
    let err = policy_with(&text, &[]).unwrap_err();
    assert!(err.message.contains("modules.base_ref"), "{err}");
}

#[test]
fn the_closure_quota_is_aws_s_unless_the_policy_says_less() {
    use super::close_quota;
    assert_eq!(close_quota(10, None), 250);
    assert_eq!(close_quota(2000, None), 400);
    assert_eq!(close_quota(9000, None), 1000);
    assert_eq!(close_quota(2000, Some(3)), 3);
    assert_eq!(close_quota(10, Some(5000)), 250);
}

#[test]
fn rego_per_account_is_read_and_a_misspelled_key_is_an_error() {
    let shipped = policy_with(EXAMPLE_POLICY, &[]).unwrap();
    assert!(shipped.rego_per_account);
    let off = EXAMPLE_POLICY.replace("per_account = true", "per_account = false");
    assert!(!policy_with(&off, &[]).unwrap().rego_per_account);
    let absent = EXAMPLE_POLICY
        .replace("[rego]", "")
        .replace("per_account = true", "");
    assert!(!policy_with(&absent, &[]).unwrap().rego_per_account);
    let typo = EXAMPLE_POLICY.replace("per_account = true", "per_acount = true");
    let err = policy_with(&typo, &[]).unwrap_err();
    assert!(err.message.contains("per_acount"), "{}", err.message);
}
