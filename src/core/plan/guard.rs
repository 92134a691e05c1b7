//! The guard steps of a new account: its KMS key, AWS Config (recorder, delivery channel,
//! rules) and CloudTrail (its own trail, or the organization's verified), as its type's
//! baseline says.

use super::{Step, Target, fill};
use crate::core::policy::security::{Guard, Trail};

pub(super) fn steps(g: &Guard, t: &Target) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(k) = &g.kms {
        steps.push(Step::KmsKey {
            alias: fill(&k.alias, t),
            previous: None,
        });
    }
    if let Some(c) = &g.config {
        steps.push(Step::ConfigRecorder {
            name: c.recorder.clone(),
        });
        steps.push(Step::DeliveryChannel {
            bucket: c.bucket.clone(),
        });
        steps.extend(c.rules.iter().map(|r| Step::ConfigRule {
            name: r.name.clone(),
            identifier: r.identifier.clone(),
            parameters: r.parameters.clone(),
        }));
    }
    match &g.cloudtrail {
        Trail::Off => {}
        Trail::Organization => steps.push(Step::OrganizationTrail),
        Trail::Account { name, bucket } => steps.push(Step::Trail {
            name: name.clone(),
            bucket: bucket.clone(),
        }),
    }
    steps
}
