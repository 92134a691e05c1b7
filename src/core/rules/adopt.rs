//! Rule `account.adopt`: a declaration that takes over an existing AWS account names it by
//! its 12-digit id. orgvend never takes over an account silently: without `adopt`, an email
//! AWS already knows fails the apply; with it, the review shows which account is adopted.

use super::Violation;
use crate::core::decl::{self, Declarations};

pub(super) fn check_adopt(decls: &Declarations, out: &mut Vec<Violation>) {
    for a in &decls.accounts {
        let (Some(field), Some(id)) = (&a.adopt, a.adopt()) else {
            continue; // absent, or not a string: `value.*` reports it
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            out.push(Violation::error(
                "account.adopt",
                &field.at,
                &a.key,
                format!(
                    "`{}` = `{id}` is not an AWS account id (12 digits)",
                    decl::ADOPT
                ),
                "write the id of the account to take over, as the AWS console shows it (12 digits), or remove `adopt` to create a new account".into(),
            ));
        }
    }
}
