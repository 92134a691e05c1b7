use super::*;

fn every_step() -> Vec<Step> {
    let tags = BTreeMap::from([("owner".to_string(), "team".to_string())]);
    vec![
        Step::CreateAccount {
            name: "n".into(),
            email: "e".into(),
            role_name: "r".into(),
            tags: tags.clone(),
        },
        Step::WaitForAccount,
        Step::AdoptAccount {
            account_id: "123456789012".into(),
            email: "e".into(),
        },
        Step::MoveAccount { ou: "/x".into() },
        Step::TagAccount { tags },
        Step::UntagAccount { keys: vec![] },
        Step::RenameAccount { name: "n".into() },
        Step::AssumeRole {
            role_name: "r".into(),
        },
        Step::SetAlias { alias: "a".into() },
        Step::SamlProvider { name: "s".into() },
        Step::PermissionsBoundary { policy: "b".into() },
        Step::AccessRole {
            name: "Admin".into(),
            policy_arn: "arn".into(),
            bounded: false,
        },
        Step::KmsKey {
            alias: "alias/k".into(),
            previous: None,
        },
        Step::ConfigRecorder {
            name: "default".into(),
        },
        Step::DeliveryChannel { bucket: "c".into() },
        Step::ConfigRule {
            name: "r".into(),
            identifier: "CLOUD_TRAIL_ENABLED".into(),
            parameters: BTreeMap::new(),
        },
        Step::Trail {
            name: "t".into(),
            bucket: "b".into(),
        },
        Step::OrganizationTrail,
        Step::StateBucket { bucket: "b".into() },
        Step::LockTable { table: "t".into() },
        Step::CiOidcProvider,
        Step::CiRole {
            name: "ci-plan".into(),
            purpose: "plan".into(),
        },
        Step::GitlabProject {
            namespace: "g".into(),
            path: "p".into(),
        },
        Step::CommitTemplate,
        Step::ProtectMaster,
        Step::CiVariables,
        Step::CloseAccount { name: "n".into() },
        Step::Entitlement {
            provider: Provider::Okta,
            role: "ReadOnly".into(),
            name: "aws#a#ReadOnly#{account_id}".into(),
            previous: None,
        },
        Step::Grant {
            provider: Provider::IdentityCenter,
            role: "ReadOnly".into(),
            group: "auditors".into(),
        },
        Step::Revoke {
            provider: Provider::IdentityCenter,
            role: "ReadOnly".into(),
            group: "auditors".into(),
        },
        Step::RevokeAccess {
            provider: Provider::Okta,
            groups: vec!["aws#a#ReadOnly#{account_id}".into()],
        },
    ]
}

/// Ledgers store these names: a step's key is its JSON tag, roles named after them.
#[test]
fn a_steps_key_is_its_json_tag() {
    for step in every_step() {
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["step"], step.kind(), "{step:?}");
        let key = step.key();
        match &step {
            Step::AccessRole { name, .. } => assert_eq!(key, format!("access_role:{name}")),
            Step::CiRole { name, .. } => assert_eq!(key, format!("ci_role:{name}")),
            Step::ConfigRule { name, .. } => assert_eq!(key, format!("config_rule:{name}")),
            Step::Entitlement { role, previous, .. } => assert_eq!(
                key,
                match previous {
                    Some(_) => format!("entitlement:{role}:renamed"),
                    None => format!("entitlement:{role}"),
                }
            ),
            Step::Grant { role, group, .. } => assert_eq!(key, format!("grant:{role}:{group}")),
            Step::Revoke { role, group, .. } => {
                assert_eq!(key, format!("revoke:{role}:{group}"))
            }
            _ => assert_eq!(key, step.kind()),
        }
    }
}

#[test]
fn only_plain_paths_reach_a_trust_condition() {
    for good in ["aws-accounts/client-acme", "infra/aws/a_b.c"] {
        assert!(valid_project_path(good), "{good}");
    }
    for bad in [
        "aws-accounts/client-*",
        "a/b?",
        "a//b",
        "a/-x",
        "a/.x",
        "",
        "a/b c",
        "a/x.git",
        "a/\u{0}",
    ] {
        assert!(!valid_project_path(bad), "{bad}");
    }
}

#[test]
fn each_step_belongs_to_one_area() {
    let areas: Vec<Area> = every_step().iter().map(Step::area).collect();
    assert_eq!(areas[0], Area::Organizations);
    assert_eq!(areas[2], Area::Organizations);
    assert_eq!(areas[9], Area::Iam);
    assert!(areas[12..18].iter().all(|a| *a == Area::Guard));
    assert_eq!(areas[18], Area::StateBackend);
    assert_eq!(areas[21], Area::KeylessCi);
    assert_eq!(areas[23], Area::Repository);
    assert_eq!(areas[26], Area::Organizations);
    assert!(areas[27..].iter().all(|a| *a == Area::Access));
}
