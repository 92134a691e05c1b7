//! The budget of a directory's evaluation: how much of the values it already has it may copy.

use super::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a directory's evaluation may copy of values it already has, in units of about a
/// byte (a string's bytes, one for each value): every local, variable or part of one that an
/// expression names, each time it is copied, every interpolation, every function's
/// arguments. Values written out in the files cost nothing; copies are what can grow faster
/// than the text. Thirty lines of `l2 = [local.l1, local.l1]` doubled a value thirty times
/// and took the process's memory; `"${local.c1}x"` chained 40,000 times copied 800 MB. Past
/// the budget, what would be copied is unknown, and says why: an account's value then
/// blocks the change, as any value unknown offline does.
pub(super) const BUDGET_FLOOR: usize = 1 << 20;
/// The budget for each byte of the directory's files, beyond the floor.
pub(super) const BUDGET_PER_BYTE: usize = 16;
const TOO_LARGE: &str = "copying it would go past what orgvend evaluates offline for the \
                         directory (a local or variable named over and over, or doubled)";

/// Units left of a directory's budget, shared by every fork.
#[derive(Debug)]
pub(super) struct Budget(AtomicUsize);

impl Budget {
    pub(super) fn new(units: usize) -> Budget {
        Budget(AtomicUsize::new(units))
    }

    /// Takes `units`, or refuses and spends the rest: after one refusal, every copy is
    /// refused. (Which copy is refused first may depend on which thread asked first, where
    /// forks on two cores share the budget.)
    pub(super) fn take(&self, units: usize) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(units))
            })
            .is_ok_and(|left| left >= units)
    }

    pub(super) fn left(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Takes the units of `values` together, counted no further than what is left, or
    /// refuses as [`Budget::take`] does.
    pub(super) fn take_values<'v>(&self, values: impl IntoIterator<Item = &'v Value>) -> bool {
        let mut sum = 0usize;
        for v in values {
            match units_within(v, self.left().saturating_sub(sum)) {
                Some(units) => sum += units,
                None => return self.take(usize::MAX),
            }
        }
        self.take(sum)
    }
}

/// What a copy past the budget is.
pub(super) fn too_large() -> Value {
    Value::Unknown(TOO_LARGE.into())
}

/// The units of `v`, counted only up to `limit` (`None` past it).
fn units_within(v: &Value, limit: usize) -> Option<usize> {
    fn walk(v: &Value, left: &mut usize) -> bool {
        let own = match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Number(s) | Value::String(s) | Value::Unknown(s) => 1 + s.len(),
            Value::ModuleRef(r) => 1 + r.module.len() + r.attr.len(),
            Value::List(items) => {
                if *left == 0 {
                    return false;
                }
                *left -= 1;
                return items.iter().all(|i| walk(i, left));
            }
            Value::Map(m) => {
                if *left == 0 {
                    return false;
                }
                *left -= 1;
                return m.iter().all(|(k, v)| {
                    let key = k.len();
                    *left >= key && {
                        *left -= key;
                        walk(v, left)
                    }
                });
            }
        };
        *left >= own && {
            *left -= own;
            true
        }
    }
    let mut left = limit;
    walk(v, &mut left).then(|| limit - left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decl::value::{Map, ModuleRef};

    #[test]
    fn a_value_counts_its_strings_keys_and_values_and_stops_at_the_limit() {
        let mut m = Map::new();
        m.insert("owner".into(), Value::String("platform".into())); // 5 + 1 + 8
        m.insert(
            "ids".into(),
            Value::List(vec![Value::Null, Value::Bool(true)]),
        ); // 3 + 1 + 2
        let r = Value::ModuleRef(Box::new(ModuleRef {
            module: "a".into(),
            attr: "id".into(),
        }));
        let v = Value::List(vec![Value::Map(m), r, Value::Number("12".into())]);
        // the list, the map, then 14 + 6, the reference 1 + 3, the number 1 + 2
        let units = 1 + 1 + 14 + 6 + 4 + 3;
        assert_eq!(units_within(&v, 1000), Some(units));
        assert_eq!(units_within(&v, units), Some(units));
        assert_eq!(units_within(&v, units - 1), None);
        assert_eq!(units_within(&v, 0), None);
    }

    #[test]
    fn a_budget_refuses_what_it_has_not_and_is_spent_by_a_refusal() {
        let b = Budget::new(10);
        assert!(b.take(4));
        assert_eq!(b.left(), 6);
        assert!(!b.take(7), "more than is left");
        assert_eq!(b.left(), 0, "a refusal spends the rest");
        assert!(!b.take(1));
        assert!(b.take(0));
    }
}
