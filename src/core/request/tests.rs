use super::*;
use crate::core::decl;
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use crate::core::report::{self, AssessInput};
use crate::core::rules::Severity;

fn policy() -> Policy {
    let text = include_str!("../../../policies/orgvend.toml");
    Policy::load(
        &[SourceFile::new("policies/orgvend.toml", text)],
        "policies",
    )
    .unwrap()
}

fn fixture() -> Vec<SourceFile> {
    [
        (
            "main.tf",
            include_str!("../../../fixtures/subaccounts/main.tf"),
        ),
        (
            "variables.tf",
            include_str!("../../../fixtures/subaccounts/variables.tf"),
        ),
        (
            "terraform.tfvars",
            include_str!("../../../fixtures/subaccounts/terraform.tfvars"),
        ),
        (
            "management.tf",
            include_str!("../../../fixtures/subaccounts/management.tf"),
        ),
        (
            "internal.tf",
            include_str!("../../../fixtures/subaccounts/internal.tf"),
        ),
        (
            "clients.tf",
            include_str!("../../../fixtures/subaccounts/clients.tf"),
        ),
    ]
    .into_iter()
    .map(|(p, t)| SourceFile::new(p, t))
    .collect()
}

fn client(name: &str) -> Request {
    Request {
        account_type: "client".into(),
        name: name.into(),
        owner: Some("data-team".into()),
        purpose: Some("Analytics for Hooli's data team".into()),
        tags: vec![("client".into(), name.into())],
        ..Request::default()
    }
}

fn run(files: &[SourceFile], req: &Request) -> Result<Generated, Vec<Problem>> {
    let p = policy();
    let decls = decl::read(files, &p.sources);
    generate(&p, files, &decls, req)
}

/// The files with the generated change applied.
fn applied(files: &[SourceFile], g: &Generated) -> Vec<SourceFile> {
    let mut out: Vec<SourceFile> = files.iter().filter(|f| f.path != g.path).cloned().collect();
    out.push(SourceFile::new(g.path.clone(), g.after.clone()));
    out
}

/// `orgvend check --base` of the change: every rule over the whole repository.
fn check(before: &[SourceFile], after: &[SourceFile]) -> Vec<String> {
    let p = policy();
    let base = decl::read(before, &p.sources);
    let head = decl::read(after, &p.sources);
    let r = report::assess(AssessInput::local(Some(&base), &head, &p));
    assert!(r.parse_errors.is_empty(), "{:?}", r.parse_errors);
    r.violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .map(|v| format!("{} {:?}: {}", v.rule, v.at, v.message))
        .collect()
}

#[test]
fn a_client_is_written_in_the_files_house_style_and_passes_check() {
    let files = fixture();
    let g = run(&files, &client("hooli")).unwrap();
    assert_eq!(g.path, "clients.tf");
    assert_eq!(g.name, "client-hooli");
    assert_eq!(g.email, "aws+client-hooli@example.com");
    assert_eq!(g.account_key, "subaccount_client_hooli");
    assert_eq!(g.base_key, "subaccount_client_hooli_base");
    // between Globex and Initech (the file is in name order), 0.11 style like most of it
    let expected = r#"### Client - Hooli ###
# Purpose: Analytics for Hooli's data team
module "subaccount_client_hooli" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-hooli"
  email  = "aws+client-hooli@example.com"
}

module "subaccount_client_hooli_base" {
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = "${module.subaccount_client_hooli.id}"
  root_account_id = "${var.root_account_id}"
  account_alias   = "client-hooli"
  account_type    = "client"
  tags            = "${merge(var.tags, map("owner", "data-team", "client", "hooli"))}"
}

### Client - Initech ###"#;
    assert!(g.after.contains(expected), "{}", g.after);
    assert!(
        g.after
            .contains("\"cc-3100\"))}\"\n}\n\n### Client - Hooli ###")
    );
    assert_eq!(g.tags["owner"], "data-team");
    assert_eq!(g.tags["cost-center"], "cc-1000", "var.tags' default");
    assert!(check(&files, &applied(&files, &g)).is_empty());
    assert!(g.diff().starts_with("--- a/clients.tf\n+++ b/clients.tf\n"));
    let after = applied(&files, &g);
    let p = policy();
    let read = decl::read(&after, &p.sources);
    let new = read
        .accounts
        .iter()
        .find(|a| a.name() == Some("client-hooli"))
        .unwrap();
    assert_eq!((new.at.line as usize), g.lines.0 + 2);
}

