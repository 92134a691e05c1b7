//! Values of module attributes after `var.*`, `local.*` and `merge(...)` are resolved.

use serde::ser::{Serialize, SerializeMap, Serializer};
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
    Map(Map),
    /// `module.<name>.<attr>...`, as a dotted path without the `module.` prefix parts split.
    /// Boxed: the one variant of two strings would make every value half as large again
    /// (48 bytes rather than 32), in every attribute, tag and account.
    ModuleRef(Box<ModuleRef>),
    /// Why the value could not be resolved offline.
    Unknown(String),
}

/// An HCL object's entries.
pub type Map = SortedMap<Value>;

/// A few entries, sorted by key, each key once: an HCL object's ([`Map`]), an account's tags in
/// the plan. (A `BTreeMap` allocates a node of eleven slots per map; with a tag map in every
/// module that was a third of the reader's memory.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedMap<V>(Vec<(String, V)>);

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<V> SortedMap<V> {
    pub fn new() -> SortedMap<V> {
        SortedMap(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Inserts or replaces.
    pub fn insert(&mut self, key: String, value: V) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> Extend<(String, V)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// In any order; where a key repeats, the last value wins (as in a map).
impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> SortedMap<V> {
        let mut m = SortedMap::new();
        m.extend(iter);
        m
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<V> std::ops::Index<&str> for SortedMap<V> {
    type Output = V;
    fn index(&self, key: &str) -> &V {
        self.get(key).expect("no such key in the map")
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
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

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text a scalar has inside a string template.
    pub(crate) fn template_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::String(s) | Value::Number(s) => Some(std::borrow::Cow::Borrowed(s)),
            Value::Bool(true) => Some(std::borrow::Cow::Borrowed("true")),
            Value::Bool(false) => Some(std::borrow::Cow::Borrowed("false")),
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
