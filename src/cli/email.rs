//! `orgvend accept-email`: the second phase of an email change. The apply of the MR started
//! it (`StartPrimaryEmailUpdate`: AWS mailed a one-time code to the new address); an operator
//! who received the code completes it here. The code is read from standard input — never an
//! argument (shell history, process lists) — and is never printed or logged.

use crate::aws::Aws;
use crate::config::Secret;
use anyhow::{Context, Result, bail};
use std::io::BufRead;

#[derive(Debug, clap::Args)]
pub struct AcceptEmailArgs {
    /// The service configuration (its `[aws]` section says how to reach the organization).
    #[arg(long, default_value = "orgvend.toml")]
    pub config: std::path::PathBuf,
    /// The account whose email changes (the apply's note names it).
    #[arg(long)]
    pub account_id: String,
    /// The new email, as the MR declares it.
    #[arg(long)]
    pub email: String,
}

/// Reads the one-time code: one line of standard input, digits only.
pub fn read_code(input: &mut impl BufRead) -> Result<Secret> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("reading the one-time code from standard input")?;
    let code = line.trim();
    if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
        bail!("the one-time code is the digits AWS mailed to the new address (nothing else)");
    }
    Ok(Secret::new(code))
}

/// Completes the change: AWS checks the code.
pub async fn accept<A: Aws>(aws: &A, account_id: &str, email: &str, code: &Secret) -> Result<()> {
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("`{account_id}` is not an AWS account id (12 digits)");
    }
    aws.accept_email_update(account_id, email, code)
        .await
        .with_context(|| format!("AWS did not accept the change of {account_id}'s email to {email} (a wrong or expired code is answered so; the apply can start it again: `/orgvend retry`)"))
}

/// `orgvend accept-email` from the command line; returns the exit code.
pub async fn accept_cmd(args: &AcceptEmailArgs, aws: &crate::config::AwsConfig) -> i32 {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("one-time code mailed to {}: ", args.email);
    }
    let code = match read_code(&mut std::io::stdin().lock()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgvend accept-email: {e:#}");
            return super::check::EXIT_ERROR;
        }
    };
    let sdk = crate::aws::sdk::SdkAws::new(&crate::aws::sdk::AwsTarget::of(aws)).await;
    match accept(&sdk, &args.account_id, &args.email, &code).await {
        Ok(()) => {
            println!(
                "{}: the email is {} now; drift no longer shows it as pending",
                args.account_id, args.email
            );
            0
        }
        Err(e) => {
            eprintln!("orgvend accept-email: {e:#}");
            super::check::EXIT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_digits_on_one_line() {
        assert_eq!(read_code(&mut &b"123456\n"[..]).unwrap().expose(), "123456");
        for bad in [
            &b"\n"[..],
            b"12 34\n",
            b"$(reboot)\n",
            b"12345678901234567890\n",
        ] {
            assert!(read_code(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }
}
