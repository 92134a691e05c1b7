//! The command line's own work, beside `orgvend serve`: `orgvend check` over a checkout
//! (the core plus a filesystem and git reader).

/// `orgvend check`: read, check, plan, print; exit 0 / 1 / 2.
pub mod check;
/// Reading a working tree, or a git ref of it, as source files.
pub mod checkout;
/// `orgvend doctor`: the GitLab and AWS set-up orgvend's safety rests on.
pub mod doctor;

pub use check::{CheckArgs, check};
