use super::*;
use crate::core::plan::{Action, Step};

#[test]
fn a_new_account_gets_its_types_guard() {
    let p = example();
    let head = decls(&p, &[("main.tf", &client("acme"))]);
    let plan = plan::plan(None, &head, &p);
    let kinds: Vec<&str> = plan
        .steps(&plan.changes[0])
        .iter()
        .map(Step::kind)
        .collect();
    for k in [
        "kms_key",
        "config_recorder",
        "delivery_channel",
        "config_rule",
        "trail",
    ] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    assert!(
        !kinds.contains(&"organization_trail"),
        "clients keep their own trail"
    );
    let at = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(
        at("permissions_boundary") < at("kms_key"),
        "the boundary protects it first"
    );
    assert!(
        at("kms_key") < at("trail"),
        "the trail is encrypted with the key"
    );
    assert!(at("config_recorder") < at("delivery_channel"));
    assert!(at("trail") < at("state_bucket"));
}

#[test]
fn a_change_of_type_brings_the_new_types_guard() {
    let p = example();
    let before = decls(&p, &[("main.tf", &pair("internal-tools", "internal", ""))]);
    // the attack: create under a light type, then move to another; here internal → client,
    // whose guard adds the account's own trail
    let moved = pair("internal-tools", "internal", "").replace(
        "account_type    = \"internal\"",
        "account_type    = \"client\"",
    );
    let after = decls(&p, &[("main.tf", &moved)]);
    let plan = plan::plan(Some(&before), &after, &p);
    assert_eq!(plan.changes[0].action, Action::Update);
    let kinds: Vec<&str> = plan
        .steps(&plan.changes[0])
        .iter()
        .map(Step::kind)
        .collect();
    for k in [
        "move_account",
        "assume_role",
        "permissions_boundary",
        "kms_key",
        "trail",
    ] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
}
