//! [`MemberAws`] on the SDK: IAM, S3 and DynamoDB inside a member account, through the
//! session of the role assumed there.

use super::{code_of, err};
use crate::aws::{AwsError, BucketState, Calls, ManagedPolicy, MemberAws, RoleState};
use anyhow::{Context, Result};
use std::sync::Arc;

pub struct SdkMember {
    pub(super) account_id: String,
    pub(super) region: String,
    pub(super) iam: aws_sdk_iam::Client,
    pub(super) s3: aws_sdk_s3::Client,
    pub(super) dynamodb: aws_sdk_dynamodb::Client,
    pub(super) guard: super::guard::GuardClients,
    pub(super) calls: Arc<Calls>,
}

impl SdkMember {
    fn policy_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:policy/{name}", self.account_id)
    }
}

impl MemberAws for SdkMember {
    fn account_id(&self) -> &str {
        &self.account_id
    }

    async fn alias(&self) -> Result<Option<String>> {
        self.calls.read()?;
        let out = self.iam.list_account_aliases().send().await.map_err(err)?;
        Ok(out.account_aliases().first().cloned())
    }

    async fn set_alias(&self, alias: &str, replacing: Option<&str>) -> Result<()> {
        if let Some(old) = replacing {
            self.calls.write()?;
            self.iam
                .delete_account_alias()
                .account_alias(old)
                .send()
                .await
                .map_err(err)?;
        }
        self.calls.write()?;
        self.iam
            .create_account_alias()
            .account_alias(alias)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn saml_provider(&self, name: &str) -> Result<Option<String>> {
        self.calls.read()?;
        let out = self.iam.list_saml_providers().send().await.map_err(err)?;
        let suffix = format!(":saml-provider/{name}");
        Ok(out
            .saml_provider_list()
            .iter()
            .filter_map(|p| p.arn())
            .find(|a| a.ends_with(&suffix))
            .map(str::to_string))
    }

    async fn create_saml_provider(&self, name: &str, metadata: &str) -> Result<String> {
        self.calls.write()?;
        let out = self
            .iam
            .create_saml_provider()
            .name(name)
            .saml_metadata_document(metadata)
            .send()
            .await
            .map_err(err)?;
        out.saml_provider_arn()
            .map(str::to_string)
            .context("CreateSAMLProvider answered without an ARN")
    }

    async fn policy(&self, name: &str) -> Result<Option<ManagedPolicy>> {
        let arn = self.policy_arn(name);
        self.calls.read()?;
        let policy = match self.iam.get_policy().policy_arn(&arn).send().await {
            Ok(out) => out,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let default = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .context("GetPolicy answered without a default version")?
            .to_string();
        self.calls.read()?;
        let version = self
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&default)
            .send()
            .await
            .map_err(err)?;
        let document = version
            .policy_version()
            .and_then(|v| v.document())
            .map(|d| {
                urlencoding::decode(d)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| d.to_string())
            })
            .unwrap_or_default();
        self.calls.read()?;
        let versions = self
            .iam
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(err)?;
        let mut others: Vec<(Option<aws_sdk_iam::primitives::DateTime>, String)> = versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .filter_map(|v| Some((v.create_date().cloned(), v.version_id()?.to_string())))
            .collect();
        others.sort_by(|a, b| {
            let key = |d: &Option<aws_sdk_iam::primitives::DateTime>| {
                d.map(|d| (d.secs(), d.subsec_nanos()))
            };
            key(&a.0).cmp(&key(&b.0)).then_with(|| a.1.cmp(&b.1))
        });
        Ok(Some(ManagedPolicy {
            arn,
            document,
            other_versions: others.into_iter().map(|(_, id)| id).collect(),
        }))
    }

