//! What an approval of an account covers, as a digest of its declared values.

use super::{Account, Field, Value};

impl Account {
    /// What an approval of this account covers, as a digest: its declared values (name,
    /// email, role, adoption, alias, type, tags, access), not where or how they are written.
    /// The apply keeps it for each account it applied; a repair runs only where the target
    /// branch still declares exactly that.
    pub fn declared_digest(&self) -> String {
        use sha2::Digest;
        fn value(f: &Option<Field>) -> Option<&Value> {
            f.as_ref().map(|f| &f.value)
        }
        let canonical = serde_json::json!([
            value(&self.name),
            value(&self.email).map(|v| v.as_str().map(str::to_lowercase)),
            value(&self.role_name),
            value(&self.adopt),
            value(&self.alias),
            value(&self.account_type),
            value(&self.tags),
            value(&self.access),
        ]);
        sha2::Sha256::digest(canonical.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
