use super::*;

const ACCOUNT_SRC: &str = "git::https://gitlab.example.com/infra/modules/subaccount.git";
const BASE_SRC: &str = "git::https://gitlab.example.com/infra/modules/subaccount-base.git";

fn sources() -> ModuleSources {
    ModuleSources {
        account: vec![ACCOUNT_SRC.into()],
        base: vec![BASE_SRC.into()],
    }
}

fn read_files(files: &[(&str, &str)]) -> Declarations {
    let files: Vec<SourceFile> = files.iter().map(|(p, t)| SourceFile::new(*p, *t)).collect();
    read(&files, &sources())
}

fn str_of(f: &Option<Field>) -> &str {
    f.as_ref().and_then(Field::as_str).unwrap_or("<none>")
}

const OLD_STYLE: &str = r#"
### Client - Example ###
module "subaccount_client_example" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-example"
  email  = "aws+client-example@example.com"
}

module "subaccount_client_example_base" {
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = "${ module.subaccount_client_example.id }"
  root_account_id = "${var.root_account_id}"
  account_alias   = "client-example"
  account_type    = "client"
  tags            = "${var.tags}"
}
"#;

const VARIABLES: &str = r#"
variable "root_account_id" {
  default = "123456789012"
}
variable "tags" {
  type = map(string)
  default = {
    owner = "platform"
  }
}
"#;

#[test]
fn reads_terraform_011_interpolation() {
    let d = read_files(&[("main.tf", OLD_STYLE), ("variables.tf", VARIABLES)]);
    assert!(d.parse_errors.is_empty(), "{:?}", d.parse_errors);
    assert!(d.pairing.is_empty(), "{:?}", d.pairing);
    assert_eq!(d.accounts.len(), 1);
    let a = &d.accounts[0];
    assert_eq!(a.key, "subaccount_client_example");
    assert_eq!(
        a.base_key.as_deref(),
        Some("subaccount_client_example_base")
    );
    assert_eq!(str_of(&a.name), "client-example");
    assert_eq!(str_of(&a.alias), "client-example");
    assert_eq!(str_of(&a.account_type), "client");
    assert_eq!(a.owned_tags().unwrap()["owner"], "platform");
    // every value keeps its file:line
    assert_eq!(a.at.to_string(), "main.tf:3");
    assert_eq!(a.email.as_ref().unwrap().at.to_string(), "main.tf:6");
    assert_eq!(
        a.account_type.as_ref().unwrap().at.to_string(),
        "main.tf:14"
    );
    let base = d.module(a.base.unwrap());
    assert_eq!(
        base.source.as_ref().unwrap().reference.as_deref(),
        Some("v2.1.0")
    );
    assert_eq!(
        base.attr("root_account_id").unwrap().value,
        Value::String("123456789012".into())
    );
}

#[test]
fn reads_hcl2_bare_references_and_merge() {
    let tf = r#"
module "acct" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "internal-ci"
  email  = "aws+internal-ci@example.com"
  tags   = { team = "ci" }
}
module "acct_base" {
  source        = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id    = module.acct.id
  account_alias = local.alias
  account_type  = "internal"
  tags          = merge(var.tags, { cost_center = "cc-42" }, local.extra)
}
locals {
  alias = "internal-ci"
  extra = { env = "prod" }
}
"#;
    let d = read_files(&[("accounts/ci.tf", tf), ("accounts/variables.tf", VARIABLES)]);
    assert!(d.pairing.is_empty(), "{:?}", d.pairing);
    let a = &d.accounts[0];
    assert_eq!(str_of(&a.alias), "internal-ci");
    let tags = a.owned_tags().unwrap();
    assert_eq!(tags["team"], "ci");
    assert_eq!(tags["owner"], "platform");
    assert_eq!(tags["cost_center"], "cc-42");
    assert_eq!(tags["env"], "prod");
}

