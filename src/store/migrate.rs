//! Migrations, embedded in the binary and applied in order on start. Each backend has its
//! own SQL for the same schema; `schema_migrations` records what was applied.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "inbox",
        sqlite: include_str!("../../migrations/sqlite/0001_inbox.sql"),
        postgres: include_str!("../../migrations/postgres/0001_inbox.sql"),
    },
    Migration {
        version: 2,
        name: "review",
        sqlite: include_str!("../../migrations/sqlite/0002_review.sql"),
        postgres: include_str!("../../migrations/postgres/0002_review.sql"),
    },
    Migration {
        version: 3,
        name: "apply",
        sqlite: include_str!("../../migrations/sqlite/0003_apply.sql"),
        postgres: include_str!("../../migrations/postgres/0003_apply.sql"),
    },
    Migration {
        version: 4,
        name: "claims",
        sqlite: include_str!("../../migrations/sqlite/0004_claims.sql"),
        postgres: include_str!("../../migrations/postgres/0004_claims.sql"),
    },
    Migration {
        version: 5,
        name: "policies",
        sqlite: include_str!("../../migrations/sqlite/0005_policies.sql"),
        postgres: include_str!("../../migrations/postgres/0005_policies.sql"),
    },
    Migration {
        version: 6,
        name: "replicas",
        sqlite: include_str!("../../migrations/sqlite/0006_replicas.sql"),
        postgres: include_str!("../../migrations/postgres/0006_replicas.sql"),
    },
    Migration {
        version: 7,
        name: "state",
        sqlite: include_str!("../../migrations/sqlite/0007_state.sql"),
        postgres: include_str!("../../migrations/postgres/0007_state.sql"),
    },
    Migration {
        version: 8,
        name: "audit",
        sqlite: include_str!("../../migrations/sqlite/0008_audit.sql"),
        postgres: include_str!("../../migrations/postgres/0008_audit.sql"),
    },
    Migration {
        version: 9,
        name: "requests",
        sqlite: include_str!("../../migrations/sqlite/0009_requests.sql"),
        postgres: include_str!("../../migrations/postgres/0009_requests.sql"),
    },
];

/// The version a fully migrated store is at.
pub fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}
