//! Evaluates the lowered expressions of one Terraform directory: `var.*` from variable
//! defaults and tfvars, `local.*`, `module.*` kept as references, and the handful of
//! functions tag maps and names use (`merge`, `lookup`, `lower`, …).

use super::parse::{Expr, Op, Part};
use super::value::{Map, ModuleRef, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Locals may refer to locals; deeper nesting than this is a cycle or abuse.
const MAX_DEPTH: usize = 64;

pub(crate) struct Env<'a> {
    pub vars: HashMap<String, Value>,
    /// Declared variables, with or without a value.
    pub declared: HashSet<String>,
    pub locals: HashMap<String, &'a Expr>,
    // Each thread forks its own Env, so these locks are never contended.
    cache: Mutex<HashMap<String, Value>>,
    in_progress: Mutex<HashSet<String>>,
}

impl<'a> Env<'a> {
    pub fn new(vars: HashMap<String, Value>, locals: HashMap<String, &'a Expr>) -> Env<'a> {
        let declared = vars.keys().cloned().collect();
        Env {
            vars,
            declared,
            locals,
            cache: Mutex::default(),
            in_progress: Mutex::default(),
        }
    }

    /// Every local evaluated now, in name order, from the top: a local's value (and why it
    /// is unknown: a cycle, too deep a chain) is then the same whichever module reads it
    /// first, in a whole read or in a read of one file (`kept`).
    pub fn settled(self) -> Env<'a> {
        let mut names: Vec<&String> = self.locals.keys().collect();
        names.sort();
        for name in names {
            self.local(name, 0);
        }
        self
    }