#[test]
fn tfvars_override_defaults_in_terraform_order() {
    let tf = r#"
module "a" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git"
  name   = var.name
  email  = "${var.prefix}+${var.name}@example.com"
}
variable "name" { default = "from-default" }
variable "prefix" {}
"#;
    let d = read_files(&[
        ("main.tf", tf),
        ("z.auto.tfvars", "name = \"from-auto\"\n"),
        (
            "terraform.tfvars",
            "name = \"from-tfvars\"\nprefix = \"aws\"\n",
        ),
    ]);
    let a = &d.accounts[0];
    assert_eq!(str_of(&a.name), "from-auto");
    assert_eq!(str_of(&a.email), "aws+from-auto@example.com");

    let d = read_files(&[
        ("main.tf", tf),
        ("terraform.tfvars.json", r#"{"prefix": "root"}"#),
    ]);
    assert_eq!(str_of(&d.accounts[0].name), "from-default");
    assert_eq!(
        str_of(&d.accounts[0].email),
        "root+from-default@example.com"
    );
}

#[test]
fn unresolvable_values_say_why() {
    let tf = r#"
module "a" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git"
  name   = var.missing
  email  = data.external.email.result
}
"#;
    let d = read_files(&[("main.tf", tf)]);
    let a = &d.accounts[0];
    match &a.name.as_ref().unwrap().value {
        Value::Unknown(why) => assert!(why.contains("`var.missing` is not declared"), "{why}"),
        other => panic!("{other:?}"),
    }
    match &a.email.as_ref().unwrap().value {
        Value::Unknown(why) => assert!(why.contains("data.external.email.result"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn variables_are_scoped_to_their_directory() {
    let tf = r#"
module "a" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git"
  name   = var.name
}
"#;
    let d = read_files(&[
        ("main.tf", tf),
        ("variables.tf", "variable \"name\" { default = \"root\" }"),
        (
            "modules/x/variables.tf",
            "variable \"name\" { default = \"sub\" }",
        ),
        (".terraform/modules/a/main.tf", "this is { not parsed"),
    ]);
    assert!(d.parse_errors.is_empty());
    assert_eq!(str_of(&d.accounts[0].name), "root");
}

#[test]
fn pairing_problems_are_reported() {
    let tf = r#"
module "lonely" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git"
  name   = "lonely"
}
module "paired" {
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git"
  name   = "paired"
}
module "paired_base" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git"
  account_id = module.paired.id
}
module "paired_base_again" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git"
  account_id = "${module.paired.id}"
}
module "dangling_base" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git"
  account_id = module.nope.id
}
module "literal_base" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git"
  account_id = "123456789012"
}
module "base_of_base" {
  source     = "git::https://gitlab.example.com/infra/modules/subaccount-base.git"
  account_id = module.paired_base.id
}
"#;
    let d = read_files(&[("main.tf", tf)]);
    let kinds: Vec<String> = d
        .pairing
        .iter()
        .map(|p| match p {
            PairingIssue::NoBase { account } => format!("no-base {}", d.module(*account).key),
            PairingIssue::NoAccountRef { base } => format!("no-ref {}", d.module(*base).key),
            PairingIssue::MissingTarget { base, target } => {
                format!("missing {} -> {target}", d.module(*base).key)
            }
            PairingIssue::NotAnAccount { base, target } => {
                format!(
                    "not-account {} -> {}",
                    d.module(*base).key,
                    d.module(*target).key
                )
            }
            PairingIssue::ExtraBase { base, first, .. } => {
                format!(
                    "extra {} first {}",
                    d.module(*base).key,
                    d.module(*first).key
                )
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "extra paired_base_again first paired_base",
            "missing dangling_base -> module.nope.id",
            "no-ref literal_base",
            "not-account base_of_base -> paired_base",
            "no-base lonely",
        ]
    );
}

#[test]
fn syntax_errors_carry_file_line_and_column() {
    let d = read_files(&[
        ("good.tf", OLD_STYLE),
        ("bad.tf", "module \"x\" {\n  source = \"a\"\n  name = \n}\n"),
    ]);
    assert_eq!(d.parse_errors.len(), 1);
    let e = &d.parse_errors[0];
    assert_eq!(&*e.at.file, "bad.tf");
    assert_eq!(e.at.line, 3, "{e}");
    assert!(e.at.col > 1, "{e}");
    // the good file is still read
    assert_eq!(d.accounts.len(), 1);
}

