//! The documents of the account's own guard: the KMS key's policy (the account's IAM
//! administers it; CloudTrail and Config may use it for what they write), and the tests that
//! the permissions boundary protects the key, the trail, the recorder, the delivery channel
//! and the rules from the bounded admin and keyless CI's apply role.

use serde_json::json;

/// The policy of the account's KMS key. The account's root principal administers it, so that
/// IAM policies decide who may use it (and the boundary denies disabling or deleting it to
/// the bounded roles); CloudTrail may encrypt this account's trails with it; Config may
/// deliver with it.
pub fn key_policy(account_id: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TheAccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account_id}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "CloudTrailEncryptsThisAccountsTrails",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:aws:cloudtrail:*:{account_id}:trail/*")
                    },
                    "StringEquals": {"aws:SourceAccount": account_id}
                }
            },
            {
                "Sid": "CloudTrailDescribesTheKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*"
            },
            {
                "Sid": "ConfigDeliversWithTheKey",
                "Effect": "Allow",
                "Principal": {"Service": "config.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}
            }
        ]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::baseline::{AUDIT_ACTIONS, KEY_ACTIONS, Protected, boundary_document};
    use crate::core::policy::{Baseline, BaselineRole};
    use serde_json::Value;

    const ACCOUNT: &str = "111122223333";
    const ALIAS: &str = "alias/orgvend-client-acme";

    fn boundary(key_alias: Option<&str>) -> Value {
        let baseline = Baseline {
            role_name: "OrganizationAccountAccessRole".into(),
            saml_provider: "corp-sso".into(),
            permissions_boundary: "orgvend-baseline-boundary".into(),
            roles: vec![BaselineRole {
                name: "BoundedAdmin".into(),
                policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(),
                bounded: true,
            }],
            state_bucket: "{alias}-tfstate".into(),
            lock_table: "terraform-locks".into(),
        };
        serde_json::from_str(&boundary_document(&Protected {
            account_id: ACCOUNT,
            baseline: &baseline,
            access_role: "OrganizationAccountAccessRole",
            ci_roles: &["gitlab-ci-apply"],
            state_bucket: "client-acme-tfstate",
            key_alias,
        }))
        .unwrap()
    }

    /// Whether a Deny of the document applies to `action` on `resource`, for a key with
    /// these aliases (the boundary's own evaluator, no principal boundary).
    fn denies(doc: &Value, action: &str, resource: &str, aliases: &[&str]) -> bool {
        crate::core::baseline::tests::denies_with(doc, action, resource, None, aliases)
    }

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// One test per protected action: each is denied to the bounded roles.
    #[test]
    fn the_boundary_denies_every_action_that_would_weaken_the_audit_trail() {
        let doc = boundary(Some(ALIAS));
        for action in AUDIT_ACTIONS {
            assert!(
                denies(
                    &doc,
                    action,
                    "arn:aws:cloudtrail:eu-west-1:111122223333:trail/orgvend-trail",
                    &[]
                ),
                "{action}"
            );
        }
        for action in [
            "cloudtrail:StopLogging",
            "cloudtrail:DeleteTrail",
            "cloudtrail:UpdateTrail",
            "config:StopConfigurationRecorder",
            "config:DeleteConfigurationRecorder",
            "config:PutConfigurationRecorder",
            "config:DeleteDeliveryChannel",
            "config:PutDeliveryChannel",
            "config:DeleteConfigRule",
            "config:PutConfigRule",
        ] {
            assert!(AUDIT_ACTIONS.contains(&action), "{action} is protected");
        }
    }

    #[test]
    fn the_boundary_denies_disabling_or_deleting_the_accounts_key() {
        let doc = boundary(Some(ALIAS));
        for action in KEY_ACTIONS {
            assert!(
                denies(&doc, action, KEY, &[ALIAS]),
                "{action} on the account's key"
            );
            // another key of the account stays the bounded admin's own
            assert!(
                !denies(&doc, action, KEY, &["alias/app-data"]),
                "{action} on another key"
            );
        }
        for action in [
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
            "kms:DisableKeyRotation",
            "kms:PutKeyPolicy",
        ] {
            assert!(KEY_ACTIONS.contains(&action));
        }
        // nor may the alias be moved to another key or removed (which would lift the rule)
        let alias_arn = format!("arn:aws:kms:eu-west-1:{ACCOUNT}:{ALIAS}");
        for action in ["kms:DeleteAlias", "kms:UpdateAlias", "kms:CreateAlias"] {
            assert!(denies(&doc, action, &alias_arn, &[]), "{action}");
        }
        assert!(
            !denies(&doc, "kms:Encrypt", KEY, &[ALIAS]),
            "using the key stays allowed"
        );
        // without a key in the baseline, nothing about keys is denied
        let doc = boundary(None);
        assert!(!denies(&doc, "kms:ScheduleKeyDeletion", KEY, &[ALIAS]));
    }

    #[test]
    fn the_key_policy_keeps_the_account_and_the_services_that_need_it() {
        let doc: Value = serde_json::from_str(&key_policy(ACCOUNT)).unwrap();
        let statements = doc["Statement"].as_array().unwrap();
        let admin = &statements[0];
        assert_eq!(admin["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert_eq!(admin["Action"], "kms:*");
        let trail = statements
            .iter()
            .find(|s| {
                s["Principal"]["Service"] == "cloudtrail.amazonaws.com"
                    && s["Action"] == "kms:GenerateDataKey*"
            })
            .unwrap();
        assert_eq!(
            trail["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
            "arn:aws:cloudtrail:*:111122223333:trail/*",
            "only this account's trails"
        );
        assert!(
            statements
                .iter()
                .any(|s| s["Principal"]["Service"] == "config.amazonaws.com")
        );
        // nobody outside the account is named
        for s in statements {
            if let Some(aws) = s["Principal"]["AWS"].as_str() {
                assert!(aws.contains(ACCOUNT), "{aws}");
            }
        }
    }
}
