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

    /// Sorts the entries from `from` on in among those before it (sorted already), keeping
    /// the last of a repeated key, as [`Self::insert`] one by one would. Sorted once: inserted
    /// one by one, each entry out of order moved every entry after it, and a `locals` map of
    /// 100,000 entries written out of key order took seconds to build.
    fn settle(&mut self, from: usize) {
        let ascending = |a: &(String, V), b: &(String, V)| a.0 < b.0;
        if self.0[from.saturating_sub(1)..].is_sorted_by(ascending) {
            return; // each new key after the last: most maps are written in key order
        }
        // stable: of equal keys, the one added last stays last
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        self.0.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
    }
}

/// Where a key repeats, the last value wins.
impl<V> Extend<(String, V)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, iter: I) {
        let from = self.0.len();
        self.0.extend(iter);
        self.settle(from);
    }
}

/// In any order; where a key repeats, the last value wins (as in a map).
impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> SortedMap<V> {
        let mut m = SortedMap(iter.into_iter().collect());
        m.settle(0);
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

#[cfg(test)]
mod tests {
    use super::SortedMap;
    use crate::core::testing::Rng;
    use std::collections::BTreeMap;

    /// What inserting one by one gives: each key once, in key order, the last value.
    fn one_by_one(entries: &[(String, usize)]) -> Vec<(String, usize)> {
        let mut m = BTreeMap::new();
        for (k, v) in entries {
            m.insert(k.clone(), *v);
        }
        m.into_iter().collect()
    }

    #[test]
    fn a_map_gathered_in_any_order_is_the_map_inserted_one_by_one() {
        let mut rng = Rng(0x5eed_0a11);
        let mut sorted_paths = 0;
        for round in 0..2_000 {
            let n = rng.below(40);
            // few distinct keys, so that many repeat; sometimes written in key order
            let keys = 1 + rng.below(30);
            let mut entries: Vec<(String, usize)> = (0..n)
                .map(|i| (format!("k{:02}", rng.below(keys)), i))
                .collect();
            if round % 4 == 0 {
                entries.sort();
                entries.dedup_by(|a, b| a.0 == b.0);
                sorted_paths += 1;
            }
            let whole: SortedMap<usize> = entries.iter().cloned().collect();
            assert_eq!(whole.0, one_by_one(&entries), "round {round}: {entries:?}");

            // extended in two steps: the second's values win over the first's
            let cut = rng.below(entries.len() + 1);
            let mut two: SortedMap<usize> = entries[..cut].iter().cloned().collect();
            two.extend(entries[cut..].iter().cloned());
            assert_eq!(two.0, one_by_one(&entries), "round {round}, cut {cut}");
            let mut inserted = SortedMap::new();
            for (k, v) in &entries {
                inserted.insert(k.clone(), *v);
            }
            assert_eq!(inserted.0, whole.0, "round {round}");
        }
        assert!(sorted_paths > 100);
    }
}
