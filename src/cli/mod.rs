//! The command line's own work, beside `orgvend serve`: `orgvend check` over a checkout
//! (the core plus a filesystem and git reader).

/// `orgvend apply --mr N`: a deliberate apply, through the inbox.
pub mod apply;
/// `orgvend check`: read, check, plan, print; exit 0 / 1 / 2.
pub mod check;
/// Reading a working tree, or a git ref of it, as source files.
pub mod checkout;
/// `orgvend doctor`: the GitLab and AWS set-up orgvend's safety rests on.
pub mod doctor;
/// `orgvend drift`: the checkout's declarations against the organization.
pub mod drift;
/// `orgvend accept-email`: the second phase of an email change.
pub mod email;
/// `orgvend import`: declarations for the organization's accounts the checkout lacks.
pub mod import;
/// `orgvend new`: a new account's module pair, written in the repository's house style.
pub mod new;

pub use check::{CheckArgs, check};
pub use new::{NewArgs, new};

/// Writes to standard output through a buffer, as `write` produces it (a reader that went
/// away is not an error, as for [`print`]).
pub fn emit(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if let Err(e) = write(&mut out).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("orgvend: writing the output: {e}");
    }
}

/// Writes to standard output. A reader that went away (`orgvend check | head`) is not an
/// error: the rest is dropped quietly, as other Unix tools do.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("orgvend: writing the output: {e}");
    }
}
