//! Structured logs (text or JSON) through `tracing`. Secrets never reach a log line: the
//! config keeps them in `Secret`, and the webhook logs only why a delivery was refused.

use crate::config::LogConfig;
use anyhow::Result;
use tracing_subscriber::EnvFilter;

pub fn init(config: &LogConfig) -> Result<()> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.level))?;
    use std::io::IsTerminal;
    // Colours only for a person at a terminal, never in files or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    let result = if config.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("starting the logger: {e}"))
}
