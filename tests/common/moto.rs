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
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(20),
        }
    }

    pub async fn aws(&self) -> SdkAws {
        SdkAws::new(&self.target()).await
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
        let mut ous = HashMap::new();
        for name in ["Management", "Internal", "Clients"] {
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