    async fn create_policy_version(&self, name: &str, document: &str) -> Result<()> {
        self.calls.write()?;
        self.iam
            .create_policy_version()
            .policy_arn(self.policy_arn(name))
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn delete_policy_version(&self, name: &str, version_id: &str) -> Result<()> {
        self.calls.write()?;
        self.iam
            .delete_policy_version()
            .policy_arn(self.policy_arn(name))
            .version_id(version_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn create_policy(&self, name: &str, document: &str) -> Result<String> {
        self.calls.write()?;
        let out = self
            .iam
            .create_policy()
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(err)?;
        out.policy()
            .and_then(|p| p.arn())
            .map(str::to_string)
            .context("CreatePolicy answered without an ARN")
    }

    async fn role(&self, name: &str) -> Result<Option<RoleState>> {
        self.calls.read()?;
        let role = match self.iam.get_role().role_name(name).send().await {
            Ok(out) => out,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let boundary = role
            .role()
            .and_then(|r| r.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string);
        self.calls.read()?;
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(err)?;
        let trust = role
            .role()
            .and_then(|r| r.assume_role_policy_document())
            .map(|d| {
                urlencoding::decode(d)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| d.to_string())
            });
        Ok(Some(RoleState {
            trust,
            boundary,
            attached: attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_string)
                .collect(),
        }))
    }

    async fn create_role(&self, name: &str, trust: &str, boundary: Option<&str>) -> Result<()> {
        self.calls.write()?;
        self.iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .set_permissions_boundary(boundary.map(str::to_string))
            .description("Managed by orgvend: access through single sign-on")
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn update_trust(&self, role: &str, trust: &str) -> Result<()> {
        self.calls.write()?;
        self.iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(trust)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn oidc_provider(&self, url: &str) -> Result<Option<String>> {
        self.calls.read()?;
        let out = self
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(err)?;
        let suffix = format!(":oidc-provider/{}", crate::core::baseline::oidc_host(url));
        Ok(out
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn())
            .find(|a| a.ends_with(&suffix))
            .map(str::to_string))
    }

    async fn create_oidc_provider(&self, url: &str, audience: &str) -> Result<String> {
        self.calls.write()?;
        let out = self
            .iam
            .create_open_id_connect_provider()
            .url(url)
            .client_id_list(audience)
            .send()
            .await
            .map_err(err)?;
        out.open_id_connect_provider_arn()
            .map(str::to_string)
            .context("CreateOpenIDConnectProvider answered without an ARN")
    }

    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> Result<()> {
        self.calls.write()?;
        self.iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn put_role_boundary(&self, role: &str, boundary_arn: &str) -> Result<()> {
        self.calls.write()?;
        self.iam
            .put_role_permissions_boundary()
            .role_name(role)
            .permissions_boundary(boundary_arn)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketState>> {
        self.calls.read()?;
        if let Err(e) = self.s3.head_bucket().bucket(name).send().await {
            let status = e.raw_response().map(|r| r.status().as_u16());
            return match status {
                Some(404) => Ok(None),
                Some(403) => Err(AwsError {
                    code: Some("BucketAlreadyExists".into()),
                    message: format!("the bucket name {name} belongs to another AWS account; choose another state_bucket template"),
                }
                .into()),
                _ => Err(err(e)),
            };
        }
        self.calls.read()?;
        let versioning = self
            .s3
            .get_bucket_versioning()
            .bucket(name)
            .send()
            .await
            .map_err(err)?;
        let versioned =
            versioning.status() == Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled);
        self.calls.read()?;
        let encrypted = match self.s3.get_bucket_encryption().bucket(name).send().await {
            Ok(out) => out
                .server_side_encryption_configuration()
                .is_some_and(|c| !c.rules().is_empty()),
            Err(e) if code_of(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                false
            }
            Err(e) => return Err(err(e)),
        };
        self.calls.read()?;
        let public_access_blocked =
            match self.s3.get_public_access_block().bucket(name).send().await {
                Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
                    c.block_public_acls() == Some(true)
                        && c.ignore_public_acls() == Some(true)
                        && c.block_public_policy() == Some(true)
                        && c.restrict_public_buckets() == Some(true)
                }),
                Err(e) if code_of(&e) == Some("NoSuchPublicAccessBlockConfiguration") => false,
                Err(e) => return Err(err(e)),
            };
        Ok(Some(BucketState {
            versioned,
            encrypted,
            public_access_blocked,
        }))
    }

    async fn create_bucket(&self, name: &str) -> Result<()> {
        let mut req = self.s3.create_bucket().bucket(name);
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        self.region.as_str(),
                    ))
                    .build(),
            );
        }
        self.calls.write()?;
        req.send().await.map_err(err)?;
        Ok(())
    }

    async fn enable_versioning(&self, name: &str) -> Result<()> {
        self.calls.write()?;
        self.s3
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn enable_encryption(&self, name: &str) -> Result<()> {
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()?,
            )
            .bucket_key_enabled(true)
            .build();
        self.calls.write()?;
        self.s3
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()?,
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn block_public_access(&self, name: &str) -> Result<()> {
        self.calls.write()?;
        self.s3
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn table_exists(&self, name: &str) -> Result<bool> {
        self.calls.read()?;
        match self.dynamodb.describe_table().table_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    async fn create_lock_table(&self, name: &str) -> Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        self.calls.write()?;
        self.dynamodb
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("LockID")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("LockID")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }
}
