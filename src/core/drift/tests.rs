use super::*;
use crate::core::decl;
use crate::core::model::SourceFile;

fn policy() -> Policy {
    let text = include_str!("../../../policies/orgvend.toml");
    Policy::load(
        &[SourceFile::new("policies/orgvend.toml", text)],
        "policies",
    )
    .unwrap()
}

fn decls(p: &Policy) -> Declarations {
    let files: Vec<SourceFile> = [
        (
            "variables.tf",
            include_str!("../../../fixtures/subaccounts/variables.tf"),
        ),
        (
            "terraform.tfvars",
            include_str!("../../../fixtures/subaccounts/terraform.tfvars"),
        ),
        (
            "clients.tf",
            include_str!("../../../fixtures/subaccounts/clients.tf"),
        ),
    ]
    .into_iter()
    .map(|(p, t)| SourceFile::new(p, t))
    .collect();
    decl::read(&files, &p.sources)
}

/// The organization exactly as the fixture's clients declare them.
fn as_declared(d: &Declarations) -> Vec<Existing> {
    d.accounts
        .iter()
        .enumerate()
        .map(|(i, a)| Existing {
            id: format!("{:012}", 100 + i),
            name: a.name().unwrap().into(),
            email: a.email().unwrap().into(),
            status: "ACTIVE".into(),
            ou: "/Clients".into(),
            tags: a.owned_tags().unwrap().into_iter().collect(),
            pending_email: None,
        })
        .collect()
}

#[test]
fn an_organization_as_declared_has_no_drift() {
    let p = policy();
    let d = decls(&p);
    let mut have = as_declared(&d);
    have.push(Existing {
        id: "123456789012".into(),
        name: "root".into(),
        email: "root@example.com".into(),
        status: "ACTIVE".into(),
        ou: "/".into(),
        tags: vec![("aws:reserved".into(), "x".into())],
        pending_email: None,
    });
    assert_eq!(drift(&p, &d, &have, "123456789012"), []);
    assert!(text(&[]).starts_with("No drift"));
}

#[test]
fn each_difference_is_one_item_with_both_sides_and_a_fix() {
    let p = policy();
    let d = decls(&p);
    let mut have = as_declared(&d);
    // acme: moved by hand, a tag edited; globex: renamed; initech: suspended;
    // umbrella: gone; one account nobody declared
    have[0].ou = "/Sandbox".into();
    have[0].tags.retain(|(k, _)| k != "client");
    have[0].tags.push(("client".into(), "acme-corp".into()));
    have[1].name = "Globex Corporation".into();
    have[2].status = "SUSPENDED".into();
    have.remove(3);
    have.push(Existing {
        id: "999999999999".into(),
        name: "shadow-it".into(),
        email: "shadow@example.com".into(),
        status: "ACTIVE".into(),
        ou: "/".into(),
        tags: vec![],
        pending_email: None,
    });
    let items = drift(&p, &d, &have, "123456789012");
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.account.as_str(), i.kind.name()))
        .collect();
    assert_eq!(
        got,
        [
            ("client-acme", "ou"),
            ("client-acme", "tags"),
            ("client-globex", "name"),
            ("client-initech", "status"),
            ("client-umbrella", "missing"),
            ("shadow-it", "undeclared"),
        ]
    );
    let ou = &items[0];
    assert_eq!(
        (ou.declared.as_str(), ou.existing.as_str()),
        ("/Clients", "/Sandbox")
    );
    assert_eq!(ou.at.as_deref(), Some("clients.tf:2"));
    assert_eq!(ou.account_id.as_deref(), Some("000000000100"));
    assert!(
        items[1].declared.contains("client=acme") && items[1].existing.contains("client=acme-corp")
    );
    assert!(items[4].fix.contains("orgvend apply --mr"));
    assert!(items.iter().all(|i| !i.fix.is_empty()));
    let md = markdown(&items);
    assert!(
        md.contains("| ou | `client-acme` `000000000100` | `/Clients` | `/Sandbox` |"),
        "{md}"
    );
    assert!(text(&items).starts_with("6 difference(s):"));
}

