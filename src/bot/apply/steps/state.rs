//! The account's remote Terraform state: a versioned, encrypted, private S3 bucket and a
//! DynamoDB lock table.

use super::super::Applier;
use super::super::context::{AccountRun, RunCtx};
use crate::aws::{Aws, MemberAws};
use crate::bot::Bot;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The state bucket and the lock table.
    pub(super) async fn exec_state_backend(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        match step {
            Step::StateBucket { .. } => {
                let m = self.member(aws, cx, run, policy).await?;
                let bucket = self.bucket_name(run, policy)?;
                let state = match m.bucket(&bucket).await? {
                    Some(s) => s,
                    None => {
                        m.create_bucket(&bucket).await?;
                        Default::default()
                    }
                };
                for what in super::bucket_repairs(&state) {
                    match what {
                        "versioning" => m.enable_versioning(&bucket).await?,
                        "encryption" => m.enable_encryption(&bucket).await?,
                        _ => m.block_public_access(&bucket).await?,
                    }
                }
                Ok(Some(bucket))
            }
            Step::LockTable { table } => {
                let m = self.member(aws, cx, run, policy).await?;
                if !m.table_exists(table).await? {
                    m.create_lock_table(table).await?;
                }
                Ok(None)
            }
            other => Err(anyhow!("not a step of this area: {}", other.key())),
        }
    }
}