#[test]
fn sources_match_without_ref_and_registry_versions_count_as_refs() {
    assert_eq!(
        split_source("git::https://h/x.git?ref=v1.2.3&depth=1"),
        (
            "git::https://h/x.git".to_string(),
            Some("v1.2.3".to_string())
        )
    );
    assert_eq!(
        split_source("git::https://h/x.git?ref="),
        ("git::https://h/x.git".into(), None)
    );
    assert!(same_address(
        "git::https://h/x.git/",
        "git::https://h/x.git"
    ));
    let tf = r#"
module "a" {
  source  = "git::https://gitlab.example.com/infra/modules/subaccount.git/"
  version = "1.0.0"
}
"#;
    let d = read_files(&[("main.tf", tf)]);
    assert_eq!(d.modules[0].kind, ModuleKind::Account);
    assert_eq!(
        d.modules[0].source.as_ref().unwrap().reference.as_deref(),
        Some("1.0.0")
    );
}

#[test]
fn module_text_is_kept_for_diffs() {
    let d = read_files(&[("main.tf", OLD_STYLE), ("variables.tf", VARIABLES)]);
    let m = &d.modules[0];
    assert!(
        m.text.starts_with("module \"subaccount_client_example\" {"),
        "{}",
        m.text
    );
    assert!(m.text.trim_end().ends_with('}'));
}

#[test]
fn module_text_is_the_block_after_a_byte_order_mark_on_either_reader() {
    let block = "module \"a\" {\n  source = \"git::https://gitlab.example.com/infra/modules/subaccount.git\"\n  name   = \"é-team\"\n}";
    // the second file has a heredoc, which the fast path leaves to hcl-edit
    let heredoc = "locals {\n  note = <<EOT\nx\nEOT\n}\n";
    let one = format!("\u{feff}{block}\n");
    let two = format!("\u{feff}{heredoc}\n{}\n", block.replace("\"a\"", "\"b\""));
    let d = read_files(&[("one.tf", &one), ("two.tf", &two)]);
    assert_eq!(d.parse_errors, vec![]);
    assert_eq!(&*d.modules[0].text, block);
    assert_eq!(&*d.modules[1].text, block.replace("\"a\"", "\"b\""));
    assert_eq!(d.modules[0].at.line, 1);
}

#[test]
fn a_block_of_many_attributes_is_read_whole_and_a_name_written_twice_is_refused() {
    // 200 attributes: past the first few, the names kept are looked up in a set
    let body: String = (0..200).map(|i| format!("  a{i} = \"{i}\"\n")).collect();
    let tf = format!("module \"m\" {{\n  source = \"./m\"\n{body}}}\n");
    let d = read_files(&[("main.tf", &tf)]);
    assert_eq!(d.parse_errors, vec![]);
    let m = &d.modules[0];
    let names: Vec<&str> = m.attrs.iter().map(|(k, _)| k.as_str()).collect();
    let written: Vec<String> = (0..200).map(|i| format!("a{i}")).collect();
    assert_eq!(names, written, "every attribute, in the order written");
    assert_eq!(m.attr("a150").and_then(Field::as_str), Some("150"));

    // `name` given twice, early or late in the block: neither value is read as the name
    for at in [1, 150] {
        let body: String = (0..200)
            .map(|i| match i {
                0 => "  name = \"client-approved\"\n".to_string(),
                i if i == at => "  name = \"client-other\"\n".to_string(),
                i => format!("  a{i} = \"{i}\"\n"),
            })
            .collect();
        let tf = format!("module \"m\" {{\n  source = \"./m\"\n{body}}}\n");
        let d = read_files(&[("main.tf", &tf)]);
        assert_eq!(d.parse_errors.len(), 1, "{:?}", d.parse_errors);
        assert!(d.modules.is_empty());
    }
}

#[test]
fn a_map_written_out_of_key_order_reads_as_the_same_map() {
    // a local map of accounts, its entries from last to first, and tags merged out of order
    // (the last value of a key wins)
    let n = 3_000;
    let entries: String = (0..n)
        .rev()
        .map(|i| format!("    c{i:05} = {{ name = \"client-c{i:05}\" }}\n"))
        .collect();
    let tf = format!(
        r#"locals {{
  clients = {{
{entries}  }}
}}
module "subaccount_client_c00007" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = local.clients.c00007.name
  email  = "aws+client-c00007@example.com"
  tags   = merge({{ z = "1", b = "1" }}, {{ y = "2", b = "2" }}, map("a", "3", "z", "3"))
}}
"#
    );
    let d = read_files(&[("main.tf", &tf)]);
    assert_eq!(d.parse_errors, vec![]);
    let m = &d.modules[0];
    assert_eq!(
        m.attr("name").and_then(Field::as_str),
        Some("client-c00007")
    );
    let tags = match &m.attr("tags").expect("tags").value {
        Value::Map(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        other => panic!("tags read as {other:?}"),
    };
    assert_eq!(tags, ["a=3", "b=2", "y=2", "z=3"]);
}

