//! An account's tags as the plan keeps them.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;

/// Tags, sorted by key, each key once. A plan keeps one set per account: as a `BTreeMap`, three
/// tags were a node of eleven slots (544 bytes), 5.4 MB at 10,000 accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As the steps and the AWS calls take them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

/// In any order; where a key repeats, the last value wins (as in a map).
impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Tags {
        let mut tags: Vec<(String, String)> = Vec::new();
        for (k, v) in iter {
            let (k, v) = (k.into(), v.into());
            match tags.binary_search_by(|(have, _)| have.as_str().cmp(&k)) {
                Ok(i) => tags[i].1 = v,
                Err(i) => tags.insert(i, (k, v)),
            }
        }
        Tags(tags)
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::Tags;
    use std::collections::BTreeMap;

    #[test]
    fn keeps_a_maps_order_lookups_and_last_value() {
        let pairs = [
            ("owner", "a"),
            ("client", "c1"),
            ("cost-center", "x"),
            ("owner", "b"),
        ];
        let tags: Tags = pairs.into_iter().collect();
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(tags.to_map(), map);
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            map.iter().collect::<Vec<_>>()
        );
        assert_eq!(tags.len(), 3);
        assert_eq!(tags.get("owner").map(String::as_str), Some("b"));
        assert!(tags.contains_key("client") && !tags.contains_key("Client"));
        assert_eq!(
            serde_json::to_string(&tags).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert!(Tags::default().is_empty());
    }
}
