use super::*;

#[test]
fn a_policy_change_needs_its_own_approvals_and_no_account_beside_it() {
    let p = example();
    let head = decls(&p, &[("main.tf", &client("acme"))]);
    let plan = plan::plan(None, &head, &p);
    let changed = ["policies/orgvend.toml".to_string()];
    let vs = check(
        &p,
        &CheckInput {
            head: &head,
            base: None,
            plan: &plan,
            mr: None,
            policy_changed: &changed,
            proposed_policy: None,
        },
    );
    has(
        &vs,
        "change.policy-and-accounts",
        "subaccount_client_acme",
        2,
    );
    // the policy alone: the policy's count (by default the most any type needs: 2)
    let nothing = plan::plan(Some(&head), &head, &p);
    let r = requirement(&p, &nothing, &changed);
    assert_eq!(r.count, 2);
    assert!(r.reason.unwrap().contains("changes the policy"));
    let vs = check(
        &p,
        &CheckInput {
            head: &head,
            base: Some(&head),
            plan: &nothing,
            mr: None,
            policy_changed: &changed,
            proposed_policy: None,
        },
    );
    assert!(vs.is_empty(), "{:#?}", summary(&vs));
}

#[test]
fn adopt_names_an_account_id_and_the_plan_adopts_instead_of_creating() {
    let p = example();
    let adopting = client("acme").replace(
        "email  = \"aws+client-acme@example.com\"",
        "email  = \"aws+client-acme@example.com\"\n  adopt  = \"123456789012\"",
    );
    assert!(adopting.contains("adopt"), "{adopting}");
    assert!(run(&p, None, &[("main.tf", &adopting)]).is_empty());
    let head = decls(&p, &[("main.tf", &adopting)]);
    let plan = plan::plan(None, &head, &p);
    let steps = plan.steps(&plan.changes[0]);
    assert_eq!(
        steps[0],
        plan::Step::AdoptAccount {
            account_id: "123456789012".into(),
            email: "aws+client-acme@example.com".into()
        }
    );
    assert!(!steps.iter().any(|s| matches!(
        s,
        plan::Step::CreateAccount { .. } | plan::Step::WaitForAccount
    )));
    let bad = adopting.replace("123456789012", "12345*");
    let vs = run(&p, None, &[("main.tf", &bad)]);
    assert!(
        vs.iter().any(|v| v.rule == "account.adopt"),
        "{:#?}",
        summary(&vs)
    );
}

#[test]
fn a_project_path_with_wildcards_is_refused() {
    let p = policy_with(
        &EXAMPLE_POLICY.replace("path      = \"{alias}\"", "path      = \"{name}\""),
        &[("clients.rego", EXAMPLE_REGO)],
    )
    .unwrap();
    assert_eq!(p.repository.path, "{name}");
    let mut loose = p.clone();
    loose.types.get_mut("client").unwrap().name_pattern = None;
    let tf = client("acme").replace("name   = \"client-acme\"", "name   = \"client-*\"");
    let vs = run(&loose, None, &[("main.tf", &tf)]);
    assert!(
        vs.iter()
            .any(|v| v.rule == "repository.path" && v.message.contains("aws-accounts/client-*")),
        "{:#?}",
        summary(&vs)
    );
    assert!(
        run(&loose, None, &[("main.tf", &client("acme"))])
            .iter()
            .all(|v| v.rule != "repository.path")
    );
}