#[test]
fn values_doubled_past_the_budget_are_unknown_and_block_the_account() {
    // forty locals, each two of the one before: 2^40 values once copied out. The copies
    // stop at the directory's budget; what is copied after is unknown, and says why
    let mut locals = String::from("locals {\n  l00 = [\"x\"]\n  n = \"client-a\"\n");
    for k in 1..=40 {
        locals.push_str(&format!(
            "  l{k:02} = [local.l{:02}, local.l{:02}]\n",
            k - 1,
            k - 1
        ));
    }
    locals.push_str("}\n");
    let main = format!(
        "module \"subaccount_client_a\" {{\n  source = \"{ACCOUNT_SRC}?ref=v1.4.0\"\n  name   = local.n\n  email  = \"aws+client-a@example.com\"\n  big    = local.l40\n}}\n"
    );
    let d = read_files(&[("locals.tf", &locals), ("main.tf", &main)]);
    assert_eq!(d.parse_errors, vec![]);
    let m = &d.modules[0];
    for attr in ["name", "big"] {
        match &m.attr(attr).expect("read").value {
            Value::Unknown(why) => assert!(why.contains("go past"), "{attr}: {why}"),
            other => panic!("`{attr}` read as {}", other.kind()),
        }
    }
    assert_eq!(str_of(&d.accounts[0].email), "aws+client-a@example.com");

    // the same account without the doubling: its name is read
    let d = read_files(&[
        ("locals.tf", "locals {\n  n = \"client-a\"\n}\n"),
        ("main.tf", &main.replace("  big    = local.l40\n", "")),
    ]);
    assert_eq!(str_of(&d.accounts[0].name), "client-a");
}

#[test]
fn map_keys_copied_from_a_long_value_take_from_the_budget() {
    // thirty keys, each an expression naming the same settled 100 KB string: held together
    // until the map was sorted, uncounted, they let a small file ask for gigabytes
    let long = "x".repeat(100_000);
    let keys: String = (0..30)
        .map(|i| format!("    (local.m[\"{}s\"]) = {i}\n", "${\"\"}".repeat(i)))
        .collect();
    let locals = format!("locals {{\n  m = {{ s = \"{long}\" }}\n}}\n");
    let main = format!("module \"m\" {{\n  source = \"./m\"\n  keys   = {{\n{keys}  }}\n}}\n");
    let d = read_files(&[("locals.tf", &locals), ("main.tf", &main)]);
    assert_eq!(d.parse_errors, vec![]);
    match &d.modules[0].attr("keys").expect("read").value {
        Value::Unknown(why) => assert!(why.contains("go past"), "{why}"),
        other => panic!("the keys read as {}", other.kind()),
    }
}

#[test]
fn each_directory_without_values_has_a_budget_of_its_own() {
    // four files in `big/` spend more than a budget's floor on literal arguments; the
    // account in `z/` (neither directory declares variables or locals), read after at least
    // three of them, still reads its tags
    let half = "y".repeat(200_000);
    let big = format!(
        "module \"o\" {{\n  source = \"./o\"\n  x      = merge({{ k = \"{half}\" }}, {{ k = \"{half}\" }})\n}}\n"
    );
    let acct = format!(
        "module \"subaccount_client_a\" {{\n  source = \"{ACCOUNT_SRC}?ref=v1.4.0\"\n  name   = \"client-a\"\n  email  = \"aws+client-a@example.com\"\n  tags   = merge({{ owner = \"platform\" }}, {{ client = \"a\" }})\n}}\n"
    );
    let d = read_files(&[
        ("big/0.tf", &big),
        ("big/1.tf", &big),
        ("big/2.tf", &big),
        ("big/3.tf", &big),
        ("z/main.tf", &acct),
    ]);
    assert_eq!(d.parse_errors, vec![]);
    let tags = &d.accounts[0].tags.as_ref().expect("tags").value;
    assert!(matches!(tags, Value::Map(m) if m.len() == 2), "{tags:?}");
}
