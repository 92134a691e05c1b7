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

/// What a boundary protects in one account: the roles the baseline made (the access roles,
/// the role orgvend itself uses there, keyless CI's roles), the Terraform state.
#[derive(Debug, Clone)]
pub struct Protected<'a> {
    pub account_id: &'a str,
    pub baseline: &'a Baseline,
    /// The role orgvend assumes in the account (the declaration's `role_name`).
    pub access_role: &'a str,
    /// Keyless CI's plan and apply roles.
    pub ci_roles: &'a [&'a str],
    pub state_bucket: &'a str,
    /// The alias of the account's KMS key (`alias/orgvend-acme`), when it has one.
    pub key_alias: Option<&'a str>,
}

/// IAM actions that change what a role or user may do: denied on any principal that does
/// not carry the boundary (the condition key `iam:PermissionsBoundary` names the boundary of
/// the principal the action changes or creates).
const CHANGE_PRINCIPALS: [&str; 14] = [
    "iam:CreateRole",
    "iam:CreateUser",
    "iam:PutRolePermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
];

/// The permissions boundary of the bounded admin (and of keyless CI's apply role), after
/// AWS's documented pattern for delegated administrators: everything is allowed except
/// - escaping the boundary: a role or user created, or a principal changed, without this
///   same boundary; removing any principal's boundary; editing the boundary policy itself
///   (a new version, another default, deletion);
/// - touching what the baseline put in place: the baseline roles, the role orgvend uses in
///   the account, keyless CI's roles; the account's identity providers (no new SAML or OIDC
///   provider either: sign-in comes only through the company's); the audit trail (CloudTrail,
///   Config); the Terraform state;
/// - leaving the organization, and creating networks (the organisation has modules for them).
pub fn boundary_document(p: &Protected<'_>) -> String {
    let account_id = p.account_id;
    let role = |name: &str| format!("arn:aws:iam::{account_id}:role/{name}");
    let mut roles: Vec<String> = p.baseline.roles.iter().map(|r| role(&r.name)).collect();
    roles.push(role(p.access_role));
    roles.push(role(&p.baseline.role_name));
    roles.extend(p.ci_roles.iter().map(|r| role(r)));
    roles.sort();
    roles.dedup();
    let boundary = policy_arn(account_id, &p.baseline.permissions_boundary);
    let doc = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowWithinTheBoundary", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Sid": "PrincipalsKeepTheBoundary",
                "Effect": "Deny",
                "Action": CHANGE_PRINCIPALS,
                "Resource": "*",
                "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}}
            },
            {
                "Sid": "NoBoundaryIsRemoved",
                "Effect": "Deny",
                "Action": ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"],
                "Resource": "*"
            },
            {
                "Sid": "TheBoundaryStaysAsItIs",
                "Effect": "Deny",
                "Action": [
                    "iam:DeletePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion",
                    "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy"
                ],
                "Resource": boundary
            },
            {
                "Sid": "ProtectTheBaselineRoles",
                "Effect": "Deny",
                "Action": [
                    "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:TagRole",
                    "iam:UntagRole", "iam:UpdateRoleDescription"
                ],
                "Resource": roles
            },
            {
                "Sid": "OnlyTheCompanysIdentityProviders",
                "Effect": "Deny",
                "Action": [
                    "iam:CreateSAMLProvider", "iam:DeleteSAMLProvider", "iam:UpdateSAMLProvider",
                    "iam:TagSAMLProvider", "iam:UntagSAMLProvider",
                    "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider",
                    "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider",
                    "iam:RemoveClientIDFromOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
                    "iam:UntagOpenIDConnectProvider"
                ],
                "Resource": "*"
            },
            {
                "Sid": "ProtectTheAuditTrail",
                "Effect": "Deny",
                "Action": AUDIT_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "ProtectTheTerraformState",
                "Effect": "Deny",
                "Action": [
                    "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning",
                    "s3:PutEncryptionConfiguration", "s3:PutBucketPublicAccessBlock", "dynamodb:DeleteTable"
                ],
                "Resource": [
                    format!("arn:aws:s3:::{}", p.state_bucket),
                    format!("arn:aws:dynamodb:*:{account_id}:table/{}", p.baseline.lock_table)
                ]
            },
            {
                "Sid": "StayInTheOrganization",
                "Effect": "Deny",
                "Action": "organizations:LeaveOrganization",
                "Resource": "*"
            },
            {
                "Sid": "NetworksComeFromTheOrganisationsModules",
                "Effect": "Deny",
                "Action": ["ec2:CreateVpc", "ec2:CreateDefaultVpc"],
                "Resource": "*"
            }
        ]
    })
    .to_string();
    let Some(alias) = p.key_alias else {
        return doc;
    };
    let mut doc: Value = serde_json::from_str(&doc).expect("the boundary is JSON");
    let statements = doc["Statement"].as_array_mut().expect("statements");
    statements.push(json!({
        "Sid": "ProtectTheAccountsKey",
        "Effect": "Deny",
        "Action": KEY_ACTIONS,
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
    }));
    statements.push(json!({
        "Sid": "TheKeysAliasStays",
        "Effect": "Deny",
        "Action": ["kms:DeleteAlias", "kms:UpdateAlias", "kms:CreateAlias"],
        "Resource": format!("arn:aws:kms:*:{account_id}:{alias}")
    }));
    doc.to_string()
}

