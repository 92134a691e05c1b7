//! Evaluates the lowered expressions of one Terraform directory: `var.*` from variable
//! defaults and tfvars, `local.*`, `module.*` kept as references, and the handful of
//! functions tag maps and names use (`merge`, `lookup`, `lower`, …).

use super::parse::{Expr, Op, Part};
use super::value::{ModuleRef, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Locals may refer to locals; deeper nesting than this is a cycle or abuse.
const MAX_DEPTH: usize = 64;

#[path = "eval_budget.rs"]
mod budget;
use budget::{BUDGET_FLOOR, BUDGET_PER_BYTE, Budget, too_large};

/// A directory's values. A reference (`var.accounts["c1"].email`, `local.clients.c1.name`) is
/// read in place, and only the value it ends at is copied: a map of 10,000 accounts in one
/// variable or local, read once per module, would otherwise be copied whole 20,000 times.
/// The definitions and the settled locals are shared by every fork.
pub(crate) struct Env<'a> {
    vars: Arc<HashMap<String, Value>>,
    /// Declared variables, with or without a value.
    declared: Arc<HashSet<String>>,
    locals: Arc<HashMap<String, &'a Expr>>,
    /// Every local's value, once [`Env::settled`].
    settled: Arc<HashMap<String, Value>>,
    // While settling: the values found so far and the locals being evaluated. Each thread
    // forks its own Env, so these locks are never contended.
    cache: Mutex<HashMap<String, Value>>,
    in_progress: Mutex<HashSet<String>>,
    budget: Arc<Budget>,
}

impl<'a> Env<'a> {
    pub fn new(vars: HashMap<String, Value>, locals: HashMap<String, &'a Expr>) -> Env<'a> {
        let declared = vars.keys().cloned().collect();
        Env {
            vars: Arc::new(vars),
            declared: Arc::new(declared),
            locals: Arc::new(locals),
            settled: Arc::default(),
            cache: Mutex::default(),
            in_progress: Mutex::default(),
            budget: Arc::new(Budget::new(BUDGET_FLOOR)),
        }
    }

    /// The budget for a directory of `bytes` of files: [`BUDGET_FLOOR`], and
    /// [`BUDGET_PER_BYTE`] for each byte.
    pub fn budget_for(mut self, bytes: usize) -> Env<'a> {
        let units = BUDGET_FLOOR.saturating_add(bytes.saturating_mul(BUDGET_PER_BYTE));
        self.budget = Arc::new(Budget::new(units));
        self
    }

    /// A copy of `v`, or why there is none: the directory's budget is spent.
    fn copy(&self, v: &Value) -> Value {
        match self.budget.take_values([v]) {
            true => v.clone(),
            false => too_large(),
        }
    }

    /// Variables declared without a value (`var.x` is then unknown for want of one, rather
    /// than undeclared).
    pub fn declare(&mut self, names: impl IntoIterator<Item = String>) {
        Arc::make_mut(&mut self.declared).extend(names);
    }

