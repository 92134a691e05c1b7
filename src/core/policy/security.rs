//! `[baseline.kms]`, `[baseline.config]`, `[baseline.cloudtrail]` and their overrides per
//! account type (`[baseline.types.<type>]`): the account's KMS key, its AWS Config recorder,
//! delivery channel and rules, and its CloudTrail (or the organization trail, verified).
//! Every error names file:line; the documented reference is `docs/policy.md`.

use super::PolicyError;
use super::spans::Spans;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// What secures each account beyond its roles, per account type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Security {
    pub default: Guard,
    pub types: BTreeMap<String, Guard>,
}

impl Security {
    /// The guard of an account type (its overrides over the defaults).
    pub fn of(&self, account_type: Option<&str>) -> &Guard {
        account_type
            .and_then(|t| self.types.get(t))
            .unwrap_or(&self.default)
    }
}

/// One account type's key, Config and trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Guard {
    pub kms: Option<Kms>,
    pub config: Option<Config>,
    pub cloudtrail: Trail,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kms {
    /// `alias/…`, `{alias}` and `{name}` filled in.
    pub alias: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The recorder's name when the account has none (an existing one is adopted).
    pub recorder: String,
    /// The central bucket the delivery channel writes to.
    pub bucket: String,
    pub rules: Vec<Rule>,
}

/// An AWS managed Config rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// The managed rule's source identifier (`CLOUD_TRAIL_ENABLED`).
    pub identifier: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Trail {
    /// No trail for this type.
    #[default]
    Off,
    /// The organization's trail covers the account: verified from the management account.
    Organization,
    /// A multi-region trail in the account, to a central bucket, encrypted with the key.
    Account { name: String, bucket: String },
}

