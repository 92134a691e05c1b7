use super::*;

/// The built-in rules shared between the cores find what they find on one thread, each
/// violation once: on a repository large enough to be judged in parallel, with something
/// for several rules to find.
#[test]
fn the_built_in_rules_find_the_same_on_every_core_as_on_one() {
    let p = example();
    let mut files: Vec<(String, String)> = (0..1_200)
        .map(|i| {
            (
                format!("accounts-{:02}.tf", i / 100),
                client(&format!("c{i:05}")),
            )
        })
        .collect();
    // a name used twice (names, emails, aliases, module keys), a name the policy refuses,
    // an account without its base module
    files.push(("dup.tf".into(), client("c00007")));
    files.push(("bad.tf".into(), client("Bad_Name")));
    files.push((
        "lone.tf".into(),
        "module \"subaccount_lone\" {\n  source = \"git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0\"\n  name   = \"client-lone\"\n  email  = \"aws+client-lone@example.com\"\n}\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let head = decls(&p, &refs);
    assert!(head.parse_errors.is_empty(), "{:?}", head.parse_errors);
    assert!(
        head.accounts.len() >= 1_000,
        "large enough to be judged in parallel"
    );
    let plan = plan::plan(None, &head, &p);
    let input = CheckInput {
        head: &head,
        base: None,
        plan: &plan,
        mr: None,
        policy_changed: &[],
        proposed_policy: None,
    };
    let mut parallel = builtin_on(&p, &input, true);
    let mut serial = builtin_on(&p, &input, false);
    let count = parallel.len();
    settle(&mut parallel);
    settle(&mut serial);
    assert_eq!(parallel.len(), count, "no violation found twice");
    assert_eq!(parallel, serial);
    let rules: std::collections::BTreeSet<&str> =
        parallel.iter().map(|v| v.rule.as_str()).collect();
    for rule in [
        "unique.module-key",
        "unique.name",
        "unique.email",
        "pairing.no-base",
    ] {
        assert!(rules.contains(rule), "{rule} in {rules:?}");
    }
    assert!(rules.len() >= 5, "{rules:?}");
}