#[test]
fn hcl2_files_get_hcl2_and_the_type_prefix_is_optional() {
    let mut files = fixture();
    let modern = r#"### Internal - Data ###
module "acct_internal_data" {
  source    = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.3.0"
  name      = "internal-data"
  email     = "aws+internal-data@example.com"
  role_name = "OrganizationAccountAccessRole"
}

module "acct_internal_data_base" {
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = module.acct_internal_data.id
  root_account_id = var.root_account_id
  account_alias   = "internal-data"
  account_type    = "internal"
  tags            = merge(var.tags, { team = "data" })
}
"#;
    files.retain(|f| f.path != "internal.tf");
    files.push(SourceFile::new("internal.tf", modern));
    let req = Request {
        account_type: "internal".into(),
        name: "internal-lake".into(),
        tags: vec![
            ("team".into(), "data".into()),
            ("cost-center".into(), "cc 7/1".into()),
        ],
        access: vec![],
        ..Request::default()
    };
    let g = run(&files, &req).unwrap();
    let want = r#"
### Internal - Lake ###
module "acct_internal_lake" {
  source    = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name      = "internal-lake"
  email     = "aws+internal-lake@example.com"
  role_name = "OrganizationAccountAccessRole"
}

module "acct_internal_lake_base" {
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = module.acct_internal_lake.id
  root_account_id = var.root_account_id
  account_alias   = "internal-lake"
  account_type    = "internal"
  tags            = merge(var.tags, { team = "data", cost-center = "cc 7/1" })
}
"#;
    assert!(g.after.ends_with(want), "{}", g.after);
    assert!(check(&files, &applied(&files, &g)).is_empty());
}

#[test]
fn management_names_take_their_patterns_prefix() {
    let files = fixture();
    let req = Request {
        account_type: "management".into(),
        name: "vault".into(),
        ..Request::default()
    };
    let g = run(&files, &req).unwrap();
    assert_eq!(g.name, "mgmt-vault");
    assert_eq!(g.path, "management.tf");
    assert!(check(&files, &applied(&files, &g)).is_empty());
}

#[test]
fn what_stands_in_the_way_is_said_field_by_field() {
    let files = fixture();
    let fields = |r: Result<Generated, Vec<Problem>>| -> Vec<String> {
        r.unwrap_err().iter().map(|p| p.to_string()).collect()
    };
    let taken = fields(run(&files, &client("acme")));
    assert!(
        taken.iter().any(|p| p.starts_with(
            "name: `client-acme` is taken by `subaccount_client_acme` at clients.tf:2"
        )),
        "{taken:?}"
    );
    assert!(taken.iter().any(|p| p.starts_with("email: ")), "{taken:?}");
    let pattern = fields(run(&files, &client("Acme_2")));
    assert!(
        pattern[0].starts_with("name: `Acme_2` has `A`"),
        "{pattern:?}"
    );
    let unknown = fields(run(
        &files,
        &Request {
            account_type: "sandbox".into(),
            ..client("x")
        },
    ));
    assert!(
        unknown[0].contains("`client`, `internal`, `management`"),
        "{unknown:?}"
    );
    let mut no_client_tag = client("hooli");
    no_client_tag.tags.clear();
    let problems = run(&files, &no_client_tag).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].missing_tag(), Some("client"));
    // an added group the policy does not allow is the policy's refusal, at its rule
    let mut admin = client("hooli");
    admin.access = vec![("Admin".into(), "client-hooli-support".into())];
    let problems = fields(run(&files, &admin));
    assert!(
        problems.iter().any(|p| p.starts_with("check: access.")),
        "{problems:?}"
    );
}

