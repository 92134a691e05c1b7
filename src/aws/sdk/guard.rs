//! [`MemberGuard`] on the SDK: KMS, Config and CloudTrail inside a member account, and the
//! organization's trails from the management account.

use super::{HoldCheck, SdkMember, err};
use crate::aws::guard::{
    Channel, ConfigRuleState, KEY_TAG, Key, MemberGuard, Recorder, TrailState, rule_parameters,
};
use anyhow::{Result, anyhow};
use aws_config::SdkConfig;
use std::collections::BTreeMap;

pub(super) struct GuardClients {
    kms: aws_sdk_kms::Client,
    config: aws_sdk_config::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
}

impl GuardClients {
    pub(super) fn new(config: &SdkConfig, hold: HoldCheck) -> GuardClients {
        GuardClients {
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(config)
                    .interceptor(hold)
                    .build(),
            ),
            config: aws_sdk_config::Client::from_conf(
                aws_sdk_config::config::Builder::from(config)
                    .interceptor(hold)
                    .build(),
            ),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(
                aws_sdk_cloudtrail::config::Builder::from(config)
                    .interceptor(hold)
                    .build(),
            ),
        }
    }
}

/// The trails (`name`, or all), each with its status; organization trails only with `org`.
pub(super) async fn trails(
    ct: &aws_sdk_cloudtrail::Client,
    name: Option<&str>,
    org: bool,
) -> Result<Vec<TrailState>> {
    let out = ct
        .describe_trails()
        .set_trail_name_list(name.map(|n| vec![n.to_string()]))
        .include_shadow_trails(org)
        .send()
        .await
        .map_err(err)?;
    let mut all = Vec::new();
    for t in out.trail_list() {
        let organization = t.is_organization_trail().unwrap_or(false);
        if org && !organization {
            continue;
        }
        let arn = t.trail_arn().unwrap_or_default().to_string();
        let status = ct
            .get_trail_status()
            .name(if arn.is_empty() {
                t.name().unwrap_or_default()
            } else {
                &arn
            })
            .send()
            .await
            .map_err(err)?;
        let selectors = ct
            .get_event_selectors()
            .trail_name(if arn.is_empty() {
                t.name().unwrap_or_default()
            } else {
                &arn
            })
            .send()
            .await
            .map_err(err)?;
        // no selectors at all is a trail's default: every management event
        let default = selectors.advanced_event_selectors().is_empty()
            && selectors.event_selectors().is_empty();
        let management_events = default
            || selectors.advanced_event_selectors().is_empty()
                && selectors.event_selectors().iter().any(|s| {
                    s.include_management_events() == Some(true)
                        && s.read_write_type()
                            .is_none_or(|r| *r == aws_sdk_cloudtrail::types::ReadWriteType::All)
                        && s.exclude_management_event_sources().is_empty()
                });
        all.push(TrailState {
            name: t.name().unwrap_or_default().to_string(),
            arn,
            bucket: t.s3_bucket_name().unwrap_or_default().to_string(),
            multi_region: t.is_multi_region_trail().unwrap_or(false),
            global_events: t.include_global_service_events().unwrap_or(false),
            validation: t.log_file_validation_enabled().unwrap_or(false),
            kms_key: t.kms_key_id().map(str::to_string),
            organization,
            logging: status.is_logging().unwrap_or(false),
            management_events,
        });
    }
    Ok(all)
}

