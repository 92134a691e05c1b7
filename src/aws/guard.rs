//! The account's guard in orgvend's words: its KMS key, AWS Config (recorder, delivery
//! channel, rules) and CloudTrail, inside a member account. One API call (or one listing) per
//! method, so a caller can always check before it changes.

use anyhow::Result;
use std::collections::BTreeMap;
use std::future::Future;

/// The tag orgvend puts on the key it creates (its value: the alias), so a key made just
/// before a crash is found again, not made twice.
pub const KEY_TAG: &str = "orgvend:alias";

/// A KMS key as the guard cares about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Key {
    pub id: String,
    pub arn: String,
    pub enabled: bool,
    /// `PendingDeletion`, `Disabled`, `Enabled`, …
    pub state: String,
    /// A plain key orgvend can vouch for: customer managed, key material made by KMS (not
    /// imported, no external key store), symmetric, single-region.
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorder {
    pub name: String,
    pub all_supported: bool,
    pub include_global: bool,
    pub role_arn: String,
    pub recording: bool,
}

/// A delivery channel as the guard cares about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Channel {
    pub name: String,
    pub bucket: String,
    /// Anything set besides the bucket (a KMS key, a key prefix, an SNS topic): orgvend's
    /// channel has none, so nobody else's key or topic can stop delivery.
    pub extras: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigRuleState {
    pub name: String,
    pub identifier: String,
    /// The rule's `InputParameters`, as JSON.
    pub parameters: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrailState {
    pub name: String,
    pub arn: String,
    pub bucket: String,
    pub multi_region: bool,
    /// Whether it logs global services' events (IAM, STS, CloudFront).
    pub global_events: bool,
    pub validation: bool,
    pub kms_key: Option<String>,
    pub organization: bool,
    pub logging: bool,
    /// Whether its event selectors log every management event (read and write, no event
    /// source left out).
    pub management_events: bool,
}

/// Inside one member account: the guard's calls.
pub trait MemberGuard: Send + Sync + 'static {
    /// The key the alias points at.
    fn key_by_alias(&self, alias: &str) -> impl Future<Output = Result<Option<Key>>> + Send;
    /// A key orgvend created for `alias` (its [`KEY_TAG`]), with or without the alias.
    fn key_tagged(&self, alias: &str) -> impl Future<Output = Result<Option<Key>>> + Send;
    /// Creates a key tagged for `alias`; returns its id.
    fn create_key(
        &self,
        description: &str,
        policy: &str,
        alias: &str,
    ) -> impl Future<Output = Result<String>> + Send;
    fn create_alias(&self, alias: &str, key_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn enable_key(&self, key_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn cancel_key_deletion(&self, key_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn key_rotation(&self, key_id: &str) -> impl Future<Output = Result<bool>> + Send;
    fn enable_key_rotation(&self, key_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn key_policy(&self, key_id: &str) -> impl Future<Output = Result<String>> + Send;
    fn put_key_policy(&self, key_id: &str, policy: &str)
    -> impl Future<Output = Result<()>> + Send;

    /// Config's recorders (a region has at most one), with whether each is recording.
    fn recorders(&self) -> impl Future<Output = Result<Vec<Recorder>>> + Send;
    /// Creates or updates the recorder: all supported resources, global ones included.
    fn put_recorder(&self, name: &str, role_arn: &str) -> impl Future<Output = Result<()>> + Send;
    fn start_recorder(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn delivery_channels(&self) -> impl Future<Output = Result<Vec<Channel>>> + Send;
    fn put_delivery_channel(
        &self,
        name: &str,
        bucket: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn config_rules(&self) -> impl Future<Output = Result<Vec<ConfigRuleState>>> + Send;
    fn put_config_rule(
        &self,
        name: &str,
        identifier: &str,
        parameters: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Config's service-linked role, found by its path (its name differs between AWS and
    /// emulators).
    fn config_role(&self) -> impl Future<Output = Result<Option<String>>> + Send;
    fn create_config_role(&self) -> impl Future<Output = Result<String>> + Send;

    fn trail(&self, name: &str) -> impl Future<Output = Result<Option<TrailState>>> + Send;
    /// Creates the trail: multi-region, log-file validation on, encrypted with `kms_key`.
    fn create_trail(
        &self,
        name: &str,
        bucket: &str,
        kms_key: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Puts the trail's settings back to the same.
    fn update_trail(
        &self,
        name: &str,
        bucket: &str,
        kms_key: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn start_logging(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// The trail logs every management event again (one basic selector: all, read and write).
    fn reset_event_selectors(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The `InputParameters` of a rule: its parameters as a JSON object (`{}` for none).
pub fn rule_parameters(parameters: &BTreeMap<String, String>) -> String {
    serde_json::to_string(parameters).unwrap_or_else(|_| "{}".into())
}

/// Whether two `InputParameters` say the same (absent and `{}` are the same).
pub fn same_parameters(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> serde_json::Value {
        if s.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
        }
    };
    parse(a) == parse(b)
}