    /// The same definitions and the values found so far, with caches of its own, for
    /// another thread.
    pub fn fork(&self) -> Env<'a> {
        Env {
            vars: self.vars.clone(),
            declared: self.declared.clone(),
            locals: self.locals.clone(),
            cache: Mutex::new(self.cache.lock().expect("cache lock").clone()),
            in_progress: Mutex::default(),
        }
    }

    /// An environment with nothing defined: for variable defaults and tfvars, which Terraform
    /// evaluates without variables.
    pub fn empty() -> Env<'static> {
        Env::new(HashMap::new(), HashMap::new())
    }

    pub fn eval(&self, expr: &Expr) -> Value {
        self.eval_at(expr, 0)
    }

    /// Like [`Env::eval`], moving a literal instead of copying it.
    pub fn eval_owned(&self, expr: Expr) -> Value {
        match expr {
            Expr::String(s) => Value::String(s),
            Expr::Number(n) => Value::Number(n),
            other => self.eval(&other),
        }
    }

    fn eval_at(&self, expr: &Expr, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Unknown("the expression nests too deeply".into());
        }
        let depth = depth + 1;
        match expr {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Number(n) => Value::Number(n.clone()),
            Expr::String(s) => Value::String(s.clone()),
            Expr::List(items) => {
                Value::List(items.iter().map(|e| self.eval_at(e, depth)).collect())
            }
            Expr::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    match self.eval_at(k, depth).template_text() {
                        Some(key) => {
                            map.insert(key.into_owned(), self.eval_at(v, depth));
                        }
                        None => return Value::Unknown("a map key is not a known string".into()),
                    }
                }
                Value::Map(map)
            }
            Expr::Template(parts) => self.template(parts, depth),
            Expr::Traversal { root, ops, text } => self.traversal(root, ops, text, depth),
            Expr::Call { name, args, text } => self.call(name, args, text, depth),
            Expr::Opaque(text) => Value::Unknown(format!("`{text}` is not evaluated offline")),
        }
    }

    fn template(&self, parts: &[Part], depth: usize) -> Value {
        // "${ x }" alone is x itself, whatever its type (Terraform 0.11 wrote every reference so).
        if let [Part::Expr(e)] = parts {
            return self.eval_at(e, depth);
        }
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => match self.eval_at(e, depth) {
                    Value::Unknown(why) => return Value::Unknown(why),
                    v => match v.template_text() {
                        Some(s) => out.push_str(&s),
                        None => {
                            return Value::Unknown(format!(
                                "{} cannot be interpolated into a string",
                                v.kind()
                            ));
                        }
                    },
                },
            }
        }
        Value::String(out)
    }

    fn traversal(&self, root: &str, ops: &[Op], text: &str, depth: usize) -> Value {
        let (value, rest) = match (root, ops) {
            ("var", [Op::Attr(name), rest @ ..]) => match self.vars.get(name) {
                Some(v) => (v.clone(), rest),
                None if !self.declared.contains(name) => {
                    return Value::Unknown(format!(
                        "`var.{name}` is not declared: there is no `variable \"{name}\"` block"
                    ));
                }
                None => {
                    return Value::Unknown(format!(
                        "`var.{name}` has no default and no value in terraform.tfvars or *.auto.tfvars"
                    ));
                }
            },
            ("local", [Op::Attr(name), rest @ ..]) => (self.local(name, depth), rest),
            ("module", [Op::Attr(module), rest @ ..]) => {
                let mut attr = Vec::new();
                for op in rest {
                    match op {
                        Op::Attr(a) => attr.push(a.clone()),
                        Op::Index(_) => {
                            return Value::Unknown(format!("`{text}` indexes a module output"));
                        }
                    }
                }
                return Value::ModuleRef(Box::new(ModuleRef {
                    module: module.clone(),
                    attr: attr.join("."),
                }));
            }
            _ => return Value::Unknown(format!("`{text}` is not evaluated offline")),
        };
        let mut value = value;
        for op in rest {
            let key = match op {
                Op::Attr(a) => Value::String(a.clone()),
                Op::Index(e) => self.eval_at(e, depth),
            };
            value = index(value, &key, text);
        }
        value
    }

    fn local(&self, name: &str, depth: usize) -> Value {
        if let Some(v) = self.cache.lock().expect("cache lock").get(name) {
            return v.clone();
        }
        let Some(expr) = self.locals.get(name) else {
            return Value::Unknown(format!("`local.{name}` is not defined"));
        };
        if !self
            .in_progress
            .lock()
            .expect("lock")
            .insert(name.to_string())
        {
            return Value::Unknown(format!("`local.{name}` refers to itself"));
        }
        let value = self.eval_at(expr, depth);
        self.in_progress.lock().expect("lock").remove(name);
        self.cache
            .lock()
            .expect("lock")
            .insert(name.to_string(), value.clone());
        value
    }

    fn call(&self, name: &str, args: &[Expr], text: &str, depth: usize) -> Value {
        let args: Vec<Value> = args.iter().map(|a| self.eval_at(a, depth)).collect();
        if let Some(Value::Unknown(why)) = args.iter().find(|a| matches!(a, Value::Unknown(_))) {
            return Value::Unknown(why.clone());
        }
        let unsupported = || Value::Unknown(format!("`{text}` is not evaluated offline"));
        match (name, args.as_slice()) {
            ("merge", _) => {
                let mut out = Map::new();
                for arg in args {
                    match arg {
                        Value::Map(m) => out.extend(m),
                        Value::Null => {}
                        other => {
                            return Value::Unknown(format!(
                                "merge() takes maps, and `{text}` passes {}",
                                other.kind()
                            ));
                        }
                    }
                }
                Value::Map(out)
            }
            ("lookup", [Value::Map(m), key, rest @ ..]) if rest.len() <= 1 => {
                match key.template_text().and_then(|k| m.get(&k).cloned()) {
                    Some(v) => v,
                    None => rest.first().cloned().unwrap_or_else(unsupported),
                }
            }
            // Terraform 0.11's map("k1", v1, "k2", v2, ...)
            ("map", pairs) if pairs.len() % 2 == 0 => {
                let mut out = Map::new();
                for pair in pairs.chunks(2) {
                    match pair[0].template_text() {
                        Some(k) => {
                            out.insert(k.into_owned(), pair[1].clone());
                        }
                        None => return unsupported(),
                    }
                }
                Value::Map(out)
            }
            ("lower", [Value::String(s)]) => Value::String(s.to_lowercase()),
            ("upper", [Value::String(s)]) => Value::String(s.to_uppercase()),
            ("trimspace", [Value::String(s)]) => Value::String(s.trim().to_string()),
            ("tomap" | "tostring" | "tolist" | "toset", [v]) => v.clone(),
            ("concat", lists) => {
                let mut out = Vec::new();
                for l in lists {
                    match l {
                        Value::List(items) => out.extend(items.iter().cloned()),
                        _ => return unsupported(),
                    }
                }
                Value::List(out)
            }
            ("format", [Value::String(spec), rest @ ..]) => {
                format(spec, rest).unwrap_or_else(unsupported)
            }
            _ => unsupported(),
        }
    }
}

