//! The IAM documents of a new account's baseline, as pure functions of the account and the
//! policy: the permissions boundary of the bounded admin, and the trust policy of the access
//! roles (federated through the account's SAML provider).

use crate::core::policy::Baseline;
use serde_json::{Value, json};

/// The managed policies of the CI roles.
pub const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
pub const READ_ONLY_ACCESS: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

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

/// `https://gitlab.example.com/` → `gitlab.example.com`: how IAM names an OIDC provider and
/// prefixes its condition keys.
pub fn oidc_host(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Keyless CI: a role the account's GitLab project assumes with its CI ID token. GitLab puts
/// the project and the ref in the token's `sub`
/// (`project_path:<group>/<project>:ref_type:branch:ref:<branch>`): the plan role accepts any
/// ref of the project; the apply role only `master`, which the bootstrap protects (no direct
/// pushes; maintainers merge), so only reviewed code runs with it. IAM offers `sub` and `aud`
/// as condition keys for a generic OIDC provider, so the protection of the ref is enforced
/// by GitLab's protected branch, not by a claim condition.
pub fn ci_trust_document(
    account_id: &str,
    gitlab_url: &str,
    project_path: &str,
    purpose: &str,
) -> String {
    let host = oidc_host(gitlab_url);
    let sub = if purpose == "apply" {
        format!("project_path:{project_path}:ref_type:branch:ref:master")
    } else {
        format!("project_path:{project_path}:ref_type:branch:ref:*")
    };
    let aud = (
        format!("{host}:aud"),
        json!(gitlab_url.trim_end_matches('/')),
    );
    let sub_key = format!("{host}:sub");
    // both tests under one operator when they share it: JSON keys are unique
    let condition = if purpose == "apply" {
        json!({"StringEquals": {aud.0: aud.1, sub_key: sub}})
    } else {
        json!({"StringEquals": {aud.0: aud.1}, "StringLike": {sub_key: sub}})
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{account_id}:oidc-provider/{host}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition
        }]
    })
    .to_string()
}

/// Two trust policies say the same when their JSON is the same, whatever the formatting.
pub fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The permissions boundary: everything, except removing or changing what the baseline put
/// in place (the audit trail, the baseline roles and provider, the boundary itself, the
/// Terraform state) and creating networks, which the organisation provides through its own
/// modules. Roles a bounded admin creates must carry the same boundary. `ci_roles` (keyless
/// CI's plan and apply roles) and the account's OIDC providers are protected like the
/// baseline roles: the apply role, which carries this boundary, cannot widen its own trust.
pub fn boundary_document(
    account_id: &str,
    baseline: &Baseline,
    ci_roles: &[&str],
    state_bucket: &str,
) -> String {
    let role = |name: &str| Value::String(format!("arn:aws:iam::{account_id}:role/{name}"));
    let mut roles: Vec<Value> = baseline.roles.iter().map(|r| role(&r.name)).collect();
    roles.push(role(&baseline.role_name));
    roles.extend(ci_roles.iter().map(|r| role(r)));
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
                "Sid": "ProtectTheCiIdentityProvider",
                "Effect": "Deny",
                "Action": [
                    "iam:DeleteOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
                    "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider"
                ],
                "Resource": format!("arn:aws:iam::{account_id}:oidc-provider/*")
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
    use crate::core::policy::BaselineRole;

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
        let doc: Value = serde_json::from_str(&boundary_document(
            "111122223333",
            &baseline(),
            &["gitlab-ci-apply"],
            "x-tfstate",
        ))
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
                && roles.to_string().contains("role/gitlab-ci-apply")
        );
        assert!(denied.contains(&"iam:DeleteOpenIDConnectProvider"));
        assert!(
            doc.to_string()
                .contains("arn:aws:iam::111122223333:policy/orgvend-baseline-boundary")
        );
    }

    #[test]
    fn ci_roles_trust_only_their_project() {
        let plan: Value = serde_json::from_str(&ci_trust_document(
            "1",
            "https://gitlab.example.com/",
            "aws-accounts/client-x",
            "plan",
        ))
        .unwrap();
        let c = &plan["Statement"][0]["Condition"];
        assert_eq!(
            c["StringEquals"]["gitlab.example.com:aud"],
            "https://gitlab.example.com"
        );
        assert_eq!(
            c["StringLike"]["gitlab.example.com:sub"],
            "project_path:aws-accounts/client-x:ref_type:branch:ref:*"
        );
        let apply: Value = serde_json::from_str(&ci_trust_document(
            "1",
            "https://gitlab.example.com",
            "aws-accounts/client-x",
            "apply",
        ))
        .unwrap();
        assert_eq!(
            apply["Statement"][0]["Condition"]["StringEquals"]["gitlab.example.com:sub"],
            "project_path:aws-accounts/client-x:ref_type:branch:ref:master"
        );
        assert_eq!(
            apply["Statement"][0]["Condition"]["StringEquals"]["gitlab.example.com:aud"],
            "https://gitlab.example.com"
        );
        assert_eq!(
            apply["Statement"][0]["Principal"]["Federated"],
            "arn:aws:iam::1:oidc-provider/gitlab.example.com"
        );
        assert!(same_document(
            &apply.to_string(),
            &serde_json::to_string_pretty(&apply).unwrap()
        ));
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
