//! What each account was last applied as, under approval: the digest of its declaration
//! ([`crate::core::decl::Account::declared_digest`]) after an apply of it went through the
//! gate and every step. A repair (`/orgvend apply` on the drift issue, `orgvend apply
//! --account`) runs only for an account the target branch still declares exactly so: a
//! declaration changed by a merge the gate refused, or by a push, is never applied by a
//! repair.
//!
//! The record is kept by AWS account id (an email may change). It follows an account from
//! merge to merge only while each merge started from it: a merge whose base already differed
//! (a refused merge came between) does not make what it landed "approved". Only a new or
//! adopted account starts a record: an account applied before orgvend kept them gets one by
//! an approved MR that adds `adopt = "<id>"` to it.

use crate::aws::Aws;
use crate::bot::Bot;
use crate::gitlab::GitLab;
use anyhow::Result;

/// An account's declaration at an applied merge, to keep once its steps are done.
#[derive(Debug, Clone)]
pub(crate) struct Approval {
    /// At the merge.
    pub(crate) digest: String,
    /// At the merge's base (none for a new account).
    pub(crate) base: Option<String>,
    /// A new or adopted account: its record starts here.
    pub(crate) fresh: bool,
}

fn key(account_id: &str) -> String {
    format!("approved:{account_id}")
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Keeps what an applied merge made of the account `account_id`, when the merge started
    /// from what was approved before (or the account is new to orgvend).
    pub(crate) async fn keep_approval(&self, account_id: &str, a: &Approval) -> Result<()> {
        let key = key(account_id);
        let before = self.ctx.store.state(&key).await?;
        let follows = match (&before, &a.base) {
            (Some(b), Some(base)) => b == base || b == &a.digest,
            (Some(b), None) => b == &a.digest,
            (None, _) => false,
        };
        if a.fresh || follows {
            self.ctx
                .store
                .set_state(&key, &a.digest, self.ctx.clock.now_ms())
                .await?;
        } else {
            tracing::warn!(
                account = account_id,
                "applied, but from a declaration that was never applied under approval (or before orgvend kept them): a repair will not run for this account until an approved MR settles it"
            );
        }
        Ok(())
    }

    /// The digest of the account's declaration as last applied under approval.
    pub(crate) async fn approved_digest(&self, account_id: &str) -> Result<Option<String>> {
        self.ctx.store.state(&key(account_id)).await
    }
}
