//! The IAM documents of a new account's baseline, as pure functions of the account and the
//! policy: the permissions boundary of the bounded admin, and the trust policy of the access
//! roles (federated through the account's SAML provider).

use crate::policy::Baseline;
use serde_json::{Value, json};

/// The role AWS's sign-in page assumes for SAML federation.
pub const SAML_AUDIENCE: &str = "https://signin.aws.amazon.com/saml";

pub fn saml_provider_arn(account_id: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:saml-provider/{name}")
}

pub fn policy_arn(account_id: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:policy/{name}")
}

/// Roles trust the account's SAML provider, for sign-in through the company's SSO only.
pub fn trust_document(account_id: &str, saml_provider: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": saml_provider_arn(account_id, saml_provider)},
            "Action": "sts:AssumeRoleWithSAML",
            "Condition": {"StringEquals": {"SAML:aud": SAML_AUDIENCE}}
        }]
    })
    .to_string()
}

/// The permissions boundary: everything, except removing or changing what the baseline put
/// in place (the audit trail, the baseline roles and provider, the boundary itself, the
/// Terraform state) and creating networks, which the organisation provides through its own
/// modules. Roles a bounded admin creates must carry the same boundary.
pub fn boundary_document(account_id: &str, baseline: &Baseline, state_bucket: &str) -> String {
    let role = |name: &str| Value::String(format!("arn:aws:iam::{account_id}:role/{name}"));
    let mut roles: Vec<Value> = baseline.roles.iter().map(|r| role(&r.name)).collect();
    roles.push(role(&baseline.role_name));
    let boundary = policy_arn(account_id, &baseline.permissions_boundary);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowWithinTheBoundary", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Sid": "ProtectTheAuditTrail",
                "Effect": "Deny",
                "Action": [
                    "cloudtrail:DeleteTrail", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail",
                    "cloudtrail:PutEventSelectors", "config:DeleteConfigurationRecorder",
                    "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel",
                    "config:PutConfigurationRecorder", "config:DeleteConfigRule"
                ],
                "Resource": "*"
            },
            {
                "Sid": "ProtectTheBaselineRoles",
                "Effect": "Deny",
                "Action": [
                    "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:TagRole", "iam:UntagRole"
                ],
                "Resource": roles
            },
            {
                "Sid": "ProtectTheProviderAndTheBoundary",
                "Effect": "Deny",
                "Action": [
                    "iam:DeleteSAMLProvider", "iam:UpdateSAMLProvider", "iam:DeletePolicy",
                    "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"
                ],
                "Resource": [saml_provider_arn(account_id, &baseline.saml_provider), boundary.clone()]
            },
            {
                "Sid": "ProtectTheTerraformState",
                "Effect": "Deny",
                "Action": [
                    "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning",
                    "s3:PutEncryptionConfiguration", "s3:PutBucketPublicAccessBlock", "dynamodb:DeleteTable"
                ],
                "Resource": [
                    format!("arn:aws:s3:::{state_bucket}"),
                    format!("arn:aws:dynamodb:*:{account_id}:table/{}", baseline.lock_table)
                ]
            },
            {
                "Sid": "NewRolesKeepTheBoundary",
                "Effect": "Deny",
                "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
                "Resource": "*",
                "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}}
            },
            {
                "Sid": "NetworksComeFromTheOrganisationsModules",
                "Effect": "Deny",
                "Action": ["ec2:CreateVpc", "ec2:CreateDefaultVpc"],
                "Resource": "*"
            }
        ]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::BaselineRole;

    fn baseline() -> Baseline {
        Baseline {
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
        }
    }

    #[test]
    fn the_boundary_denies_what_the_bounded_admin_may_not_do() {
        let doc: Value =
            serde_json::from_str(&boundary_document("111122223333", &baseline(), "x-tfstate"))
                .unwrap();
        let statements = doc["Statement"].as_array().unwrap();
        let denied: Vec<&str> = statements
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .flat_map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
            })
            .collect();
        for action in [
            "cloudtrail:StopLogging",
            "config:DeleteConfigurationRecorder",
            "iam:DeleteRole",
            "iam:DeleteSAMLProvider",
            "ec2:CreateVpc",
            "s3:DeleteBucket",
        ] {
            assert!(denied.contains(&action), "{action} is not denied");
        }
        let roles = &statements[2]["Resource"];
        assert!(
            roles.to_string().contains("role/BoundedAdmin")
                && roles
                    .to_string()
                    .contains("role/OrganizationAccountAccessRole")
        );
        assert!(
            doc.to_string()
                .contains("arn:aws:iam::111122223333:policy/orgvend-baseline-boundary")
        );
    }

    #[test]
    fn roles_trust_only_the_saml_provider() {
        let doc: Value = serde_json::from_str(&trust_document("111122223333", "corp-sso")).unwrap();
        let s = &doc["Statement"][0];
        assert_eq!(
            s["Principal"]["Federated"],
            "arn:aws:iam::111122223333:saml-provider/corp-sso"
        );
        assert_eq!(s["Action"], "sts:AssumeRoleWithSAML");
        assert_eq!(s["Condition"]["StringEquals"]["SAML:aud"], SAML_AUDIENCE);
    }
}
