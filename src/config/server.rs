//! `[server]`: where orgvend listens, the front's limits, the replica's name.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest webhook body accepted, in bytes; larger gets 413 unread. Default 25 MiB, GitLab's
    /// own maximum.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// On SIGTERM/SIGINT: how long in-flight requests and jobs may take to finish. Default 30.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// How long a client may take to send a request's headers; then the connection is
    /// closed. Default 10.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
    /// How long a client may take to send a webhook's body, once its headers passed; then it
    /// gets 408. Default 30.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_seconds: u64,
    /// How long one request may take in all, answer included; then it gets 503. Default 60.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Connections served at once; more wait in the listen queue. Default 512.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Webhook body bytes held in memory at once, over all requests; a delivery that would
    /// pass it waits (up to the body timeout), then gets 503. At least `body_limit`.
    /// Default 100 MiB.
    #[serde(default = "default_body_bytes_in_flight")]
    pub max_body_bytes_in_flight: usize,
    /// This replica's name, stable across its restarts and unique among replicas: a replica
    /// that restarts takes back the work it was doing at once. Default: `ORGVEND_REPLICA_ID`,
    /// else the host name.
    #[serde(default)]
    pub replica_id: Option<String>,
}

impl ServerConfig {
    /// This replica's name (see `replica_id`).
    pub fn replica(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| std::env::var("ORGVEND_REPLICA_ID").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "orgvend".into())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            shutdown_grace_seconds: default_grace(),
            header_timeout_seconds: default_header_timeout(),
            body_timeout_seconds: default_body_timeout(),
            request_timeout_seconds: default_request_timeout(),
            max_connections: default_max_connections(),
            max_body_bytes_in_flight: default_body_bytes_in_flight(),
            replica_id: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("static address")
}
fn default_header_timeout() -> u64 {
    10
}

fn default_body_timeout() -> u64 {
    30
}

fn default_request_timeout() -> u64 {
    60
}

fn default_max_connections() -> usize {
    512
}

fn default_body_bytes_in_flight() -> usize {
    100 * 1024 * 1024
}

fn default_body_limit() -> usize {
    25 * 1024 * 1024
}
fn default_grace() -> u64 {
    30
}