/// What would stop, delete or weaken the audit trail: CloudTrail, and Config's recorder,
/// delivery channel and rules.
pub const AUDIT_ACTIONS: [&str; 13] = [
    "cloudtrail:DeleteTrail",
    "cloudtrail:StopLogging",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
    "config:DeleteConfigurationRecorder",
    "config:StopConfigurationRecorder",
    "config:PutConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "config:PutDeliveryChannel",
    "config:DeleteConfigRule",
    "config:PutConfigRule",
    "config:DeleteEvaluationResults",
];

/// What would disable the account's key or take it away.
pub const KEY_ACTIONS: [&str; 4] = [
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:PutKeyPolicy",
];

#[cfg(test)]
pub(crate) mod tests {
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

    /// Whether the document denies `action` on `resource` for a principal whose (new or
    /// changed) boundary is `principal_boundary`: a small evaluator of the statements it
    /// uses (Deny wins; `*` matches any rest; `StringNotEquals` on `iam:PermissionsBoundary`).
    /// Whether the document denies `action` on `resource` for a principal whose (new or
    /// changed) boundary is `principal_boundary`, on a resource (a key) with these aliases: a
    /// small evaluator of the statements the boundary uses (Deny wins; `*` matches within a
    /// pattern; `StringNotEquals` on `iam:PermissionsBoundary`, `ForAnyValue:StringEquals` on
    /// `kms:ResourceAliases`).
    pub(crate) fn denies_with(
        doc: &Value,
        action: &str,
        resource: &str,
        principal_boundary: Option<&str>,
        aliases: &[&str],
    ) -> bool {
        let matches = |p: &str, v: &str| match p.split_once('*') {
            Some((prefix, rest)) => v.starts_with(prefix) && v.ends_with(rest),
            None => p == v,
        };
        let any = |v: &Value, value: &str| match v {
            Value::String(p) => matches(p, value),
            Value::Array(ps) => ps.iter().any(|p| matches(p.as_str().unwrap(), value)),
            _ => false,
        };
        doc["Statement"].as_array().unwrap().iter().any(|s| {
            s["Effect"] == "Deny"
                && any(&s["Action"], action)
                && any(&s["Resource"], resource)
                && match s.get("Condition") {
                    None => true,
                    Some(c) => {
                        match (c.get("StringNotEquals"), c.get("ForAnyValue:StringEquals")) {
                            (Some(b), _) => {
                                let want = b["iam:PermissionsBoundary"].as_str().unwrap();
                                principal_boundary != Some(want)
                            }
                            (_, Some(v)) => {
                                aliases.iter().any(|a| any(&v["kms:ResourceAliases"], a))
                            }
                            _ => panic!("a condition the evaluator does not know: {c}"),
                        }
                    }
                }
        })
    }

    fn denies(doc: &Value, action: &str, resource: &str, principal_boundary: Option<&str>) -> bool {
        denies_with(doc, action, resource, principal_boundary, &[])
    }

    fn document() -> Value {
        serde_json::from_str(&boundary_document(&Protected {
            account_id: "111122223333",
            baseline: &baseline(),
            access_role: "CustomAccessRole",
            ci_roles: &["gitlab-ci-apply"],
            state_bucket: "x-tfstate",
            key_alias: None,
        }))
        .unwrap()
    }

