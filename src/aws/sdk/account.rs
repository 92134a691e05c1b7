//! The Account Management API (`account`), from the management account: renames and the two
//! phases of an email change. Needs trusted access for AWS Account Management in the
//! organization.

use super::{SdkAws, err};
use anyhow::Result;

impl SdkAws {
    pub(super) async fn start_email(&self, account_id: &str, email: &str) -> Result<()> {
        self.calls.write()?;
        self.account
            .start_primary_email_update()
            .account_id(account_id)
            .primary_email(email)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    pub(super) async fn accept_email(
        &self,
        account_id: &str,
        email: &str,
        code: &crate::config::Secret,
    ) -> Result<()> {
        self.calls.write()?;
        self.account
            .accept_primary_email_update()
            .account_id(account_id)
            .primary_email(email)
            .otp(code.expose())
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    pub(super) async fn put_name(&self, account_id: &str, name: &str) -> Result<()> {
        self.calls.write()?;
        self.account
            .put_account_name()
            .account_id(account_id)
            .account_name(name)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }
}
