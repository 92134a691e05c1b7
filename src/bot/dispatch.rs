//! The bot's entry: the worker's [`Handler`] for the subaccounts project. An MR event is
//! reviewed, a merge applied, a `/orgvend` command in a comment carried out, an issue's
//! request answered; events of other kinds and the bot's own notes are ignored.

use super::Bot;
use super::apply::Asker;
use crate::aws::Aws;
use crate::core::command::{self, Command};
use crate::gitlab::GitLab;
use crate::gitlab::event::{Event, MrAction};
use crate::serve::worker::{Handler, Job};
use anyhow::Result;

impl<G: GitLab, A: Aws> Handler for Bot<G, A> {
    async fn handle(&self, job: Job) -> Result<()> {
        match &job.event {
            Event::MergeRequest(e) => match &e.action {
                MrAction::Merged => self.apply(e.iid, Some(job.delivery.lease()), false).await,
                // `orgvend apply --mr N`: only from the command line, never from a webhook
                MrAction::Unknown { action } if action == CLI_APPLY && from_cli(&job) => {
                    tracing::info!(mr = e.iid, "`orgvend apply --mr`: applying deliberately");
                    self.apply(e.iid, Some(job.delivery.lease()), true).await
                }
                MrAction::Closed => {
                    tracing::info!(mr = e.iid, "closed: nothing to review");
                    Ok(())
                }
                _ => self.review(e.iid).await,
            },
            Event::Note(n) => {
                let bot = &self.ctx.config.gitlab.bot_username;
                if n.system
                    || n.edited
                    || n.author.as_ref().and_then(|a| a.username.as_deref()) == Some(bot.as_str())
                {
                    return Ok(());
                }
                match command::parse(&n.body) {
                    Some(Command::Plan) => self.review(n.mr_iid).await,
                    Some(Command::Retry) => {
                        let who = n.author.as_ref().and_then(|a| a.id).unwrap_or(0);
                        self.asked_to_apply(n.mr_iid, who, Some(job.delivery.lease()), false)
                            .await
                    }
                    Some(Command::Apply) => {
                        let who = n.author.as_ref().and_then(|a| a.id).unwrap_or(0);
                        self.asked_to_apply(n.mr_iid, who, Some(job.delivery.lease()), true)
                            .await
                    }
                    Some(other) => {
                        tracing::info!(mr = n.mr_iid, command = ?other, "command not handled here");
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Event::Issue(e) => match e.action.as_str() {
                "open" | "reopen" => self.request(e.iid, false, None).await,
                // the edit's author, as the delivery names them: a second record of who
                // edited the request beside GitLab's system notes
                "update" => {
                    let editor = e
                        .actor
                        .as_ref()
                        .filter(|_| e.description_changed)
                        .and_then(|a| Some((a.id?, a.username.clone().unwrap_or_default())));
                    self.request(e.iid, false, editor).await
                }
                _ => Ok(()),
            },
            Event::IssueNote(n) => {
                let bot = &self.ctx.config.gitlab.bot_username;
                if n.system
                    || n.edited
                    || n.author.as_ref().and_then(|a| a.username.as_deref()) == Some(bot.as_str())
                {
                    return Ok(());
                }
                match command::parse(&n.body) {
                    Some(Command::Request) => self.request(n.issue_iid, true, None).await,
                    // on the drift issue: a repair, by a member of the approval group
                    Some(Command::Apply) => {
                        let Some((id, username)) = n
                            .author
                            .as_ref()
                            .and_then(|a| Some((a.id?, a.username.clone().unwrap_or_default())))
                        else {
                            return Ok(());
                        };
                        if self.drift_issue_iid().await? != Some(n.issue_iid) {
                            tracing::info!(
                                issue = n.issue_iid,
                                "`/orgvend apply` on an issue that is not the drift issue: ignored"
                            );
                            return Ok(());
                        }
                        // in order with the drift runs; who asked is checked when it runs
                        let asked = format!("note-{}", n.note_id.unwrap_or(job.delivery.id as u64));
                        let id = super::inbox::queue_repair(
                            &self.ctx.store,
                            "",
                            Some((id, &username)),
                            &asked,
                            self.ctx.clock.now_ms(),
                        )
                        .await?;
                        tracing::info!(delivery = id, user = username, "repair queued");
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            // orgvend's timer only: a webhook's stored headers never hold the mark
            Event::Drift { repair: None, .. } if from_timer(&job) => {
                self.drift_now().await.map(drop)
            }
            // `orgvend apply --account`: the command line only
            Event::Drift {
                repair: Some(account),
                asker: None,
            } if from_cli(&job) => {
                let only = (!account.is_empty()).then_some(account.as_str());
                self.repair(Asker::Cli, only, Some(job.delivery.lease()))
                    .await
            }
            // `/orgvend apply` on the drift issue, queued by its comment's delivery
            Event::Drift {
                repair: Some(_),
                asker: Some(a),
            } if source(&job).is_some_and(|v| v == super::inbox::FROM_ISSUE) => {
                let asker = Asker::Member {
                    id: a.id.unwrap_or(0),
                    username: a.username.clone().unwrap_or_default(),
                };
                self.repair(asker, None, Some(job.delivery.lease())).await
            }
            Event::Drift { .. } => {
                tracing::warn!(
                    delivery = job.delivery.id,
                    "a drift delivery not from orgvend's timer: ignored"
                );
                Ok(())
            }
            Event::Ignored { .. } => Ok(()),
        }
    }

    async fn reconcile(&self) -> Result<usize> {
        Bot::reconcile(self).await
    }

    async fn start(&self) -> Result<()> {
        self.mark_first_run().await
    }
}

pub use super::inbox::{CLI_APPLY, CLI_HEADER, TIMER};

fn from_cli(job: &Job) -> bool {
    source(job).is_some_and(|v| v == "cli")
}

fn from_timer(job: &Job) -> bool {
    source(job).is_some_and(|v| v == TIMER)
}

fn source(job: &Job) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&job.delivery.headers)
        .ok()
        .and_then(|h| h.get(CLI_HEADER).cloned())
}
