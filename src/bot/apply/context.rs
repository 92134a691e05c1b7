//! What the account runs of one apply share (the report shown in the note, the creation
//! slots, lookups made once) and what each account's run carries.

use crate::aws::OrgAccount;
use crate::core::plan::{Change, Step};
use crate::core::progress::ApplyReport;
use crate::gitlab::MergeRequest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// One account's way through its steps.
pub(crate) struct AccountRun<'a> {
    pub(crate) index: usize,
    pub(crate) change: &'a Change,
    pub(crate) steps: Vec<Step>,
    pub(crate) email: String,
    pub(crate) account_id: Option<String>,
    /// What to keep as approved once every step is done (none for a close or a repair).
    pub(crate) approval: Option<super::approved::Approval>,
}

/// Where an apply's progress is shown: the merged MR's note, or a repair's note on the drift
/// issue (written on the first progress, then edited).
pub(crate) enum Sink<'a> {
    Mr(&'a MergeRequest),
    /// A repair's note on the drift issue, with what it left and why.
    Issue {
        iid: u64,
        note: Mutex<Option<u64>>,
        left: Vec<String>,
    },
    /// A repair with no drift issue open: the log only.
    Log {
        left: Vec<String>,
    },
}

/// Shared by the account runs of one apply.
pub(crate) struct RunCtx<'a, M> {
    /// Where the progress is shown.
    pub(crate) sink: Sink<'a>,
    pub(crate) merge_sha: &'a str,
    /// The claim of the delivery this apply runs for: ledger writes hold only while it does.
    pub(crate) fence: Option<crate::store::Lease>,
    /// The lock that keeps other replicas from applying, checked before every step.
    pub(crate) apply_lock: &'a crate::store::ApplyLock,
    pub(crate) report: Mutex<ApplyReport>,
    pub(crate) creations: tokio::sync::Semaphore,
    pub(crate) org_accounts: tokio::sync::Mutex<Option<Vec<OrgAccount>>>,
    pub(crate) ous: tokio::sync::Mutex<HashMap<String, String>>,
    pub(crate) members: tokio::sync::Mutex<HashMap<String, std::sync::Arc<M>>>,
    pub(crate) last_note: Mutex<Option<Instant>>,
    /// Held from counting closures to reserving one, so that the closures of one apply never
    /// pass the quota together.
    pub(crate) closures: tokio::sync::Mutex<()>,
}

impl<'a, M> RunCtx<'a, M> {
    /// A run's shared state, with nothing looked up yet; `creations` at once at most.
    pub(crate) fn new(
        sink: Sink<'a>,
        merge_sha: &'a str,
        fence: Option<crate::store::Lease>,
        apply_lock: &'a crate::store::ApplyLock,
        report: ApplyReport,
        creations: usize,
    ) -> RunCtx<'a, M> {
        RunCtx {
            sink,
            merge_sha,
            fence,
            apply_lock,
            report: Mutex::new(report),
            creations: tokio::sync::Semaphore::new(creations.max(1)),
            org_accounts: tokio::sync::Mutex::new(None),
            ous: tokio::sync::Mutex::new(HashMap::new()),
            members: tokio::sync::Mutex::new(HashMap::new()),
            last_note: Mutex::new(None),
            closures: tokio::sync::Mutex::new(()),
        }
    }

    /// Shows the account's id in the note.
    pub(crate) fn set_account_id(&self, index: usize, id: &str) {
        self.report.lock().expect("report lock").accounts[index].account_id = Some(id.to_string());
    }
}