fn index(value: Value, key: &Value, text: &str) -> Value {
    match (&value, key) {
        (Value::Unknown(_), _) => value,
        (Value::Map(m), k) => match k.template_text().and_then(|k| m.get(&k).cloned()) {
            Some(v) => v,
            None => Value::Unknown(format!("`{text}` names a key the map does not have")),
        },
        (Value::List(items), Value::Number(n)) => {
            match n.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(v) => v.clone(),
                None => Value::Unknown(format!("`{text}` is out of range")),
            }
        }
        _ => Value::Unknown(format!("`{text}` cannot index {}", value.kind())),
    }
}

/// Terraform's `format` for the verbs names use: `%s`, `%d`, `%v` and `%%`.
fn format(spec: &str, args: &[Value]) -> Option<Value> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            's' | 'd' | 'v' => out.push_str(&args.next()?.template_text()?),
            _ => return None,
        }
    }
    Some(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Expr {
        Expr::String(v.into())
    }

    fn var(name: &str) -> Expr {
        Expr::Traversal {
            root: "var".into(),
            ops: vec![Op::Attr(name.into())],
            text: format!("var.{name}"),
        }
    }

    #[test]
    fn merge_combines_maps_later_wins() {
        let mut vars = HashMap::new();
        let mut tags = Map::new();
        tags.insert("owner".to_string(), Value::String("infra".into()));
        tags.insert("env".to_string(), Value::String("prod".into()));
        vars.insert("tags".to_string(), Value::Map(tags));
        let env = Env::new(vars, HashMap::new());
        let call = Expr::Call {
            name: "merge".into(),
            args: vec![var("tags"), Expr::Map(vec![(s("env"), s("dev"))])],
            text: "merge(var.tags, {env = \"dev\"})".into(),
        };
        let Value::Map(m) = env.eval(&call) else {
            panic!("merge gave no map")
        };
        assert_eq!(m["owner"], Value::String("infra".into()));
        assert_eq!(m["env"], Value::String("dev".into()));
    }

    #[test]
    fn missing_variable_is_unknown_with_reason() {
        let env = Env::empty();
        match env.eval(&var("nope")) {
            Value::Unknown(why) => assert!(why.contains("var.nope"), "{why}"),
            other => panic!("expected unknown, got {other:?}"),
        }
    }

    #[test]
    fn self_referencing_local_does_not_loop() {
        let loop_expr = Expr::Traversal {
            root: "local".into(),
            ops: vec![Op::Attr("a".into())],
            text: "local.a".into(),
        };
        let mut locals = HashMap::new();
        locals.insert("a".to_string(), &loop_expr);
        let env = Env::new(HashMap::new(), locals);
        assert!(matches!(env.eval(&loop_expr), Value::Unknown(_)));
    }

    #[test]
    fn format_fills_verbs() {
        let v = format(
            "aws+%s@%s",
            &[Value::String("a".into()), Value::String("b.c".into())],
        );
        assert_eq!(v, Some(Value::String("aws+a@b.c".into())));
        assert_eq!(format("%q", &[]), None);
    }
}