#[test]
fn the_request_block_is_read_strictly() {
    let body = "Hello!\n\n```orgvend\ntype: client\nname: hooli\nowner: data-team\n# a comment\npurpose: <what it is for>\ntags: client=hooli, cost-center=cc-3100\naccess: ReadOnly=client-hooli-support\n```\n\nthanks";
    let req = form::read(body).unwrap().unwrap();
    assert_eq!(req.account_type, "client");
    assert_eq!(req.name, "hooli");
    assert_eq!(req.purpose, None, "a placeholder left as it was is empty");
    assert_eq!(req.tags.len(), 2);
    assert_eq!(
        req.access,
        vec![("ReadOnly".into(), "client-hooli-support".into())]
    );
    assert!(form::read("no block here\n```hcl\nx = 1\n```").is_none());
    let bad = form::read("~~~orgvend\ntype: client\ntype: internal\ncolour: red\njust words\n~~~")
        .unwrap()
        .unwrap_err();
    let text: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        text,
        [
            "type: given twice",
            "request: unknown field `colour`; the fields are type, name, owner, purpose, tags, access, email",
            "request: line 4 (`just words`) is not `field: value`",
            "name: is missing",
        ]
    );
    let long = format!("```orgvend\npurpose: {}\n```", "x".repeat(5000));
    assert!(form::read(&long).unwrap().is_err());
}

/// Every field, every trick: HCL that would break out of its string or add a module,
/// template sequences, Markdown and HTML. Each is refused; none reaches the text written.
#[test]
fn injection_through_any_field_is_refused() {
    let files = fixture();
    let attacks = [
        "x\" }\nmodule \"evil\" {\n  source = \"git::https://evil/x.git",
        "${file(\"/etc/passwd\")}",
        "%{ for x in var.y }x%{ endfor }",
        "evil\\\"",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "**bold** `code`",
        "a\u{0}b",
        "line\rbreak",
        "@all /merge",
    ];
    for attack in attacks {
        let one_line = attack.replace(['\n', '\r'], " ");
        let mut cases: Vec<(&str, Request)> = vec![
            (
                "name",
                Request {
                    name: attack.into(),
                    ..client("hooli")
                },
            ),
            (
                "owner",
                Request {
                    owner: Some(attack.into()),
                    ..client("hooli")
                },
            ),
            (
                "purpose",
                Request {
                    purpose: Some(attack.into()),
                    ..client("hooli")
                },
            ),
            (
                "tag value",
                Request {
                    tags: vec![("client".into(), attack.into())],
                    ..client("hooli")
                },
            ),
            (
                "tag key",
                Request {
                    tags: vec![
                        ("client".into(), "hooli".into()),
                        (attack.into(), "x".into()),
                    ],
                    ..client("hooli")
                },
            ),
            (
                "access group",
                Request {
                    access: vec![("ReadOnly".into(), attack.into())],
                    ..client("hooli")
                },
            ),
            (
                "access role",
                Request {
                    access: vec![(attack.into(), "client-hooli-x".into())],
                    ..client("hooli")
                },
            ),
            (
                "email",
                Request {
                    email: Some(attack.into()),
                    ..client("hooli")
                },
            ),
            (
                "type",
                Request {
                    account_type: attack.into(),
                    ..client("hooli")
                },
            ),
            (
                "file",
                Request {
                    file: Some(attack.into()),
                    ..client("hooli")
                },
            ),
        ];
        if attack == "@all /merge" {
            // AWS allows `@`, `/` and spaces in tags, and a purpose is prose: harmless
            // there (HCL strings; Markdown escaped where shown). The other fields refuse it.
            cases.retain(|(f, _)| !matches!(*f, "purpose" | "tag value" | "tag key" | "owner"));
        }
        for (field, req) in cases {
            match run(&files, &req) {
                Ok(g) => panic!("{field} = {one_line:?} was written:\n{}", g.after),
                Err(problems) => assert!(!problems.is_empty()),
            }
        }
        // and through the issue's block: one line per field, so only the line's text
        let body = format!(
            "```orgvend\ntype: client\nname: hooli\ntags: client=hooli\npurpose: {one_line}\n```"
        );
        // (a line break made a space is prose again)
        if let Some(Ok(req)) = form::read(&body)
            && !matches!(attack, "@all /merge" | "line\rbreak")
        {
            assert!(
                run(&files, &req).is_err(),
                "purpose {one_line:?} was written"
            );
        }
    }
    // escaping, the second line of defence
    assert_eq!(
        write::string("a\"b\\c${d}%{e}\n"),
        r#""a\"b\\c$${d}%%{e}\n""#
    );
}

