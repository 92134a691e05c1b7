//! Reaching PostgreSQL: the store URL with libpq's TLS parameters (`sslmode`,
//! `sslrootcert`), rustls (ring) always verifying chain and host name, and connections whose
//! driver runs on its own task.

use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where to connect, and how: the parsed URL and its TLS settings.
pub(super) struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// For messages: `sslrootcert`'s path, if given.
    root_cert: Option<String>,
}

impl Target {
    /// A `postgres://` URL with libpq's parameters. Besides tokio-postgres's own, it takes
    /// `sslrootcert=PATH` (a PEM bundle of the CAs to trust, e.g. RDS's) and `sslmode`
    /// `verify-ca` / `verify-full` (both the same as `require` here: verification is
    /// never off).
    pub(super) fn parse(url: &str) -> Result<Target> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" => {
                    let path = urlencoding::decode(value)
                        .map_err(|_| anyhow!("store URL: sslrootcert is not valid UTF-8"))?;
                    root_cert = Some(path.into_owned());
                }
                "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                    kept.push("sslmode=require".to_string())
                }
                _ => kept.push(pair.to_string()),
            }
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // tokio-postgres's messages name the option, never the URL's password
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| anyhow!("store URL: {} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…&sslrootcert=…])", with_source(&e)))?;
        let tls = MakeRustlsConnect::new(tls_config(root_cert.as_deref())?);
        Ok(Target {
            config,
            tls,
            root_cert,
        })
    }
}

/// rustls with ring (the provider the rest of orgvend uses), verifying against `root_cert`'s
/// CAs or, without it, the platform's trust store.
fn tls_config(root_cert: Option<&str>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS for PostgreSQL")?;
    let Some(path) = root_cert else {
        let provider = builder.crypto_provider().clone();
        return Ok(match rustls_platform_verifier::Verifier::new(provider) {
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
            // A machine without CA certificates (a slim container) still reaches a server
            // without TLS; one that offers TLS is refused with the hint to add sslrootcert.
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the system's trust store is empty: a PostgreSQL server that offers TLS will be refused unless the store URL names its CA (sslrootcert)"
                );
                builder
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("store URL: sslrootcert {path}"))?
    {
        let cert = cert.with_context(|| format!("store URL: sslrootcert {path}"))?;
        roots
            .add(cert)
            .with_context(|| format!("store URL: sslrootcert {path}: a certificate"))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "store URL: sslrootcert {path} holds no PEM certificate"
    );
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// tokio-postgres's message with its cause (which it leaves out of its own).
fn with_source(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

pub(super) async fn connect(target: &Target) -> Result<Client> {
    let (client, connection) = target
        .config
        .connect(target.tls.clone())
        .await
        .map_err(|e| {
            let hint = match &target.root_cert {
                _ if !e.to_string().contains("TLS") => String::new(),
                Some(path) => format!(" (the server's certificate is checked against {path})"),
                None => " (a server that offers TLS must present a certificate the system trusts: \
                         add sslrootcert=PATH, its CA in PEM, to the URL)"
                    .to_string(),
            };
            anyhow!("connecting to PostgreSQL: {}{hint}", with_source(&e))
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}
