//! The files of each new account's repository, rendered from `templates/account-repo/`
//! (embedded in the binary, or a company's own directory) with minijinja.
//!
//! Escaping belongs to the engine, not to the template: every `{{ value }}` is written for the
//! file it lands in, chosen by the output file's extension. In Terraform (`.tf`, `.tfvars`,
//! `.hcl`) a value becomes a quoted HCL string, in YAML a quoted (JSON) string, in Markdown
//! text with Markdown, HTML and GitLab references defused; elsewhere control characters are
//! removed. `{{ value | comment }}` writes a value as plain single-line text for comments.
//! A value therefore cannot break out of its string, whatever the declaration held.

use anyhow::Result;
use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The shipped templates: output path, source.
const EMBEDDED: &[(&str, &str)] = &[
    (
        ".gitlab-ci.yml",
        include_str!("../../templates/account-repo/.gitlab-ci.yml.j2"),
    ),
    (
        "README.md",
        include_str!("../../templates/account-repo/README.md.j2"),
    ),
    (
        "backend.tf",
        include_str!("../../templates/account-repo/backend.tf.j2"),
    ),
    (
        "main.tf",
        include_str!("../../templates/account-repo/main.tf.j2"),
    ),
    (
        "providers.tf",
        include_str!("../../templates/account-repo/providers.tf.j2"),
    ),
];

/// What a template can use (documented in `templates/account-repo/README.md`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RepoVars {
    pub account: AccountVars,
    pub state_bucket: String,
    pub lock_table: String,
    pub region: String,
    pub project_path: String,
    pub project_url: String,
    pub gitlab_url: String,
    /// Whether the account has keyless CI; the role ARNs are empty without it.
    pub keyless_ci: bool,
    pub plan_role_arn: String,
    pub apply_role_arn: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountVars {
    pub name: String,
    pub id: String,
    pub alias: String,
    pub email: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ou: String,
    pub owner: String,
    pub tags: BTreeMap<String, String>,
}

/// A loaded, compiled set of templates.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    /// Output paths, sorted.
    files: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files)
            .finish()
    }
}

impl Templates {
    /// The templates shipped in the binary.
    pub fn embedded() -> Templates {
        let files = EMBEDDED
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect();
        Templates::compile(files).expect("the shipped templates compile")
    }

    /// Templates from (output path, source) pairs. Fails on a template that does not
    /// compile, with its line.
    pub fn compile(mut files: Vec<(String, String)>) -> Result<Templates> {
        files.sort();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|name| AutoEscape::Custom(escape_for(name)));
        env.set_formatter(format_value);
        env.add_filter("comment", comment);
        let mut paths = Vec::new();
        for (path, source) in files {
            env.add_template_owned(path.clone(), source)
                .map_err(|e| anyhow::anyhow!("template {path}.j2: {}", describe(&e)))?;
            paths.push(path);
        }
        Ok(Templates {
            env: Arc::new(env),
            files: paths,
        })
    }

    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The repository's files for one account: output path and content, sorted by path. Pure.
    pub fn render(&self, vars: &RepoVars) -> Result<Vec<(String, String)>> {
        let ctx = Value::from_serialize(vars);
        self.files
            .iter()
            .map(|path| {
                let t = self.env.get_template(path).expect("compiled");
                let text = t
                    .render(&ctx)
                    .map_err(|e| anyhow::anyhow!("rendering {path}.j2: {}", describe(&e)))?;
                Ok((path.clone(), text))
            })
            .collect()
    }
}

/// An engine error with its line.
fn describe(e: &Error) -> String {
    match e.line() {
        Some(line) => format!("line {line}: {}", e.detail().unwrap_or(&e.to_string())),
        None => e.to_string(),
    }
}

/// The escaping of a file, by its extension.
fn escape_for(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "tf" | "tfvars" | "hcl" => "hcl",
        "yml" | "yaml" => "yaml",
        "md" | "markdown" => "md",
        _ => "text",
    }
}

fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    let text = if value.is_safe() {
        value.to_string()
    } else {
        match state.auto_escape() {
            AutoEscape::Custom("hcl") => hcl(value),
            AutoEscape::Custom("yaml") => yaml(value)?,
            AutoEscape::Custom("md") => crate::core::render::escape::text(&value.to_string()),
            _ => one_line(&value.to_string()),
        }
    };
    out.write_str(&text).map_err(Error::from)
}

