//! The review of one checkout (or one MR): read results, plan, violations, approvals and the
//! verdict, as one value the renderers turn into a note, terminal text or JSON.

pub use crate::core::approval::IgnoredApproval;
use crate::core::approval::{self, ApprovalRequirement};
use crate::core::decl::{Declarations, ParseError};
use crate::core::plan::{self, Action, Plan};
use crate::core::policy::Policy;
use crate::core::rules::{self, CheckInput, MrFacts, Severity, Violation};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A Terraform file does not parse: nothing can be judged.
    Invalid,
    /// Policy violations block the merge.
    Blocked,
    /// Policy passes; approvals are missing.
    AwaitingApproval,
    /// Policy passes; approvals were not checked (a local `orgvend check`).
    Passes,
    /// Policy passes and the approvals are there: merging is safe.
    Ready,
}

impl Verdict {
    /// The verdict's stored name (reviews in the store keep it).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Invalid => "invalid",
            Verdict::Blocked => "blocked",
            Verdict::AwaitingApproval => "awaiting_approval",
            Verdict::Passes => "passes",
            Verdict::Ready => "ready",
        }
    }

    /// Whether merging would be refused.
    pub fn blocks(self) -> bool {
        matches!(
            self,
            Verdict::Invalid | Verdict::Blocked | Verdict::AwaitingApproval
        )
    }
}

/// Approval state as far as it is known.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Approvals {
    /// `orgvend check` cannot see the MR.
    NotCheckedLocally { required: ApprovalRequirement },
    /// Read from the GitLab API by the bot.
    Checked {
        required: ApprovalRequirement,
        /// Approvals that count, by username.
        counted: Vec<String>,
        /// Approvals that do not count, with why (`@bob: the MR's author`).
        ignored: Vec<IgnoredApproval>,
    },
}

impl Approvals {
    pub fn required(&self) -> &ApprovalRequirement {
        match self {
            Approvals::NotCheckedLocally { required } | Approvals::Checked { required, .. } => {
                required
            }
        }
    }

    /// Approvals still missing; `None` when not checked.
    pub fn missing(&self) -> Option<u32> {
        match self {
            Approvals::NotCheckedLocally { .. } => None,
            Approvals::Checked {
                required, counted, ..
            } => Some(required.count.saturating_sub(counted.len() as u32)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub close: usize,
    pub errors: usize,
    pub warnings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub summary: Summary,
    pub parse_errors: Vec<ParseError>,
    pub violations: Vec<Violation>,
    pub approvals: Approvals,
    pub plan: Plan,
    /// What was compared, for the header (`main..feature`, a commit sha).
    pub head_label: Option<String>,
}

/// What an assessment judges: the declarations at the base and the head, and the facts of
/// the change.
pub struct AssessInput<'a> {
    pub base: Option<&'a Declarations>,
    pub head: &'a Declarations,
    pub change: ChangeInput<'a>,
}

impl<'a> AssessInput<'a> {
    /// An assessment as `orgvend check` makes it: no MR, no policy change, approvals not
    /// checked.
    pub fn local(
        base: Option<&'a Declarations>,
        head: &'a Declarations,
        policy: &'a Policy,
    ) -> AssessInput<'a> {
        ChangeInput::local(policy).with(base, head)
    }
}

/// The facts of a change besides its declarations (the incremental review finds its own
/// declarations).
pub struct ChangeInput<'a> {
    pub policy: &'a Policy,
    pub mr: Option<&'a MrFacts>,
    /// The files of `policies/` the change touches (a policy change needs its own
    /// approvals, and may not come with account changes).
    pub policy_changed: &'a [String],
    /// Why the policy the change proposes does not load, if it does not.
    pub proposed_policy: Option<&'a crate::core::policy::PolicyError>,
    /// Usernames whose approvals count, and those ignored, from the GitLab API. `None` locally.
    pub approvals: Option<(Vec<String>, Vec<IgnoredApproval>)>,
    pub head_label: Option<String>,
}

impl<'a> ChangeInput<'a> {
    /// No MR, no policy change, approvals not checked (see [`AssessInput::local`]).
    pub fn local(policy: &'a Policy) -> ChangeInput<'a> {
        ChangeInput {
            policy,
            mr: None,
            policy_changed: &[],
            proposed_policy: None,
            approvals: None,
            head_label: None,
        }
    }

    /// The assessment of `head` against `base` with these facts.
    pub fn with<'b>(self, base: Option<&'b Declarations>, head: &'b Declarations) -> AssessInput<'b>
    where
        'a: 'b,
    {
        AssessInput {
            base,
            head,
            change: self,
        }
    }
}

/// Reads nothing, calls nothing: judges the declarations against the policy.
pub fn assess(input: AssessInput) -> Report {
    let facts = &input.change;
    let mut parse_errors = input.head.parse_errors.clone();
    if let Some(base) = input.base {
        parse_errors.extend(base.parse_errors.iter().cloned());
    }
    // A file that does not parse would look like removed accounts: plan nothing.
    let (plan, violations) = if parse_errors.is_empty() {
        // custom rules that read no change are judged while the plan is made
        let early = rules::custom_before_plan(facts.policy);
        let no_plan = Plan::default();
        std::thread::scope(|s| {
            let custom = early.then(|| {
                s.spawn(|| rules::check_custom(facts.policy, &checking(&input, &no_plan)))
            });
            let plan = plan::plan(input.base, input.head, facts.policy);
            let mut violations = rules::check_with(facts.policy, &checking(&input, &plan), !early);
            if let Some(custom) = custom {
                violations.extend(custom.join().expect("the custom rules' thread panicked"));
                rules::settle(&mut violations);
            }
            (plan, violations)
        })
    } else {
        (Plan::default(), Vec::new())
    };
    let required = approval::requirement(facts.policy, &plan, facts.policy_changed);
    let approvals = match input.change.approvals {
        None => Approvals::NotCheckedLocally { required },
        Some((counted, ignored)) => Approvals::Checked {
            required,
            counted,
            ignored,
        },
    };
    let mut report = Report {
        verdict: Verdict::Invalid,
        summary: Summary {
            create: 0,
            update: 0,
            close: 0,
            errors: 0,
            warnings: 0,
        },
        parse_errors,
        violations,
        approvals,
        plan,
        head_label: input.change.head_label,
    };
    report.conclude();
    report
}

/// What the rules read of an assessment, with `plan`.
fn checking<'b>(input: &'b AssessInput<'_>, plan: &'b Plan) -> CheckInput<'b> {
    CheckInput {
        head: input.head,
        base: input.base,
        plan,
        mr: input.change.mr,
        policy_changed: input.change.policy_changed,
        proposed_policy: input.change.proposed_policy,
    }
}

impl Report {
    /// Sets the verdict and the summary from the parse errors, violations, approvals and plan.
    pub(crate) fn conclude(&mut self) {
        let errors = self
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
            .count();
        self.verdict = if !self.parse_errors.is_empty() {
            Verdict::Invalid
        } else if errors > 0 {
            Verdict::Blocked
        } else {
            match self.approvals.missing() {
                None => Verdict::Passes,
                Some(0) => Verdict::Ready,
                Some(_) => Verdict::AwaitingApproval,
            }
        };
        let count = |a: Action| self.plan.changes.iter().filter(|c| c.action == a).count();
        self.summary = Summary {
            create: count(Action::Create),
            update: count(Action::Update),
            close: count(Action::Close),
            errors,
            warnings: self.violations.len() - errors,
        };
    }
}