#[test]
fn an_adopted_account_is_matched_by_its_id() {
    let p = policy();
    let d = decls(&p);
    let mut have = as_declared(&d);
    // the email differs, but the declaration adopts the account by id
    let files = vec![
        SourceFile::new(
            "variables.tf",
            include_str!("../../../fixtures/subaccounts/variables.tf"),
        ),
        SourceFile::new(
            "a.tf",
            include_str!("../../../fixtures/subaccounts/clients.tf").replacen(
                "email  = \"aws+client-acme@example.com\"",
                "email  = \"aws+client-acme@example.com\"\n  adopt  = \"000000000100\"",
                1,
            ),
        ),
    ];
    let d2 = decl::read(&files, &p.sources);
    have[0].email = "old-acme@example.com".into();
    let items = drift(&p, &d2, &have, "");
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.name()).collect();
    assert!(kinds.contains(&"email"), "{items:?}");
    assert!(
        !kinds.contains(&"missing") && !kinds.contains(&"undeclared"),
        "{items:?}"
    );
}

/// Names and OU names come from AWS, where a member account's admin can set them: in the
/// drift issue they stay inside their table cells and code spans.
#[test]
fn what_aws_says_stays_in_its_cell() {
    let item = Item {
        kind: Kind::Undeclared,
        account: "x|@all ![](https://evil/p) [fix](https://phish)".into(),
        account_id: Some("999999999999".into()),
        at: None,
        declared: "nothing".into(),
        existing: "in /a|b".into(),
        fix: "declare it".into(),
    };
    let md = markdown(&[item]);
    let row = md.lines().last().unwrap();
    // five cells: the `|`s of the values are escaped
    assert_eq!(row.matches(" | ").count() + 2, 6, "{row}");
    assert!(
        row.contains("`x\\|@all ![](https://evil/p) [fix](https://phish)`"),
        "{row}"
    );
}

#[test]
fn only_existing_active_accounts_are_read_inside_and_repaired() {
    let p = policy();
    let d = decls(&p);
    let mut have = as_declared(&d);
    have[1].status = "SUSPENDED".into();
    let gone = have.remove(2);
    let present = present(&d, &have);
    let ids: Vec<&str> = present.iter().map(|(_, id)| id.as_str()).collect();
    assert!(
        !ids.contains(&have[1].id.as_str()),
        "suspended: {present:?}"
    );
    assert!(!ids.contains(&gone.id.as_str()), "missing: {present:?}");
    assert_eq!(present.len(), d.accounts.len() - 2);
    // the repair plan: each present account adopted by its id, its whole baseline
    let plan = crate::core::plan::repair(&p, &d, &present);
    assert_eq!(plan.changes.len(), present.len());
    for (c, (_, id)) in plan.changes.iter().zip(&present) {
        assert_eq!(
            c.target.as_ref().unwrap().adopt.as_deref(),
            Some(id.as_str())
        );
        let steps = plan.steps(c);
        assert!(
            matches!(&steps[0], crate::core::plan::Step::AdoptAccount { account_id, .. } if account_id == id),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| matches!(s, crate::core::plan::Step::CreateAccount { .. })),
            "a repair never creates: {steps:?}"
        );
    }
}

#[test]
fn what_a_repair_may_put_back() {
    for k in Kind::ALL {
        let expected = !matches!(
            k,
            Kind::Missing
                | Kind::Status
                | Kind::Unapplied
                | Kind::Email
                | Kind::Undeclared
                | Kind::Unreadable
        );
        assert_eq!(k.repairable(), expected, "{k:?}");
    }
    // every kind has its own metric label
    let names: std::collections::BTreeSet<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), Kind::ALL.len());
}

#[test]
fn an_approval_covers_the_declared_values_not_their_writing() {
    let p = policy();
    let text = include_str!("../../../fixtures/subaccounts/clients.tf");
    let read = |t: &str| {
        let files = vec![
            SourceFile::new(
                "variables.tf",
                include_str!("../../../fixtures/subaccounts/variables.tf"),
            ),
            SourceFile::new(
                "terraform.tfvars",
                include_str!("../../../fixtures/subaccounts/terraform.tfvars"),
            ),
            SourceFile::new("clients.tf", t),
        ];
        decl::read(&files, &p.sources)
    };
    let before = read(text);
    let digest = |d: &Declarations| {
        d.accounts
            .iter()
            .map(|a| a.declared_digest())
            .collect::<Vec<_>>()
    };
    // moved down a line and the email in capitals: the same approval
    let moved = read(&format!(
        "\n{}",
        text.replacen("aws+client-acme@", "AWS+client-acme@", 1)
    ));
    assert_eq!(digest(&before), digest(&moved));
    // a tag more: another declaration
    let tagged = read(&text.replacen(
        "map(\"client\", \"acme\")",
        "map(\"client\", \"acme\", \"billing\", \"x\")",
        1,
    ));
    assert_ne!(digest(&before)[0], digest(&tagged)[0]);
    assert_eq!(digest(&before)[1..], digest(&tagged)[1..]);
}