    /// Every local evaluated now, in name order, from the top: a local's value (and why it
    /// is unknown: a cycle, too deep a chain) is then the same whichever module reads it
    /// first, in a whole read or in a read of one file (`kept`).
    pub fn settled(mut self) -> Env<'a> {
        let locals = self.locals.clone();
        let mut names: Vec<&String> = locals.keys().collect();
        names.sort();
        for name in names {
            // as `local` would, without the copy of the value it returns (a local map of
            // 10,000 accounts was copied whole once more here, on one core)
            let known = self.settled.contains_key(name.as_str())
                || self
                    .cache
                    .get_mut()
                    .expect("cache lock")
                    .contains_key(name.as_str());
            if !known && let Ok(value) = self.evaluate_local(name, 0) {
                self.cache
                    .get_mut()
                    .expect("cache lock")
                    .insert(name.clone(), value);
            }
        }
        let cache = self.cache.get_mut().expect("cache lock");
        let mut settled = std::mem::take(Arc::make_mut(&mut self.settled));
        settled.extend(std::mem::take(cache));
        self.settled = Arc::new(settled);
        self
    }

    /// The same definitions and the values found so far, with caches of its own, for
    /// another thread.
    pub fn fork(&self) -> Env<'a> {
        Env {
            vars: self.vars.clone(),
            declared: self.declared.clone(),
            locals: self.locals.clone(),
            settled: self.settled.clone(),
            cache: Mutex::new(self.cache.lock().expect("cache lock").clone()),
            in_progress: Mutex::default(),
            budget: self.budget.clone(),
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
        match self.eval_ref(expr, depth) {
            Cow::Borrowed(v) => self.copy(v),
            Cow::Owned(v) => v,
        }
    }

    /// The value of `expr`: borrowed where it is a variable's or a settled local's, or a part
    /// of one.
    fn eval_ref(&self, expr: &Expr, depth: usize) -> Cow<'_, Value> {
        if depth > MAX_DEPTH {
            return Cow::Owned(Value::Unknown("the expression nests too deeply".into()));
        }
        let depth = depth + 1;
        Cow::Owned(match expr {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Number(n) => Value::Number(n.clone()),
            Expr::String(s) => Value::String(s.clone()),
            Expr::List(items) => {
                Value::List(items.iter().map(|e| self.eval_at(e, depth)).collect())
            }
            Expr::Map(entries) => {
                // gathered, then sorted once (`Map`'s `FromIterator`)
                let mut map = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match self.eval_ref(k, depth).template_text() {
                        // a key copied from what it names takes from the budget as a value
                        // does (the same long string as a thousand keys was a thousand
                        // copies, all held until the map was sorted)
                        Some(key) if !self.budget.take(key.len()) => {
                            return Cow::Owned(too_large());
                        }
                        Some(key) => map.push((key.into_owned(), self.eval_at(v, depth))),
                        None => {
                            return Cow::Owned(Value::Unknown(
                                "a map key is not a known string".into(),
                            ));
                        }
                    }
                }
                Value::Map(map.into_iter().collect())
            }
            Expr::Template(parts) => return self.template(parts, depth),
            Expr::Traversal { root, ops, text } => return self.traversal(root, ops, text, depth),
            Expr::Call { name, args, text } => self.call(name, args, text, depth),
            Expr::Opaque(text) => Value::Unknown(format!("`{text}` is not evaluated offline")),
        })
    }

    fn template(&self, parts: &[Part], depth: usize) -> Cow<'_, Value> {
        // "${ x }" alone is x itself, whatever its type (Terraform 0.11 wrote every reference so).
        if let [Part::Expr(e)] = parts {
            return self.eval_ref(e, depth);
        }
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => {
                    let v = self.eval_ref(e, depth);
                    if let Value::Unknown(_) = &*v {
                        return v;
                    }
                    match v.template_text() {
                        Some(s) if !self.budget.take(s.len()) => {
                            return Cow::Owned(too_large());
                        }
                        Some(s) => out.push_str(&s),
                        None => {
                            return Cow::Owned(Value::Unknown(format!(
                                "{} cannot be interpolated into a string",
                                v.kind()
                            )));
                        }
                    }
                }
            }
        }
        Cow::Owned(Value::String(out))
    }

    fn traversal(&self, root: &str, ops: &[Op], text: &str, depth: usize) -> Cow<'_, Value> {
        let unknown = |why: String| Cow::Owned(Value::Unknown(why));
        let (mut value, rest) = match (root, ops) {
            ("var", [Op::Attr(name), rest @ ..]) => match self.vars.get(name) {
                Some(v) => (Cow::Borrowed(v), rest),
                None if !self.declared.contains(name) => {
                    return unknown(format!(
                        "`var.{name}` is not declared: there is no `variable \"{name}\"` block"
                    ));
                }
                None => {
                    return unknown(format!(
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
                            return unknown(format!("`{text}` indexes a module output"));
                        }
                    }
                }
                return Cow::Owned(Value::ModuleRef(Box::new(ModuleRef {
                    module: module.clone(),
                    attr: attr.join("."),
                })));
            }
            _ => return unknown(format!("`{text}` is not evaluated offline")),
        };
        for op in rest {
            let key = match op {
                Op::Attr(a) => Cow::Owned(Value::String(a.clone())),
                Op::Index(e) => self.eval_ref(e, depth),
            };
            value = match value {
                Cow::Borrowed(v) => index(v, &key, text).map_or_else(Cow::Owned, Cow::Borrowed),
                Cow::Owned(v) => {
                    Cow::Owned(index(&v, &key, text).map_or_else(|u| u, |p| self.copy(p)))
                }
            };
        }
        value
    }

    fn local(&self, name: &str, depth: usize) -> Cow<'_, Value> {
        if let Some(v) = self.settled.get(name) {
            return Cow::Borrowed(v);
        }
        if let Some(v) = self.cache.lock().expect("cache lock").get(name) {
            return Cow::Owned(self.copy(v));
        }
        match self.evaluate_local(name, depth) {
            Ok(value) => {
                let copy = self.copy(&value);
                self.cache
                    .lock()
                    .expect("lock")
                    .insert(name.to_string(), value);
                Cow::Owned(copy)
            }
            Err(unknown) => Cow::Owned(unknown),
        }
    }

    /// A local's value, evaluated now. `Err` with why it is unknown, which is not kept, when
    /// it is not defined or refers to itself.
    fn evaluate_local(&self, name: &str, depth: usize) -> Result<Value, Value> {
        let Some(expr) = self.locals.get(name) else {
            return Err(Value::Unknown(format!("`local.{name}` is not defined")));
        };
        if !self
            .in_progress
            .lock()
            .expect("lock")
            .insert(name.to_string())
        {
            return Err(Value::Unknown(format!("`local.{name}` refers to itself")));
        }
        let value = self.eval_at(expr, depth);
        self.in_progress.lock().expect("lock").remove(name);
        Ok(value)
    }

    fn call(&self, name: &str, args: &[Expr], text: &str, depth: usize) -> Value {
        // read in place: `lookup(var.accounts, "c1")` copies one account, not the map
        let owned: Vec<Cow<Value>> = args.iter().map(|a| self.eval_ref(a, depth)).collect();
        let args: Vec<&Value> = owned.iter().map(|a| &**a).collect();
        if let Some(Value::Unknown(why)) = args.iter().find(|a| matches!(a, Value::Unknown(_))) {
            return Value::Unknown(why.clone());
        }
        // what any of these functions makes is at most its arguments, once each (and a
        // format's text)
        if !self.budget.take_values(args.iter().copied()) {
            return too_large();
        }
        let unsupported = || Value::Unknown(format!("`{text}` is not evaluated offline"));
        match (name, args.as_slice()) {
            ("merge", _) => {
                // every argument's entries gathered, then sorted once (the last of a key wins)
                let mut out = Vec::new();
                for arg in owned {
                    match arg.into_owned() {
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
                Value::Map(out.into_iter().collect())
            }
            ("lookup", [Value::Map(m), key, rest @ ..]) if rest.len() <= 1 => {
                match key.template_text().and_then(|k| m.get(&k).cloned()) {
                    Some(v) => v,
                    None => rest.first().map_or_else(unsupported, |v| (*v).clone()),
                }
            }
            // Terraform 0.11's map("k1", v1, "k2", v2, ...)
            ("map", pairs) if pairs.len() % 2 == 0 => {
                let mut out = Vec::with_capacity(pairs.len() / 2);
                for pair in pairs.chunks(2) {
                    match pair[0].template_text() {
                        Some(k) => out.push((k.into_owned(), (*pair[1]).clone())),
                        None => return unsupported(),
                    }
                }
                Value::Map(out.into_iter().collect())
            }
            ("lower", [Value::String(s)]) => Value::String(s.to_lowercase()),
            ("upper", [Value::String(s)]) => Value::String(s.to_uppercase()),
            ("trimspace", [Value::String(s)]) => Value::String(s.trim().to_string()),
            ("tomap" | "tostring" | "tolist" | "toset", [v]) => (*v).clone(),
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

/// `value[key]` in place, or why there is none (an unknown `value` is its own reason).
fn index<'v>(value: &'v Value, key: &Value, text: &str) -> Result<&'v Value, Value> {
    match (value, key) {
        (Value::Unknown(_), _) => Err(value.clone()),
        (Value::Map(m), k) => k
            .template_text()
            .and_then(|k| m.get(&k))
            .ok_or_else(|| Value::Unknown(format!("`{text}` names a key the map does not have"))),
        (Value::List(items), Value::Number(n)) => n
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .ok_or_else(|| Value::Unknown(format!("`{text}` is out of range"))),
        _ => Err(Value::Unknown(format!(
            "`{text}` cannot index {}",
            value.kind()
        ))),
    }
}

/// Terraform's `format` for the verbs names use: `%s`, `%d`, `%v` and `%%`.
fn format(spec: &str, args: &[&Value]) -> Option<Value> {
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
    use super::super::value::Map;
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
            &[&Value::String("a".into()), &Value::String("b.c".into())],
        );
        assert_eq!(v, Some(Value::String("aws+a@b.c".into())));
        assert_eq!(format("%q", &[]), None);
    }

    /// A reference into a variable's or a local's map reads the value it ends at, in place
    /// (a map of 10,000 accounts was copied whole for each module that read one), with the
    /// same values and the same reasons as before.
    #[test]
    fn references_into_maps_read_what_they_end_at() {
        let text = "locals {\n  clients = { c1 = { name = \"client-c1\" }, c2 = { name = \"client-c2\" } }\n  alias = local.clients\n}\n";
        let facts = super::super::parse::parse_file(
            "v.tf",
            &std::sync::Arc::from(text),
            super::super::parse::FileKind::Config,
        )
        .unwrap();
        let locals = facts
            .locals
            .iter()
            .map(|a| (a.name.clone(), &a.expr))
            .collect();
        let mut accounts = Map::new();
        let mut c3 = Map::new();
        c3.insert("email".to_string(), Value::String("c3@x".into()));
        accounts.insert("c3".to_string(), Value::Map(c3));
        let vars = HashMap::from([("accounts".to_string(), Value::Map(accounts))]);
        let env = Env::new(vars, locals).settled().fork();
        let read = |text: &str| {
            let t = format!("a = {text}\n");
            let f = super::super::parse::parse_file(
                "t.tfvars",
                &std::sync::Arc::from(t.as_str()),
                super::super::parse::FileKind::Tfvars,
            )
            .unwrap();
            env.eval(&f.assignments[0].expr)
        };
        let s = |v: &str| Value::String(v.into());
        assert_eq!(read("local.clients.c1.name"), s("client-c1"));
        assert_eq!(read("local.clients[\"c2\"].name"), s("client-c2"));
        assert_eq!(read("local.alias.c2.name"), s("client-c2"));
        assert_eq!(read("var.accounts[\"c3\"].email"), s("c3@x"));
        assert_eq!(read("\"${local.clients.c1.name}-x\""), s("client-c1-x"));
        assert_eq!(read("lookup(local.clients, \"c9\", \"none\")"), s("none"));
        assert_eq!(read("lookup(var.accounts.c3, \"email\")"), s("c3@x"));
        let Value::Map(m) = read("local.clients.c2") else {
            panic!("a map")
        };
        assert_eq!(m.get("name"), Some(&s("client-c2")));
        let unknown = |text: &str| match read(text) {
            Value::Unknown(why) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(unknown("local.clients.c9.name").contains("names a key the map does not have"));
        assert!(unknown("local.clients.c1.name.x").contains("cannot index a string"));
        assert!(unknown("local.nope.a").contains("`local.nope` is not defined"));
        assert!(unknown("var.nope[\"a\"]").contains("`var.nope` is not declared"));
    }

    /// `<<-` drops the common indent once, as Terraform does: a line indented deeper keeps
    /// the rest (it was dropped twice, once by hcl-edit and once here).
    #[test]
    fn heredoc_indent_is_stripped_once() {
        let value = |text: &str| {
            let text: std::sync::Arc<str> = text.into();
            let facts = super::super::parse::parse_file(
                "v.tf",
                &text,
                super::super::parse::FileKind::Config,
            )
            .unwrap();
            Env::empty().eval(&facts.locals[0].expr)
        };
        let s = |v: &str| Value::String(v.into());
        assert_eq!(
            value("locals {\n  a = <<-EOT\n      x\n    y\n    EOT\n}\n"),
            s("  x\ny\n")
        );
        assert_eq!(
            value("locals {\n  a = <<-EOT\n    x ${\"z\"}\n      y\n  EOT\n}\n"),
            s("x z\n  y\n")
        );
        assert_eq!(value("locals {\n  a = <<EOT\n  x\nEOT\n}\n"), s("  x\n"));
    }
}
