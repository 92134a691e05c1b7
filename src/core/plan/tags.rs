//! An account's tags as the plan keeps them.

use crate::core::decl::SortedMap;
use std::collections::BTreeMap;

/// Tags, sorted by key, each key once. A plan keeps one set per account: as a `BTreeMap`, three
/// tags were a node of eleven slots (544 bytes), 5.4 MB at 10,000 accounts.
pub type Tags = SortedMap<String>;

impl SortedMap<String> {
    /// As the steps and the AWS calls take them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
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
        let tags: Tags = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