/// An HCL expression for a value: strings quoted and escaped (`\`, `"`, controls, and the
/// template sequences `${` and `%{`), maps as objects, sequences as tuples.
fn hcl(value: &Value) -> String {
    match value.kind() {
        ValueKind::Bool | ValueKind::Number => value.to_string(),
        ValueKind::None => "null".into(),
        ValueKind::Map => {
            let mut parts = Vec::new();
            if let Ok(keys) = value.try_iter() {
                for k in keys {
                    let v = value.get_item(&k).unwrap_or_default();
                    parts.push(format!("{} = {}", hcl_string(&k.to_string()), hcl(&v)));
                }
            }
            if parts.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| hcl(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        _ => hcl_string(&value.to_string()),
    }
}

pub fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// YAML: JSON is YAML, and a JSON string cannot break out of its quotes.
fn yaml(value: &Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| {
        Error::new(
            ErrorKind::BadSerialization,
            format!("value not writable as YAML: {e}"),
        )
    })
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `{{ x | comment }}`: plain text on one line, for a comment in any file type.
fn comment(value: Value) -> Value {
    Value::from_safe_string(one_line(&value.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn vars() -> RepoVars {
        RepoVars {
            account: AccountVars {
                name: "client-acme".into(),
                id: "123456789012".into(),
                alias: "acme".into(),
                email: "aws+acme@example.com".into(),
                kind: "client".into(),
                ou: "/Clients".into(),
                owner: "team-acme".into(),
                tags: BTreeMap::from([
                    ("owner".into(), "team-acme".into()),
                    ("cost-center".into(), "cc-42".into()),
                ]),
            },
            state_bucket: "tfstate-123456789012".into(),
            lock_table: "terraform-locks".into(),
            region: "eu-west-1".into(),
            project_path: "aws-accounts/acme".into(),
            project_url: "https://gitlab.example.com/aws-accounts/acme".into(),
            gitlab_url: "https://gitlab.example.com".into(),
            keyless_ci: true,
            plan_role_arn: "arn:aws:iam::123456789012:role/gitlab-ci-plan".into(),
            apply_role_arn: "arn:aws:iam::123456789012:role/gitlab-ci-apply".into(),
        }
    }

    #[test]
    fn shipped_templates_render() {
        let files = Templates::embedded().render(&vars()).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                ".gitlab-ci.yml",
                "README.md",
                "backend.tf",
                "main.tf",
                "providers.tf"
            ]
        );
        for (path, text) in files {
            insta::assert_snapshot!(path.trim_start_matches('.'), text);
        }
    }

    #[test]
    fn rendered_terraform_parses_and_holds_the_values() {
        let mut v = vars();
        v.account.name = "client-\"x\" ${evil} %{ if true }".into();
        v.account.tags.insert("note".into(), "a\nb\\c".into());
        let files = Templates::embedded().render(&v).unwrap();
        for (path, text) in &files {
            if !path.ends_with(".tf") {
                continue;
            }
            let body = hcl::edit::parser::parse_body(text)
                .unwrap_or_else(|e| panic!("{path} does not parse: {e}\n{text}"));
            assert!(path == "main.tf" || !body.is_empty(), "{path}");
        }
        let providers = &files.iter().find(|(p, _)| p == "providers.tf").unwrap().1;
        assert!(
            providers.contains(r#"account    = "client-\"x\" $${evil} %%{ if true }""#),
            "{providers}"
        );
    }

    #[test]
    fn yaml_values_stay_in_their_strings() {
        let mut v = vars();
        v.gitlab_url = "https://x\n  script: [\"rm -rf /\"]".into();
        let files = Templates::embedded().render(&v).unwrap();
        let ci = &files.iter().find(|(p, _)| p == ".gitlab-ci.yml").unwrap().1;
        assert!(
            ci.contains(r#"aud: "https://x\n  script: [\"rm -rf /\"]""#),
            "{ci}"
        );
        assert!(!ci.contains("\n  script: [\"rm"), "{ci}");
    }

    #[test]
    fn markdown_values_are_defused() {
        let mut v = vars();
        v.account.owner = "<img src=x onerror=alert(1)> @all [x](http://evil)".into();
        let files = Templates::embedded().render(&v).unwrap();
        let readme = &files.iter().find(|(p, _)| p == "README.md").unwrap().1;
        assert!(!readme.contains("<img"), "{readme}");
        assert!(!readme.contains("[x](http"), "{readme}");
        assert!(!readme.contains(" @all"), "{readme}");
    }

    #[test]
    fn without_keyless_ci_the_pipeline_uses_the_groups_credentials() {
        let mut v = vars();
        v.keyless_ci = false;
        v.plan_role_arn.clear();
        v.apply_role_arn.clear();
        let files = Templates::embedded().render(&v).unwrap();
        let ci = &files.iter().find(|(p, _)| p == ".gitlab-ci.yml").unwrap().1;
        assert!(
            !ci.contains("id_tokens") && !ci.contains("assume-role"),
            "{ci}"
        );
        assert!(ci.contains("terraform apply plan.tfplan"), "{ci}");
        let readme = &files.iter().find(|(p, _)| p == "README.md").unwrap().1;
        assert!(!readme.contains("plan role"), "{readme}");
    }

    #[test]
    fn escaping_by_file_type() {
        let t = Templates::compile(vec![
            ("a.tf".into(), "x = {{ v }} # {{ v | comment }}\n".into()),
            ("a.yml".into(), "x: {{ v }}\n".into()),
            ("a.txt".into(), "{{ v }}\n".into()),
            ("m.tf".into(), "tags = {{ m }}\n".into()),
        ])
        .unwrap();
        let mut env_vars = vars();
        env_vars.account.name = String::new();
        let ctx = Value::from_serialize(BTreeMap::from([
            ("v", Value::from("a\"b\n${c}")),
            (
                "m",
                Value::from_serialize(BTreeMap::from([("k-1", "v\"1"), ("k2", "v2")])),
            ),
        ]));
        let render = |name: &str| t.env.get_template(name).unwrap().render(&ctx).unwrap();
        assert_eq!(render("a.tf"), "x = \"a\\\"b\\n$${c}\" # a\"b ${c}\n");
        assert_eq!(render("a.yml"), "x: \"a\\\"b\\n${c}\"\n");
        assert_eq!(render("a.txt"), "a\"b ${c}\n");
        assert_eq!(
            render("m.tf"),
            "tags = { \"k-1\" = \"v\\\"1\", \"k2\" = \"v2\" }\n"
        );
    }

    #[test]
    fn a_broken_or_unknown_variable_is_an_error_with_its_line() {
        let e = Templates::compile(vec![("a.tf".into(), "x = 1\ny = {{ v \n".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.tf.j2") && e.contains("line 2"), "{e}");
        let t = Templates::compile(vec![("b.tf".into(), "\n\nx = {{ acount.name }}\n".into())])
            .unwrap();
        let e = t.render(&vars()).unwrap_err().to_string();
        assert!(e.contains("b.tf.j2") && e.contains("line 3"), "{e}");
    }
}
