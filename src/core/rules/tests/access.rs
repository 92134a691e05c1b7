use super::*;
use crate::core::plan::{Action, Grant, Step};
use crate::core::policy::Provider;

fn with_provider(provider: &str) -> Policy {
    policy_with(
        &EXAMPLE_POLICY.replace("provider = \"none\"", &format!("provider = \"{provider}\"")),
        &[("clients.rego", EXAMPLE_REGO)],
    )
    .unwrap()
}

/// `client(slug)` with `access = …` in its base module; returns the text and that line.
fn client_with_access(slug: &str, access: &str) -> (String, u32) {
    let text = client(slug).replace(
        "  account_type    = \"client\"\n",
        &format!("  account_type    = \"client\"\n  access          = {access}\n"),
    );
    let line = text.lines().position(|l| l.contains("access ")).unwrap() as u32 + 1;
    (text, line)
}

#[test]
fn an_mr_granting_admin_to_a_client_group_is_a_violation_at_its_line() {
    let p = with_provider("identity-center");
    let (text, line) = client_with_access("acme", r#"{ Admin = ["client-acme-engineers"] }"#);
    let vs = run(&p, None, &[("main.tf", &text)]);
    has(&vs, "access.admin", "subaccount_client_acme", line);
    // the admin group itself may be named (it holds Admin anyway)
    let (text, _) = client_with_access("acme", r#"{ Admin = ["aws-infrastructure"] }"#);
    assert!(run(&p, None, &[("main.tf", &text)]).is_empty());
}

#[test]
fn a_declaration_adds_groups_only_within_what_its_type_allows() {
    let p = with_provider("okta");
    for (access, rule) in [
        (r#"{ ReadOnly = ["client-acme-support"] }"#, None),
        (r#"{ ViewOnly = ["client-acme-a", "client-acme-b"] }"#, None),
        // another client's group, a role the type does not open, a wildcard, a made-up role
        (
            r#"{ ReadOnly = ["client-globex-support"] }"#,
            Some("access.not_allowed"),
        ),
        (
            r#"{ PowerUser = ["client-acme-contractors"] }"#,
            Some("access.not_allowed"),
        ),
        (r#"{ ReadOnly = ["client-acme-*"] }"#, Some("access.group")),
        (r#"{ Root = ["client-acme-x"] }"#, Some("access.role")),
        (
            r#"{ ReadOnly = "client-acme-support" }"#,
            Some("access.value"),
        ),
        // a name that makes the pattern match more than it should: `.` is escaped
        (
            r#"{ ReadOnly = ["client-acmeX-support"] }"#,
            Some("access.not_allowed"),
        ),
    ] {
        let (text, line) = client_with_access("acme", access);
        let vs = run(&p, None, &[("main.tf", &text)]);
        match rule {
            None => assert!(vs.is_empty(), "{access}: {:#?}", summary(&vs)),
            Some(rule) => has(&vs, rule, "subaccount_client_acme", line),
        }
    }
    // with no provider, `access` grants nothing: saying otherwise is a violation
    let p = example();
    let (text, line) = client_with_access("acme", r#"{ ReadOnly = ["client-acme-support"] }"#);
    has(
        &run(&p, None, &[("main.tf", &text)]),
        "access.provider",
        "subaccount_client_acme",
        line,
    );
}

#[test]
fn the_plan_lists_each_grant_and_its_steps() {
    let p = with_provider("identity-center");
    let (text, _) = client_with_access("acme", r#"{ ReadOnly = ["client-acme-support"] }"#);
    let head = decls(&p, &[("main.tf", &text)]);
    let plan = plan::plan(None, &head, &p);
    let t = plan.changes[0].target.as_ref().unwrap();
    let grant = |role: &str, group: &str, declared| Grant {
        role: role.into(),
        group: group.into(),
        declared,
    };
    assert_eq!(
        t.grants,
        [
            grant("Admin", "aws-infrastructure", false),
            grant("PowerUser", "client-acme-engineers", false),
            grant("ReadOnly", "auditors", false),
            grant("ReadOnly", "client-acme-support", true),
        ]
    );
    let steps = plan.steps(&plan.changes[0]);
    let entitlements = steps
        .iter()
        .filter(|s| matches!(s, Step::Entitlement { .. }))
        .count();
    assert_eq!(entitlements, p.baseline.roles.len());
    let grants: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s, Step::Grant { .. }))
        .map(Step::key)
        .collect();
    assert_eq!(
        grants,
        [
            "grant:Admin:aws-infrastructure",
            "grant:PowerUser:client-acme-engineers",
            "grant:ReadOnly:auditors",
            "grant:ReadOnly:client-acme-support"
        ]
    );

    // taking the added group away revokes it, and only it
    let before = decls(&p, &[("main.tf", &text)]);
    let after = decls(&p, &[("main.tf", &client("acme"))]);
    let plan = plan::plan(Some(&before), &after, &p);
    assert_eq!(plan.changes[0].action, Action::Update);
    let keys: Vec<String> = plan.steps(&plan.changes[0]).iter().map(Step::key).collect();
    assert_eq!(keys, ["revoke:ReadOnly:client-acme-support"]);

    // closing takes every grant back first (Okta: the account's groups, by name)
    let p = with_provider("okta");
    let p = Policy {
        allow_close: true,
        ..p
    };
    let plan = plan::plan(Some(&after), &decls(&p, &[]), &p);
    let steps = plan.steps(&plan.changes[0]);
    // the closure counted against the quota first, before anything of the close is done
    assert_eq!(steps[0].kind(), "reserve_closure");
    match &steps[1] {
        Step::RevokeAccess { provider, groups } => {
            assert_eq!(*provider, Provider::Okta);
            assert!(
                groups.contains(&"aws#client-acme#Admin#{account_id}".to_string()),
                "{groups:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let kinds: Vec<&str> = steps[2..].iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        ["archive_project", "close_account", "wait_for_closure"]
    );

    // without a provider, no access steps at all
    let p = example();
    let head = decls(&p, &[("main.tf", &client("acme"))]);
    let plan = plan::plan(None, &head, &p);
    assert!(plan.changes[0].target.as_ref().unwrap().grants.is_empty());
    assert!(
        plan.steps(&plan.changes[0])
            .iter()
            .all(|s| s.area() != crate::core::plan::Area::Access)
    );
}

#[test]
fn a_grant_filled_from_an_odd_name_is_a_violation() {
    let p = with_provider("identity-center");
    // a type without a name pattern, so the name can carry a quote into `{name}-engineers`
    let p = Policy {
        types: p
            .types
            .into_iter()
            .map(|(k, mut t)| {
                t.name_pattern = None;
                (k, t)
            })
            .collect(),
        ..p
    };
    let text = client("acme").replace("name   = \"client-acme\"", "name   = \"client-acme*\"");
    let vs = run(&p, None, &[("main.tf", &text)]);
    assert!(
        vs.iter().any(|v| v.rule == "access.group"),
        "{:#?}",
        summary(&vs)
    );
}

#[test]
fn a_full_administrator_is_an_admin_role_whatever_it_is_called() {
    let text = EXAMPLE_POLICY
        .replace("provider = \"none\"", "provider = \"okta\"")
        .replace("name = \"Admin\"", "name = \"Root\"")
        .replace("admin_roles = [\"Admin\"]\n", "")
        .replace("Admin = [\"aws-infrastructure\"], ", "");
    let p = policy_with(&text, &[]).unwrap();
    assert!(p.access.is_admin_role("Root"), "{:?}", p.access.admin_roles);
    assert!(!p.access.is_admin_role("BoundedAdmin"));
    let bad = text.replace(
        "PowerUser = [\"{name}-engineers\"], ReadOnly = [\"auditors\"] }\n# Groups",
        "PowerUser = [\"{name}-engineers\"], Root = [\"{name}-engineers\"] }\n# Groups",
    );
    assert_ne!(bad, text);
    let err = policy_with(&bad, &[]).unwrap_err();
    assert!(err.message.contains("only the admin group"), "{err}");
}
