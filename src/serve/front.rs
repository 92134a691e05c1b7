//! The HTTP front: accepts connections and serves the router under limits, so that abuse
//! costs bounded resources and never delays an honest delivery's answer. A client has
//! `header_timeout_seconds` to send its headers (then the connection is closed), each
//! request `request_timeout_seconds` in all (then 503), a connection four times that; at
//! most `max_connections` are served at once (more wait in the kernel's listen queue). The
//! body's own limits (size, time, bytes in flight) are the webhook's ([`super::webhook`]).

use anyhow::Result;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A connection's longest life, in request timeouts.
const CONNECTION_LIFETIME_REQUESTS: u32 = 4;

/// The front's limits (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    /// How long open connections may take to finish once `stop` completes.
    pub grace: Duration,
}

impl Limits {
    pub fn of(server: &crate::config::ServerConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(server.header_timeout_seconds),
            request_timeout: Duration::from_secs(server.request_timeout_seconds),
            max_connections: server.max_connections,
            grace: Duration::from_secs(server.shutdown_grace_seconds),
        }
    }
}

/// Serves `app` on `listener` until `stop` completes; then stops accepting, and lets open
/// requests finish (up to `grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let service = TowerToHyperService::new(app);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of file descriptors, mostly: wait a little rather than spin
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let timeout = limits.request_timeout;
        let per_request = hyper::service::service_fn(move |req: Request<Incoming>| {
            let service = service.clone();
            async move {
                match tokio::time::timeout(timeout, hyper::service::Service::call(&service, req))
                    .await
                {
                    Ok(answered) => answered,
                    Err(_) => {
                        tracing::warn!(
                            seconds = timeout.as_secs(),
                            "request refused: it took longer than the request timeout"
                        );
                        Ok(too_slow())
                    }
                }
            }
        });
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(stream), per_request));
        // A connection lives at most a few request timeouts: a client that pipelines requests
        // and never reads the answers does not keep its slot.
        let lifetime = limits.request_timeout * CONNECTION_LIFETIME_REQUESTS;
        tokio::spawn(async move {
            // a client that breaks off is no error of ours
            let _ = tokio::time::timeout(lifetime, connection).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

fn too_slow() -> Response<Body> {
    let mut answer = Response::new(Body::from("request timed out\n"));
    *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    answer
}
