//! `orgvend serve` as a child process: started with a config, its log read line by line,
//! killed and reaped whatever happens to the test.
#![allow(dead_code)]

use super::TOKEN;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::sync::mpsc::Receiver<String>,
}

pub fn spawn(config: &std::path::Path) -> Serve {
    spawn_env(config, &[])
}

pub fn spawn_env(config: &std::path::Path, env: &[(&str, &str)]) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("ORGVEND_WEBHOOK_TOKENS", TOKEN)
        .env("ORGVEND_GITLAB_TOKEN", super::fake_gitlab::BOT_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgvend starts");
    let (tx, rx) = std::sync::mpsc::channel();
    // Owned by `Serve` from here on, whose Drop kills and reaps it whatever happens next.
    let mut serve = Serve {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        log: rx,
    };
    let out: Box<dyn std::io::Read + Send> = Box::new(serve.child.stdout.take().expect("piped"));
    let err: Box<dyn std::io::Read + Send> = Box::new(serve.child.stderr.take().expect("piped"));
    for pipe in [out, err] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = serve
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("orgvend says where it listens within 20 s");
        if let Some(rest) = line.split("listen=").nth(1) {
            serve.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return serve;
        }
    }
}

impl Serve {
    /// Everything the process printed, up to the close of its pipes: for a process that
    /// has exited (the reader threads may still be forwarding its last lines).
    pub fn finished_log(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        loop {
            match self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("orgvend's output still open 10 s after it exited: {lines:#?}")
                }
            }
        }
    }
}

impl Drop for Serve {
    /// A failing test never leaves a server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
