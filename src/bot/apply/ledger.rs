//! The ledger: what the apply knows of each account across crashes. Every step's intent is
//! recorded before its call and its result after (`Bot::record_step`); a creation's request
//! id and the account's id are kept by email the moment AWS gives them (`Bot::remember`), so
//! a crash anywhere never creates a second account.

use crate::aws::Aws;
use crate::bot::Bot;
use crate::gitlab::GitLab;
use crate::store::KnownAccount;
use anyhow::Result;

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Keeps what is known of the account with `email`: its id, its creation request, and
    /// whether orgvend is calling CreateAccount for it right now (`creating`, set just
    /// before the call, cleared with the request id).
    pub(super) async fn remember(
        &self,
        email: &str,
        name: &str,
        account_id: Option<String>,
        request: Option<String>,
        creating: bool,
        merge_sha: &str,
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
                merge_sha,
                self.ctx.clock.now_ms(),
            )
            .await
    }

    /// Records a step's state (`intent`, `done`, `failed`) and its detail in the ledger.
    pub(super) async fn record_step(
        &self,
        merge_sha: &str,
        email: &str,
        key: &str,
        state: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let now = self.ctx.clock.now_ms();
        self.ctx
            .store
            .step(merge_sha, email, key, state, detail, now)
            .await
    }
}
