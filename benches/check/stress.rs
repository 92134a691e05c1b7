//! Shapes a Developer could write into one MR to make the reader slow or large: each many of
//! one thing, checked by the binary as a user runs it. Before the ninth round some took
//! seconds to minutes, or the process's memory (BENCHMARKS.md); the reader's cost is now
//! linear in each, and what a directory's evaluation copies has a budget.

use std::fmt::Write as _;
use std::path::Path;

const ACCOUNT: &str = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0";

/// One shape: a name for the table, and its files.
pub struct Shape {
    pub name: &'static str,
    pub files: fn() -> Vec<(String, String)>,
}

/// A client account, so that every shape is read as a subaccounts repository is.
fn account() -> (String, String) {
    (
        "account.tf".into(),
        format!(
            "module \"subaccount_client_a\" {{\n  source = \"{ACCOUNT}\"\n  name   = \"client-a\"\n  email  = \"aws+client-a@example.com\"\n}}\n"
        ),
    )
}

fn with_account(mut files: Vec<(String, String)>) -> Vec<(String, String)> {
    files.push(account());
    files
}

/// 100,000 in an order that is not the keys' (a permutation: 7,919 is prime to 100,000).
const N: usize = 100_000;
fn shuffled(i: usize) -> usize {
    i * 7_919 % N
}

pub const SHAPES: [Shape; 9] = [
    Shape {
        name: "a local map of 100,000 entries, out of key order",
        files: || {
            let body: String = (0..N)
                .map(|i| format!("    k{:06} = \"v\"\n", shuffled(i)))
                .collect();
            with_account(vec![(
                "locals.tf".into(),
                format!("locals {{\n  m = {{\n{body}  }}\n}}\n"),
            )])
        },
    },
    Shape {
        name: "a module of 100,000 attributes",
        files: || {
            let body: String = (0..N).map(|i| format!("  a{i:06} = \"v\"\n")).collect();
            with_account(vec![(
                "main.tf".into(),
                format!("module \"m\" {{\n  source = \"./m\"\n{body}}}\n"),
            )])
        },
    },
    Shape {
        name: "merge() of 100,000 one-entry maps, keys descending",
        files: || {
            let args: Vec<String> = (0..N)
                .rev()
                .map(|i| format!("    {{ k{i:06} = \"v\" }}"))
                .collect();
            with_account(vec![(
                "locals.tf".into(),
                format!("locals {{\n  t = merge(\n{}\n  )\n}}\n", args.join(",\n")),
            )])
        },
    },
    Shape {
        name: "an object of 100,000 keys that are expressions",
        files: || {
            let body: String = (0..N).map(|i| format!("    (var.k{i}) = {i}\n")).collect();
            with_account(vec![(
                "locals.tf".into(),
                format!("locals {{\n  m = {{\n{body}  }}\n}}\n"),
            )])
        },
    },
    Shape {
        name: "40 locals, each a list of the one before twice",
        files: || {
            let mut body = String::from("  l00 = true\n");
            for k in 1..=40 {
                let _ = writeln!(
                    body,
                    "  l{k:02} = [local.l{:02}, local.l{:02}]",
                    k - 1,
                    k - 1
                );
            }
            with_account(vec![("locals.tf".into(), format!("locals {{\n{body}}}\n"))])
        },
    },
    Shape {
        name: "40,000 locals, each the one before and a letter",
        files: || {
            let mut body = String::from("  c00000 = \"x\"\n");
            for k in 1..40_000 {
                let _ = writeln!(body, "  c{k:05} = \"${{local.c{:05}}}x\"", k - 1);
            }
            with_account(vec![("locals.tf".into(), format!("locals {{\n{body}}}\n"))])
        },
    },
    Shape {
        name: "2,000 modules each naming a local map of 10,000 entries",
        files: || {
            let big: String = (0..10_000).map(|i| format!("    k{i} = \"v\"\n")).collect();
            let modules: String = (0..2_000)
                .map(|i| {
                    format!("module \"o{i}\" {{\n  source = \"./o\"\n  tags   = local.big\n}}\n")
                })
                .collect();
            with_account(vec![
                (
                    "locals.tf".into(),
                    format!("locals {{\n  big = {{\n{big}  }}\n}}\n"),
                ),
                ("main.tf".into(), modules),
            ])
        },
    },
    Shape {
        name: "20,000 files, each declaring a variable",
        files: || {
            with_account(
                (0..20_000)
                    .map(|i| (format!("v{i:05}.tf"), format!("variable \"v{i}\" {{}}\n")))
                    .collect(),
            )
        },
    },
    Shape {
        name: "a terraform.tfvars.json of 100,000 names on one line",
        files: || {
            let obj: Vec<String> = (0..N).map(|i| format!("\"\\u006b{i}\":\"v\"")).collect();
            with_account(vec![(
                "terraform.tfvars.json".into(),
                format!("{{{}}}", obj.join(",")),
            )])
        },
    },
];

/// Writes `shape`'s files into `dir` (emptied first); their size in bytes.
pub fn generate(dir: &Path, shape: &Shape) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut bytes = 0;
    for (name, text) in (shape.files)() {
        bytes += text.len();
        std::fs::write(dir.join(name), text).unwrap();
    }
    bytes
}
