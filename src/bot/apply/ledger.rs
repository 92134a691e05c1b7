//! The ledger: what the apply knows of each account across crashes. Every step's intent is
//! recorded before its call and its result after (`Bot::record_step`); a creation's request
//! id and the account's id are kept by email the moment AWS gives them (`Bot::remember`), so
//! a crash anywhere never creates a second account.

//!
//! Every ledger write is conditioned on the delivery's claim (the fence): a worker whose lease
//! was lost, and whose delivery was claimed again since, writes nothing and stops.

use super::context::RunCtx;
use crate::aws::Aws;
use crate::bot::Bot;
use crate::gitlab::GitLab;
use crate::store::{KnownAccount, StepWrite};
use anyhow::Result;

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Keeps what is known of the account with `email`: its id, its creation request, and
    /// whether orgvend is calling CreateAccount for it right now (`creating`, set just
    /// before the call, cleared with the request id).
    pub(super) async fn remember(
        &self,
        cx: &RunCtx<'_, A::Member>,
        email: &str,
        name: &str,
        account_id: Option<String>,
        request: Option<String>,
        creating: bool,
    ) -> Result<()> {
        self.ctx
            .store
            .put_known_account(
                KnownAccount {
                    email: email.to_lowercase(),
                    name: name.to_string(),
                    account_id,
                    create_request_id: request,
                    creating,
                },
                cx.merge_sha,
                self.ctx.clock.now_ms(),
                cx.fence,
            )
            .await
    }

    /// Records a step's state (`intent`, `done`, `failed`) and its detail in the ledger.
    pub(super) async fn record_step(
        &self,
        cx: &RunCtx<'_, A::Member>,
        email: &str,
        key: &str,
        state: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let now = self.ctx.clock.now_ms();
        self.ctx
            .store
            .step(
                StepWrite {
                    merge_sha: cx.merge_sha.to_string(),
                    account: email.to_string(),
                    step: key.to_string(),
                    state: state.to_string(),
                    detail: detail.map(str::to_string),
                    now_ms: now,
                },
                cx.fence,
            )
            .await
    }
}
