//! Custom rules as the policy says them: `policies/*.rego` compiled with regorus, and which
//! parts of the input document they read. Evaluating them over a change is
//! `core::rules::rego`'s job.

use super::PolicyError;
use crate::core::model::SourceFile;
use regorus::Engine;

/// One compiled package with a `deny` rule.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: String,
    /// `data.<package>`.
    pub package: String,
    /// The compiled policy files (every file: packages may import each other).
    pub engine: Engine,
    /// The parts of the input the policy files can reach.
    pub needs: Needs,
}

/// `[rego]` of the policy file: how the custom rules may be evaluated.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegoConf {
    /// Each `deny` judges one account (its two modules and its change) on its own and names
    /// its module, so an MR's review evaluates only what the MR touches. Default false.
    #[serde(default)]
    pub per_account: bool,
}

/// Which parts of the input document to build. A part is built when some policy file names
/// it (`input.modules`, `some m in input.modules`, …) or indexes `input` dynamically
/// (`input[k]`, `walk(input, …)`); building a part no rule reads would cost as much as the
/// built-in rules on a large repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub accounts: bool,
    pub modules: bool,
    pub changes: bool,
    /// Whether a rule reads `input.mr` (the MR's facts differ from one MR to the next).
    pub mr: bool,
}

/// Whether a policy file uses `input` other than as `input.<name>` (indexed, passed, aliased by
/// `import input as x`, replaced by `with input as`): then any part of it may be read.
/// Comments are skipped; a mention in a string counts (in the safe direction).
fn whole_input(text: &str) -> bool {
    let code = without_comments(text);
    let bytes = code.as_bytes();
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    code.match_indices("input").any(|(i, _)| {
        let before = i.checked_sub(1).and_then(|j| bytes.get(j));
        let after = bytes.get(i + 5);
        !word(before) && !word(after) && after != Some(&b'.')
    })
}

/// Rego source with its `#` comments blanked (a `#` inside a string is not a comment).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut quote, mut escaped, mut comment) = (None, false, false);
    for c in text.chars() {
        if comment {
            if c == '\n' {
                comment = false;
                out.push(c);
            }
            continue;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '#' => {
                comment = true;
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

impl Needs {
    pub fn all() -> Needs {
        Needs {
            accounts: true,
            modules: true,
            changes: true,
            mr: true,
        }
    }

    fn of(text: &str) -> Needs {
        if whole_input(text) {
            return Needs::all();
        }
        Needs {
            accounts: text.contains("accounts"),
            modules: text.contains("modules"),
            changes: text.contains("changes"),
            mr: text.contains(".mr") || text.contains("\"mr\""),
        }
    }

    pub fn union(self, other: Needs) -> Needs {
        Needs {
            accounts: self.accounts || other.accounts,
            modules: self.modules || other.modules,
            changes: self.changes || other.changes,
            mr: self.mr || other.mr,
        }
    }
}

pub(super) fn compile(files: &[&SourceFile]) -> Result<Vec<Module>, PolicyError> {
    let mut engine = Engine::new();
    let mut modules = Vec::new();
    for f in files {
        // Rego v1 (OPA 1.0, current conftest) first; older v0 policies still load.
        let package = match engine.add_policy(f.path.clone(), f.text.to_string()) {
            Ok(p) => p,
            Err(v1_error) => {
                engine.set_rego_v0(true);
                let v0 = engine.add_policy(f.path.clone(), f.text.to_string());
                engine.set_rego_v0(false);
                v0.map_err(|_| PolicyError {
                    at: None,
                    message: format!("{}: {}", f.path, first_line(&v1_error.to_string())),
                })?
            }
        };
        let declares_deny = engine
            .has_declared_rule_rooted_at(&f.path, "deny")
            .unwrap_or(false);
        if declares_deny && !modules.iter().any(|m: &Module| m.package == package) {
            modules.push(Module {
                path: f.path.clone(),
                package,
                engine: Engine::new(),
                needs: Needs::default(),
            });
        }
    }
    // A package may be spread over files, and rules may import each other: what any file
    // names, every package may need.
    let needs = files
        .iter()
        .fold(Needs::default(), |n, f| n.union(Needs::of(&f.text)));
    for m in &mut modules {
        m.engine = engine.clone();
        m.needs = needs;
    }
    Ok(modules)
}

/// The first lines of an engine error, on one line.
pub fn first_line(s: &str) -> String {
    s.lines()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::Needs;

    #[test]
    fn a_rule_using_input_whole_needs_every_part() {
        for text in [
            "import input as doc\ndeny contains \"x\" if { doc[`mr`].author == \"a\" }",
            "deny contains \"x\" if { d := input; d[\"m\\u0072\"] }",
            "deny contains \"x\" if { walk(input, [p, v]) }",
            "deny contains \"x\" if { input[k] }",
            "deny contains \"x\" if { f(input) }",
            "msg := \"#\"; deny contains msg if { y := input }",
        ] {
            assert_eq!(Needs::of(text), Needs::all(), "{text}");
        }
    }

    #[test]
    fn parts_are_found_by_name() {
        let text = "# The input document: see docs. input\ndeny contains a.key if {\n  some a in input.accounts\n  a.name == \"#x\"\n}\n";
        let needs = Needs::of(text);
        assert!(
            needs.accounts && !needs.modules && !needs.changes,
            "{needs:?}"
        );
        assert!(!needs.mr, "{needs:?}");
        assert!(Needs::of("x if { input.mr.title == \"t\" }").mr);
    }
}
