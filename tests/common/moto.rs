//! moto's server, started by the test on a free loopback port, with an organization and its
//! OUs. A test that cannot find moto fails and says how to get it.
#![allow(dead_code)]

use orgvend::aws::sdk::{AwsTarget, SdkAws};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub url: String,
}

fn moto_server() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("ORGVEND_MOTO_SERVER") {
        return p.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    assert!(
        venv.exists(),
        "moto is not installed: run scripts/test (it installs moto into .venv), or \
         `python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.1.22'`"
    );
    venv
}

/// The environment an `orgvend` process needs to reach moto with the default credential chain.
pub const PROCESS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "AKIAORGVENDTESTING"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn target(&self) -> AwsTarget {
        AwsTarget {
            region: "us-east-1".into(),
            endpoint_url: Some(self.url.clone()),
            static_keys: Some(("AKIAORGVENDTESTING".into(), "testing".into())),
            account_endpoint_url: None,
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(20),
        }
    }

    pub async fn aws(&self) -> SdkAws {
        SdkAws::new(&self.target()).await
    }

    /// The client with a fake of the Account Management API (which moto lacks) beside moto,
    /// taking any member account: for stories where an account is renamed along the way.
    pub async fn aws_with_account_api(&self) -> SdkAws {
        let api = super::fake_account::FakeAccount::start().await;
        api.state.lock().unwrap().any_account = true;
        SdkAws::new(&AwsTarget {
            account_endpoint_url: Some(api.url.clone()),
            ..self.target()
        })
        .await
    }

    /// The management account's configuration, as a test uses it.
    pub async fn management_config(&self) -> aws_config::SdkConfig {
        self.config().await
    }

    async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(orgvend::aws::sdk::http_client())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIAORGVENDTESTING",
                "testing",
                None,
                None,
                "static",
            ))
            .load()
            .await
    }

    /// Identity Center's admin API, as a person at the console would use it.
    pub async fn sso_admin(&self) -> aws_sdk_ssoadmin::Client {
        aws_sdk_ssoadmin::Client::new(&self.config().await)
    }

    pub async fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config().await)
    }

    /// The management account's view of IAM etc. inside a member account, as the test sees it.
    pub async fn member_config(&self, account_id: &str) -> aws_config::SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.config().await);
        let out = sts
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
            ))
            .role_session_name("test")
            .send()
            .await
            .unwrap();
        let c = out.credentials().unwrap();
        self.config()
            .await
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        c.access_key_id(),
                        c.secret_access_key(),
                        Some(c.session_token().to_string()),
                        None,
                        "test",
                    ),
                ),
            )
            .build()
    }

    /// Creates the organization and the OUs of the shipped policy; returns OU ids by path.
    pub async fn organization(&self) -> HashMap<String, String> {
        let orgs = self.organizations().await;
        orgs.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        let root = orgs.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_string();
        // the central log buckets the shipped policy names, and the organization's trail, as
        // Control Tower or Landing Zone Accelerator sets them up
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config().await)
                .force_path_style(true)
                .build(),
        );
        for bucket in [
            "example-org-trail-logs",
            "example-cloudtrail-logs",
            "example-config-logs",
        ] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        let trails = aws_sdk_cloudtrail::Client::new(&self.config().await);
        trails
            .create_trail()
            .name("org-trail")
            .s3_bucket_name("example-org-trail-logs")
            .is_organization_trail(true)
            .is_multi_region_trail(true)
            .enable_log_file_validation(true)
            .send()
            .await
            .unwrap();
        trails
            .start_logging()
            .name("org-trail")
            .send()
            .await
            .unwrap();
        let mut ous = HashMap::new();
        for name in ["Management", "Internal", "Clients", "Suspended"] {
            let ou = orgs
                .create_organizational_unit()
                .parent_id(&root)
                .name(name)
                .send()
                .await
                .unwrap();
            ous.insert(
                format!("/{name}"),
                ou.organizational_unit().unwrap().id().unwrap().to_string(),
            );
        }
        ous
    }

    /// The id of the organization's account called `name`; panics when there is none.
    pub async fn account_id(&self, name: &str) -> String {
        self.accounts()
            .await
            .into_iter()
            .find(|(_, n, _)| n == name)
            .unwrap_or_else(|| panic!("no account {name}"))
            .0
    }

    /// Every account of the organization: (id, name, email).
    pub async fn accounts(&self) -> Vec<(String, String, String)> {
        let orgs = self.organizations().await;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = orgs
                .list_accounts()
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            out.extend(page.accounts().iter().map(|a| {
                (
                    a.id().unwrap().to_string(),
                    a.name().unwrap().to_string(),
                    a.email().unwrap().to_string(),
                )
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return out;
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal but well-formed SAML metadata document (AWS wants at least 1,000 characters).
pub fn saml_metadata() -> String {
    let cert = "MIIC".to_string() + &"A".repeat(1200);
    format!(
        r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sso.example.com/saml"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sso.example.com/saml/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

impl Moto {
    /// The guard the shipped policy gives a client account, read straight from moto: one
    /// key (tagged by orgvend, aliased, rotating), Config recording to the central bucket with
    /// the default rules, and the account's own trail logging, multi-region, validated,
    /// encrypted with that key.
    pub async fn assert_guard(&self, account_id: &str, alias: &str) {
        let cfg = self.member_config(account_id).await;
        let kms = aws_sdk_kms::Client::new(&cfg);
        let keys = kms.list_keys().send().await.unwrap();
        let mut ours = Vec::new();
        for k in keys.keys() {
            let id = k.key_id().unwrap();
            let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
            if tags.tags().iter().any(|t| t.tag_key() == "orgvend:alias") {
                ours.push(id.to_string());
            }
        }
        assert_eq!(ours.len(), 1, "one key made by orgvend: {ours:?}");
        let key = kms
            .describe_key()
            .key_id(format!("alias/orgvend-{alias}"))
            .send()
            .await
            .expect("the alias names the key");
        let meta = key.key_metadata().unwrap();
        assert_eq!(meta.key_id(), ours[0]);
        let rotation = kms
            .get_key_rotation_status()
            .key_id(&ours[0])
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled(), "rotation on");

        let config = aws_sdk_config::Client::new(&cfg);
        let recorders = config
            .describe_configuration_recorders()
            .send()
            .await
            .unwrap();
        assert_eq!(recorders.configuration_recorders().len(), 1);
        let group = recorders.configuration_recorders()[0]
            .recording_group()
            .unwrap();
        assert!(group.all_supported() && group.include_global_resource_types());
        let status = config
            .describe_configuration_recorder_status()
            .send()
            .await
            .unwrap();
        assert!(
            status.configuration_recorders_status()[0].recording(),
            "recording"
        );
        let channels = config.describe_delivery_channels().send().await.unwrap();
        assert_eq!(
            channels.delivery_channels()[0].s3_bucket_name(),
            Some("example-config-logs")
        );
        assert_eq!(channels.delivery_channels()[0].sns_topic_arn(), None);
        let rules = config.describe_config_rules().send().await.unwrap();
        assert_eq!(rules.config_rules().len(), 7, "the default rules");

        let ct = aws_sdk_cloudtrail::Client::new(&cfg);
        let trails = ct
            .describe_trails()
            .trail_name_list("orgvend-trail")
            .send()
            .await
            .unwrap();
        let t = &trails.trail_list()[0];
        assert_eq!(t.is_multi_region_trail(), Some(true));
        assert_eq!(t.log_file_validation_enabled(), Some(true));
        assert_eq!(t.s3_bucket_name(), Some("example-cloudtrail-logs"));
        assert!(
            t.kms_key_id().is_some_and(|k| k.ends_with(&ours[0])),
            "encrypted with the account's key: {:?}",
            t.kms_key_id()
        );
        let selectors = ct
            .get_event_selectors()
            .trail_name("orgvend-trail")
            .send()
            .await
            .unwrap();
        // none at all is a trail's default (every management event), as AWS makes it
        let default = selectors.event_selectors().is_empty()
            && selectors.advanced_event_selectors().is_empty();
        assert!(
            default
                || selectors
                    .event_selectors()
                    .iter()
                    .any(|e| e.include_management_events() == Some(true)
                        && e.read_write_type()
                            == Some(&aws_sdk_cloudtrail::types::ReadWriteType::All)),
            "every management event: {selectors:?}"
        );
        let status = ct
            .get_trail_status()
            .name("orgvend-trail")
            .send()
            .await
            .unwrap();
        assert_eq!(status.is_logging(), Some(true));
    }
}
