//! The attribute names of one body, for the fast path to refuse a name given twice (as
//! hcl-edit does).

/// The attribute names of one body: a short list, a set once it grows.
#[derive(Default)]
pub(super) struct Names<'a> {
    few: [&'a str; 16],
    len: usize,
    many: Option<std::collections::HashSet<&'a str>>,
}

impl<'a> Names<'a> {
    /// Whether `name` is new to the body.
    pub(super) fn insert(&mut self, name: &'a str) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(name);
        }
        if self.few[..self.len].contains(&name) {
            return false;
        }
        if self.len == self.few.len() {
            let mut set: std::collections::HashSet<&str> = self.few.iter().copied().collect();
            set.insert(name);
            self.many = Some(set);
        } else {
            self.few[self.len] = name;
            self.len += 1;
        }
        true
    }
}