impl SdkMember {
    async fn describe_key(&self, key_id: &str) -> Result<Option<Key>> {
        match self.guard.kms.describe_key().key_id(key_id).send().await {
            Ok(out) => Ok(out.key_metadata().map(|m| {
                use aws_sdk_kms::types::{KeyManagerType, KeySpec, OriginType};
                Key {
                    id: m.key_id().to_string(),
                    arn: m.arn().unwrap_or_default().to_string(),
                    enabled: m.enabled(),
                    state: m
                        .key_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    plain: m.key_manager() != Some(&KeyManagerType::Aws)
                        && m.origin().is_none_or(|o| *o == OriginType::AwsKms)
                        && m.key_spec().is_none_or(|s| *s == KeySpec::SymmetricDefault)
                        && !m.multi_region().unwrap_or(false)
                        && m.custom_key_store_id().is_none(),
                }
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(err(e)),
        }
    }
}

impl MemberGuard for SdkMember {
    async fn key_by_alias(&self, alias: &str) -> Result<Option<Key>> {
        self.calls.read()?;
        self.describe_key(alias).await
    }

    async fn key_tagged(&self, alias: &str) -> Result<Option<Key>> {
        self.calls.read()?;
        let keys: Vec<_> = self
            .guard
            .kms
            .list_keys()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(err)?;
        for k in keys {
            let Some(id) = k.key_id() else { continue };
            self.calls.read()?;
            let tags = match self.guard.kms.list_resource_tags().key_id(id).send().await {
                Ok(t) => t,
                // AWS's own keys, and keys whose policy shuts orgvend out: not ours
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_not_found_exception())
                        || aws_sdk_kms::error::ProvideErrorMetadata::code(&e)
                            == Some("AccessDeniedException") =>
                {
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
            if tags
                .tags()
                .iter()
                .any(|t| t.tag_key() == KEY_TAG && t.tag_value() == alias)
                && let Some(key) = self.describe_key(id).await?
                && key.state != "PendingDeletion"
            {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    async fn create_key(&self, description: &str, policy: &str, alias: &str) -> Result<String> {
        self.calls.write()?;
        let tag = aws_sdk_kms::types::Tag::builder()
            .tag_key(KEY_TAG)
            .tag_value(alias)
            .build()
            .map_err(|e| anyhow!("{e}"))?;
        let out = self
            .guard
            .kms
            .create_key()
            .description(description)
            .policy(policy)
            .tags(tag)
            .send()
            .await
            .map_err(err)?;
        out.key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| anyhow!("CreateKey returned no key"))
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn enable_key(&self, key_id: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .kms
            .enable_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn cancel_key_deletion(&self, key_id: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .kms
            .cancel_key_deletion()
            .key_id(key_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn key_rotation(&self, key_id: &str) -> Result<bool> {
        self.calls.read()?;
        let out = self
            .guard
            .kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .map_err(err)?;
        Ok(out.key_rotation_enabled())
    }

    async fn enable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .kms
            .enable_key_rotation()
            .key_id(key_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn key_policy(&self, key_id: &str) -> Result<String> {
        self.calls.read()?;
        let out = self
            .guard
            .kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
            .map_err(err)?;
        Ok(out.policy().unwrap_or_default().to_string())
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .kms
            .put_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn recorders(&self) -> Result<Vec<Recorder>> {
        self.calls.read()?;
        let out = self
            .guard
            .config
            .describe_configuration_recorders()
            .send()
            .await
            .map_err(err)?;
        self.calls.read()?;
        let status = self
            .guard
            .config
            .describe_configuration_recorder_status()
            .send()
            .await
            .map_err(err)?;
        Ok(out
            .configuration_recorders()
            .iter()
            .map(|r| {
                let name = r.name().unwrap_or_default().to_string();
                let group = r.recording_group();
                Recorder {
                    recording: status
                        .configuration_recorders_status()
                        .iter()
                        .any(|s| s.name() == Some(name.as_str()) && s.recording()),
                    all_supported: group.is_some_and(|g| g.all_supported()),
                    include_global: group.is_some_and(|g| g.include_global_resource_types()),
                    role_arn: r.role_arn().unwrap_or_default().to_string(),
                    name,
                }
            })
            .collect())
    }

    async fn put_recorder(&self, name: &str, role_arn: &str) -> Result<()> {
        use aws_sdk_config::types::{ConfigurationRecorder, RecordingGroup};
        self.calls.write()?;
        self.guard
            .config
            .put_configuration_recorder()
            .configuration_recorder(
                ConfigurationRecorder::builder()
                    .name(name)
                    .role_arn(role_arn)
                    .recording_group(
                        RecordingGroup::builder()
                            .all_supported(true)
                            .include_global_resource_types(true)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn start_recorder(&self, name: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .config
            .start_configuration_recorder()
            .configuration_recorder_name(name)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn delivery_channels(&self) -> Result<Vec<Channel>> {
        self.calls.read()?;
        let out = self
            .guard
            .config
            .describe_delivery_channels()
            .send()
            .await
            .map_err(err)?;
        Ok(out
            .delivery_channels()
            .iter()
            .map(|c| Channel {
                name: c.name().unwrap_or_default().to_string(),
                bucket: c.s3_bucket_name().unwrap_or_default().to_string(),
                extras: c.s3_kms_key_arn().is_some_and(|k| !k.is_empty())
                    || c.s3_key_prefix().is_some_and(|p| !p.is_empty())
                    || c.sns_topic_arn().is_some_and(|t| !t.is_empty()),
            })
            .collect())
    }

    async fn put_delivery_channel(&self, name: &str, bucket: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .config
            .put_delivery_channel()
            .delivery_channel(
                aws_sdk_config::types::DeliveryChannel::builder()
                    .name(name)
                    .s3_bucket_name(bucket)
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn config_rules(&self) -> Result<Vec<ConfigRuleState>> {
        self.calls.read()?;
        let rules: Vec<_> = self
            .guard
            .config
            .describe_config_rules()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(err)?;
        Ok(rules
            .iter()
            .map(|r| ConfigRuleState {
                name: r.config_rule_name().unwrap_or_default().to_string(),
                identifier: r
                    .source()
                    .and_then(|s| s.source_identifier())
                    .unwrap_or_default()
                    .to_string(),
                parameters: r.input_parameters().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn put_config_rule(
        &self,
        name: &str,
        identifier: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()> {
        use aws_sdk_config::types::{ConfigRule, Owner, Source};
        self.calls.write()?;
        let source = Source::builder()
            .owner(Owner::Aws)
            .source_identifier(identifier)
            .build()
            .map_err(|e| anyhow!("{e}"))?;
        self.guard
            .config
            .put_config_rule()
            .config_rule(
                ConfigRule::builder()
                    .config_rule_name(name)
                    .description("orgvend: part of the account's baseline")
                    .source(source)
                    .input_parameters(rule_parameters(parameters))
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn config_role(&self) -> Result<Option<String>> {
        self.calls.read()?;
        let out = self
            .iam
            .list_roles()
            .path_prefix("/aws-service-role/config.amazonaws.com/")
            .send()
            .await
            .map_err(err)?;
        Ok(out.roles().first().map(|r| r.arn().to_string()))
    }

    async fn create_config_role(&self) -> Result<String> {
        self.calls.write()?;
        let out = self
            .iam
            .create_service_linked_role()
            .aws_service_name("config.amazonaws.com")
            .send()
            .await
            .map_err(err)?;
        out.role()
            .map(|r| r.arn().to_string())
            .ok_or_else(|| anyhow!("CreateServiceLinkedRole returned no role"))
    }

    async fn trail(&self, name: &str) -> Result<Option<TrailState>> {
        self.calls.read()?;
        Ok(trails(&self.guard.cloudtrail, Some(name), false)
            .await?
            .into_iter()
            .find(|t| t.name == name))
    }

    async fn create_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .cloudtrail
            .create_trail()
            .name(name)
            .s3_bucket_name(bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .kms_key_id(kms_key)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn update_trail(&self, name: &str, bucket: &str, kms_key: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .cloudtrail
            .update_trail()
            .name(name)
            .s3_bucket_name(bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .kms_key_id(kms_key)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn start_logging(&self, name: &str) -> Result<()> {
        self.calls.write()?;
        self.guard
            .cloudtrail
            .start_logging()
            .name(name)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn reset_event_selectors(&self, name: &str) -> Result<()> {
        use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType};
        self.calls.write()?;
        self.guard
            .cloudtrail
            .put_event_selectors()
            .trail_name(name)
            .event_selectors(
                EventSelector::builder()
                    .read_write_type(ReadWriteType::All)
                    .include_management_events(true)
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }
}
