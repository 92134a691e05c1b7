//! Values of module attributes after `var.*`, `local.*` and `merge(...)` are resolved.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// An evaluated attribute value. Terraform values orgvend cannot know offline (a data source,
/// a resource attribute) are `Unknown`, with the reason; references to other modules stay
/// references, because pairing is read from them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Kept as written, so `123456789012` does not become a float.
    Number(String),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// `module.<name>.<attr>...`, as a dotted path without the `module.` prefix parts split.
    ModuleRef(ModuleRef),
    /// Why the value could not be resolved offline.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRef {
    pub module: String,
    /// The attribute path after the module name (`id` in `module.x.id`); may be empty.
    pub attr: String,
}

impl fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attr.is_empty() {
            write!(f, "module.{}", self.module)
        } else {
            write!(f, "module.{}.{}", self.module, self.attr)
        }
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text a scalar has inside a string template.
    pub(crate) fn template_text(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// What kind of value this is, for messages ("expected a string, found a map").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
            Value::ModuleRef(_) => "a module reference",
            Value::Unknown(_) => "a value known only to Terraform",
        }
    }
}

impl Serialize for Value {
    /// The JSON shape Rego rules and `--format json` see: plain JSON, module references as
    /// `{"module_ref": "module.x.id"}`, unknown values as `{"unknown": "why"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match n.parse::<i64>() {
                Ok(i) => s.serialize_i64(i),
                Err(_) => match n.parse::<f64>() {
                    Ok(f) if f.is_finite() => s.serialize_f64(f),
                    _ => s.serialize_str(n),
                },
            },
            Value::String(v) => s.serialize_str(v),
            Value::List(items) => items.serialize(s),
            Value::Map(m) => m.serialize(s),
            Value::ModuleRef(r) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("module_ref", &r.to_string())?;
                map.end()
            }
            Value::Unknown(why) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("unknown", why)?;
                map.end()
            }
        }
    }
}

impl fmt::Display for Value {
    /// A compact HCL-like rendering for messages: strings bare, maps as `{k = "v"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(n),
            Value::String(s) if f.alternate() => write!(f, "{s:?}"),
            Value::String(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v:#}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {v:#}")?;
                }
                f.write_str("}")
            }
            Value::ModuleRef(r) => write!(f, "{r}"),
            Value::Unknown(_) => f.write_str("(known after apply)"),
        }
    }
}