#[test]
fn refs_come_from_the_policy_or_the_newest_in_use() {
    let mut files = fixture();
    let newer = include_str!("../../../fixtures/subaccounts/clients.tf").replacen(
        "?ref=v1.4.0",
        "?ref=v1.10.0",
        1,
    );
    files.retain(|f| f.path != "clients.tf");
    files.push(SourceFile::new("clients.tf", newer));
    let g = run(&files, &client("hooli")).unwrap();
    assert!(
        g.after
            .contains("subaccount.git?ref=v1.10.0\"\n  name   = \"client-hooli\"")
    );
    let mut p = policy();
    p.account_ref = Some("v2.0.0".into());
    let decls = decl::read(&files, &p.sources);
    let g = generate(&p, &files, &decls, &client("hooli")).unwrap();
    assert!(
        g.after
            .contains("subaccount.git?ref=v2.0.0\"\n  name   = \"client-hooli\"")
    );
}

#[test]
fn the_first_of_a_type_gets_a_file_of_its_own() {
    let files: Vec<SourceFile> = fixture()
        .into_iter()
        .filter(|f| f.path != "clients.tf")
        .collect();
    let g = run(&files, &client("hooli")).unwrap();
    assert_eq!(g.path, "client.tf");
    assert!(g.new_file);
    assert!(g.diff().starts_with("--- /dev/null\n+++ b/client.tf\n"));
    assert!(check(&files, &applied(&files, &g)).is_empty());
}

fn existing(id: &str, name: &str, ou: &str, tags: &[(&str, &str)]) -> import::Existing {
    import::Existing {
        id: id.into(),
        name: name.into(),
        email: format!("aws+{name}@example.com"),
        status: "ACTIVE".into(),
        ou: ou.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        pending_email: None,
    }
}

#[test]
fn import_declares_what_the_repository_does_not_and_says_what_breaks_the_policy() {
    let files = fixture();
    let p = policy();
    let mut legacy = existing("400000000004", "Legacy Data", "/Clients", &[]);
    legacy.email = "aws+legacy-data@example.com".into();
    let mut suspended = existing("222222222222", "client-gone", "/Clients", &[]);
    suspended.status = "SUSPENDED".into();
    let have = [
        existing(
            "100000000001",
            "client-acme",
            "/Clients",
            &[("client", "acme")],
        ), // declared
        existing("123456789012", "management", "/", &[]),
        existing(
            "300000000003",
            "client-hooli",
            "/Clients",
            &[("client", "hooli"), ("aws:x", "y")],
        ),
        legacy,
        existing("500000000005", "sandbox-1", "/Sandbox", &[]),
        suspended,
    ];
    let out = import::import(&p, &files, &have, "123456789012", None, None);
    let ids: Vec<&str> = out.written.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(ids, ["400000000004", "300000000003"]);
    let skipped: Vec<(&str, &str)> = out
        .skipped
        .iter()
        .map(|s| (s.0.as_str(), s.2.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(id, why)| *id == "123456789012" && why.contains("management"))
    );
    assert!(
        skipped
            .iter()
            .any(|(id, why)| *id == "500000000005" && why.contains("pass --type"))
    );
    assert!(
        skipped
            .iter()
            .any(|(id, why)| *id == "222222222222" && why.contains("SUSPENDED"))
    );
    let (path, _, after) = &out.files[0];
    assert_eq!(path, "clients.tf");
    assert!(after.contains("  adopt  = \"300000000003\"\n"), "{after}");
    assert!(!after.contains("aws:x"));
    // the legacy account breaks the policy: written, with why above it
    let legacy = &out.written[0].3;
    assert!(
        legacy.iter().any(|v| v.contains("naming pattern")),
        "{legacy:?}"
    );
    assert!(
        after.contains("# orgvend import: this account breaks the policy"),
        "{after}"
    );
    assert!(after.contains("name   = \"Legacy Data\""), "{after}");
    // the clean one passes check; the whole change is what check reports on the legacy one
    let changed: Vec<SourceFile> = files
        .iter()
        .filter(|f| f.path != "clients.tf")
        .cloned()
        .chain([SourceFile::new("clients.tf", after.clone())])
        .collect();
    let errors = check(&files, &changed);
    assert!(errors.iter().all(|e| !e.contains("hooli")), "{errors:?}");
    // and a second import finds nothing more to declare
    let again = import::import(&p, &changed, &have, "123456789012", None, None);
    assert!(again.written.is_empty(), "{:?}", again.written);
}