    #[test]
    fn the_boundary_cannot_be_escaped() {
        let doc = document();
        let boundary = "arn:aws:iam::111122223333:policy/orgvend-baseline-boundary";
        let role = |n: &str| format!("arn:aws:iam::111122223333:role/{n}");
        // creating principals: only with this same boundary
        assert!(denies(&doc, "iam:CreateRole", &role("app"), None));
        assert!(denies(
            &doc,
            "iam:CreateRole",
            &role("app"),
            Some("arn:aws:iam::111122223333:policy/loose")
        ));
        assert!(!denies(
            &doc,
            "iam:CreateRole",
            &role("app"),
            Some(boundary)
        ));
        assert!(denies(
            &doc,
            "iam:CreateUser",
            "arn:aws:iam::111122223333:user/u",
            None
        ));
        assert!(!denies(
            &doc,
            "iam:CreateUser",
            "arn:aws:iam::111122223333:user/u",
            Some(boundary)
        ));
        // a role created with the boundary cannot lose it, nor can any other
        assert!(denies(
            &doc,
            "iam:DeleteRolePermissionsBoundary",
            &role("app"),
            Some(boundary)
        ));
        assert!(denies(
            &doc,
            "iam:DeleteUserPermissionsBoundary",
            "arn:aws:iam::111122223333:user/u",
            Some(boundary)
        ));
        assert!(denies(
            &doc,
            "iam:PutRolePermissionsBoundary",
            &role("app"),
            Some("other")
        ));
        // a principal without the boundary gets no new permissions
        assert!(denies(&doc, "iam:AttachRolePolicy", &role("legacy"), None));
        assert!(denies(
            &doc,
            "iam:PutUserPolicy",
            "arn:aws:iam::111122223333:user/old",
            None
        ));
        assert!(!denies(
            &doc,
            "iam:AttachRolePolicy",
            &role("app"),
            Some(boundary)
        ));
        // the boundary policy itself is not to be edited
        for action in [
            "iam:CreatePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:DeletePolicyVersion",
            "iam:DeletePolicy",
        ] {
            assert!(denies(&doc, action, boundary, Some(boundary)), "{action}");
        }
        // no identity provider of its own
        assert!(denies(
            &doc,
            "iam:CreateSAMLProvider",
            "arn:aws:iam::111122223333:saml-provider/mine",
            Some(boundary)
        ));
        assert!(denies(
            &doc,
            "iam:CreateOpenIDConnectProvider",
            "arn:aws:iam::111122223333:oidc-provider/evil.example.com",
            Some(boundary)
        ));
        assert!(denies(
            &doc,
            "iam:DeleteSAMLProvider",
            "arn:aws:iam::111122223333:saml-provider/corp-sso",
            Some(boundary)
        ));
        // the baseline roles, the account's actual access role and the CI roles
        for r in [
            "BoundedAdmin",
            "CustomAccessRole",
            "OrganizationAccountAccessRole",
            "gitlab-ci-apply",
        ] {
            assert!(
                denies(&doc, "iam:UpdateAssumeRolePolicy", &role(r), Some(boundary)),
                "{r}"
            );
            assert!(
                denies(&doc, "iam:DeleteRole", &role(r), Some(boundary)),
                "{r}"
            );
        }
        assert!(!denies(
            &doc,
            "iam:UpdateAssumeRolePolicy",
            &role("app"),
            Some(boundary)
        ));
        // the audit trail, the state, the organization, networks
        for (action, resource) in [
            ("cloudtrail:StopLogging", "*"),
            ("config:DeleteConfigurationRecorder", "*"),
            ("s3:DeleteBucket", "arn:aws:s3:::x-tfstate"),
            (
                "dynamodb:DeleteTable",
                "arn:aws:dynamodb:*:111122223333:table/terraform-locks",
            ),
            ("organizations:LeaveOrganization", "*"),
            ("ec2:CreateVpc", "*"),
        ] {
            assert!(denies(&doc, action, resource, Some(boundary)), "{action}");
        }
        // and the rest is allowed
        assert!(!denies(
            &doc,
            "s3:PutObject",
            "arn:aws:s3:::app-data/x",
            Some(boundary)
        ));
        assert!(!denies(&doc, "ec2:RunInstances", "*", Some(boundary)));
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