/// The default set of Config rules: AWS managed rules every account should pass.
pub fn default_rules() -> Vec<Rule> {
    let rule = |name: &str, identifier: &str, params: &[(&str, &str)]| Rule {
        name: name.into(),
        identifier: identifier.into(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    vec![
        rule("cloudtrail-enabled", "CLOUD_TRAIL_ENABLED", &[]),
        rule("root-account-mfa-enabled", "ROOT_ACCOUNT_MFA_ENABLED", &[]),
        rule(
            "iam-root-access-key-check",
            "IAM_ROOT_ACCESS_KEY_CHECK",
            &[],
        ),
        rule(
            "s3-bucket-public-read-prohibited",
            "S3_BUCKET_PUBLIC_READ_PROHIBITED",
            &[],
        ),
        rule("encrypted-volumes", "ENCRYPTED_VOLUMES", &[]),
        rule("restricted-ssh", "INCOMING_SSH_DISABLED", &[]),
        rule(
            "access-keys-rotated",
            "ACCESS_KEYS_ROTATED",
            &[("maxAccessKeyAge", "90")],
        ),
    ]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuardConf {
    pub(super) kms: Option<Spanned<KmsConf>>,
    pub(super) config: Option<Spanned<ConfigConf>>,
    pub(super) cloudtrail: Option<Spanned<TrailConf>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KmsConf {
    enabled: Option<bool>,
    alias: Option<Spanned<String>>,
    description: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigConf {
    enabled: Option<bool>,
    recorder: Option<String>,
    bucket: Option<Spanned<String>>,
    rules: Option<Vec<Rule>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrailConf {
    mode: Option<Spanned<String>>,
    name: Option<String>,
    bucket: Option<Spanned<String>>,
}

/// The baseline's defaults (`[baseline.kms]` …) and each type's overrides, compiled.
pub(super) fn compile(
    spans: &Spans<'_>,
    default: GuardConf,
    types: BTreeMap<String, Spanned<GuardConf>>,
    known_types: &[String],
) -> Result<Security, PolicyError> {
    let base = guard(spans, &default, None)?;
    let mut out = Security {
        default: base.clone(),
        types: BTreeMap::new(),
    };
    let known_types: std::collections::HashSet<&str> =
        known_types.iter().map(String::as_str).collect();
    for (ty, conf) in types {
        if !known_types.contains(ty.as_str()) {
            return Err(spans.err(
                conf.span(),
                format!("baseline.types.{ty}: there is no account type `{ty}` in [types]"),
            ));
        }
        let merged = guard(spans, conf.get_ref(), Some(&default))?;
        out.types.insert(ty, merged);
    }
    Ok(out)
}

/// One guard: `conf`'s sections over `under`'s (field by field), over the built-in defaults.
fn guard(
    spans: &Spans<'_>,
    conf: &GuardConf,
    under: Option<&GuardConf>,
) -> Result<Guard, PolicyError> {
    let kms_low = under
        .and_then(|u| u.kms.as_ref())
        .map(|k| k.get_ref().clone());
    let kms_high = conf.kms.as_ref().map(|k| k.get_ref().clone());
    let kms = merge_kms(kms_low, kms_high);
    let present = conf.kms.is_some() || under.is_some_and(|u| u.kms.is_some());
    let kms = if kms.enabled.unwrap_or(present) {
        let alias = kms
            .alias
            .clone()
            .map(Spanned::into_inner)
            .unwrap_or_else(|| "alias/orgvend-{alias}".into());
        if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") {
            let at = kms.alias.as_ref().map(|a| a.span()).unwrap_or(0..0);
            return Err(spans.err(
                at,
                format!("baseline.kms.alias `{alias}` must start with alias/ (and not alias/aws/, AWS's own)"),
            ));
        }
        Some(Kms {
            alias,
            description: kms
                .description
                .unwrap_or_else(|| "orgvend: the account's key".into()),
        })
    } else {
        None
    };

    let cfg_low = under
        .and_then(|u| u.config.as_ref())
        .map(|c| c.get_ref().clone());
    let cfg_high = conf.config.as_ref().map(|c| c.get_ref().clone());
    let cfg = merge_config(cfg_low, cfg_high);
    let present = conf.config.is_some() || under.is_some_and(|u| u.config.is_some());
    let config = if cfg.enabled.unwrap_or(present) {
        let Some(bucket) = cfg.bucket.clone() else {
            let at = conf
                .config
                .as_ref()
                .or(under.and_then(|u| u.config.as_ref()))
                .map(|c| c.span())
                .unwrap_or(0..0);
            return Err(spans.err(
                at,
                "baseline.config needs bucket: the central bucket the delivery channel writes to",
            ));
        };
        let rules = cfg.rules.unwrap_or_else(default_rules);
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if !seen.insert(&r.name) || r.name.is_empty() || r.identifier.is_empty() {
                return Err(spans.err(
                    bucket.span(),
                    format!(
                        "baseline.config.rules: `{}` is named twice, or has no name or identifier",
                        r.name
                    ),
                ));
            }
        }
        Some(Config {
            recorder: cfg.recorder.unwrap_or_else(|| "default".into()),
            bucket: bucket.into_inner(),
            rules,
        })
    } else {
        None
    };

    let tr_low = under
        .and_then(|u| u.cloudtrail.as_ref())
        .map(|c| c.get_ref().clone());
    let tr_high = conf.cloudtrail.as_ref().map(|c| c.get_ref().clone());
    let tr = merge_trail(tr_low, tr_high);
    let mode = tr.mode.clone();
    let cloudtrail = match tr.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("off") => Trail::Off,
        Some("organization") => Trail::Organization,
        Some("account") => {
            let Some(bucket) = tr.bucket else {
                return Err(spans.err(
                    tr.mode.as_ref().map(|m| m.span()).unwrap_or(0..0),
                    "baseline.cloudtrail mode \"account\" needs bucket: the central bucket the trail writes to",
                ));
            };
            Trail::Account {
                name: tr.name.unwrap_or_else(|| "orgvend-trail".into()),
                bucket: bucket.into_inner(),
            }
        }
        Some(other) => {
            return Err(spans.err(
                tr.mode.as_ref().map(|m| m.span()).unwrap_or(0..0),
                format!("baseline.cloudtrail.mode `{other}`: use \"organization\", \"account\" or \"off\""),
            ));
        }
    };
    if matches!(cloudtrail, Trail::Account { .. }) && kms.is_none() {
        return Err(spans.err(
            mode.as_ref().map(|m| m.span()).unwrap_or(0..0),
            "baseline.cloudtrail mode \"account\" encrypts the trail with the account's key: turn on baseline.kms",
        ));
    }
    Ok(Guard {
        kms,
        config,
        cloudtrail,
    })
}

fn merge_kms(low: Option<KmsConf>, high: Option<KmsConf>) -> KmsConf {
    let (low, high) = (low.unwrap_or_default(), high.unwrap_or_default());
    KmsConf {
        enabled: high.enabled.or(low.enabled),
        alias: high.alias.or(low.alias),
        description: high.description.or(low.description),
    }
}

fn merge_config(low: Option<ConfigConf>, high: Option<ConfigConf>) -> ConfigConf {
    let (low, high) = (low.unwrap_or_default(), high.unwrap_or_default());
    ConfigConf {
        enabled: high.enabled.or(low.enabled),
        recorder: high.recorder.or(low.recorder),
        bucket: high.bucket.or(low.bucket),
        rules: high.rules.or(low.rules),
    }
}

fn merge_trail(low: Option<TrailConf>, high: Option<TrailConf>) -> TrailConf {
    let (low, high) = (low.unwrap_or_default(), high.unwrap_or_default());
    TrailConf {
        mode: high.mode.or(low.mode),
        name: high.name.or(low.name),
        bucket: high.bucket.or(low.bucket),
    }
}
