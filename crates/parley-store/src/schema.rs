//! The schema and its numbered, append-only migrations. An applied migration is never
//! edited: a change is a new entry at the end of `MIGRATIONS`.
//!
//! Every table carries the workspace id. Instants are BIGINT microseconds since the Unix
//! epoch in UTC: the bundled DuckDB has no ICU, so zones are handled in Rust.

/// (version, SQL) in order.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE workspaces (
    id VARCHAR PRIMARY KEY,
    timezone VARCHAR NOT NULL,
    name VARCHAR NOT NULL
);

-- The system of record: every accepted event, verbatim, with the columns that order
-- and group it. Idempotence on (workspace, id) is enforced by a staged anti-join.
CREATE TABLE events (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    rank UTINYINT NOT NULL,
    contact_a VARCHAR,
    contact_b VARCHAR,
    conversation_id VARCHAR,
    message_id VARCHAR,
    body VARCHAR NOT NULL
);

-- One ingest's validated lines, before deduplication. Emptied by every ingest.
CREATE TABLE stage (
    idx BIGINT NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    rank UTINYINT NOT NULL,
    contact_a VARCHAR,
    contact_b VARCHAR,
    conversation_id VARCHAR,
    message_id VARCHAR,
    body VARCHAR NOT NULL
);
CREATE TABLE stage_new AS SELECT * EXCLUDE (idx) FROM stage;
CREATE TABLE touched (contact_id VARCHAR NOT NULL);
CREATE TABLE closure (contact_id VARCHAR NOT NULL);

CREATE TABLE contacts (
    workspace VARCHAR NOT NULL,
    contact_id VARCHAR NOT NULL,
    name VARCHAR,
    name_folded VARCHAR
);

CREATE TABLE conversations (
    workspace VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    contact_id VARCHAR NOT NULL,
    opened_at BIGINT NOT NULL,
    opened_source VARCHAR NOT NULL,
    opened_channel VARCHAR,
    contact_type VARCHAR NOT NULL,
    closed_at BIGINT,
    closed_source VARCHAR,
    closed_by VARCHAR,
    category VARCHAR,
    summary VARCHAR,
    first_assignment_at BIGINT,
    first_assignee VARCHAR,
    first_response_at BIGINT,
    first_response_by VARCHAR,
    last_assignment_at BIGINT,
    -- '' stands for Unassigned; NULL for no assignee at all.
    last_assignee VARCHAR,
    time_to_first_assignment BIGINT,
    first_response_time BIGINT,
    first_assignment_to_first_response BIGINT,
    last_assignment_to_response BIGINT,
    resolution_time BIGINT,
    first_assignment_to_close BIGINT,
    last_assignment_to_close BIGINT,
    average_response_time BIGINT,
    assignments BIGINT NOT NULL,
    incoming_messages BIGINT NOT NULL,
    outgoing_messages BIGINT NOT NULL,
    responses BIGINT NOT NULL
);

CREATE TABLE messages (
    workspace VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL,
    contact_id VARCHAR NOT NULL,
    conversation_id VARCHAR,
    incoming BOOLEAN NOT NULL,
    at_us BIGINT NOT NULL,
    channel_id VARCHAR NOT NULL,
    source VARCHAR,
    user_id VARCHAR,
    message_type VARCHAR,
    subtype VARCHAR,
    broadcast VARCHAR,
    content VARCHAR NOT NULL,
    status VARCHAR,
    delivered_at BIGINT,
    read_at BIGINT,
    failed_at BIGINT,
    error VARCHAR
);

CREATE TABLE activities (
    workspace VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    contact_id VARCHAR NOT NULL,
    merged_contact_id VARCHAR,
    source VARCHAR NOT NULL,
    user_id VARCHAR
);

CREATE TABLE connections (
    workspace VARCHAR NOT NULL,
    contact_id VARCHAR NOT NULL,
    channel_id VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    user_id VARCHAR
);

CREATE TABLE assignments (
    workspace VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    conversation_id VARCHAR,
    contact_id VARCHAR NOT NULL,
    previous_assignee VARCHAR,
    new_assignee VARCHAR,
    source VARCHAR NOT NULL,
    assigned_by VARCHAR
);

-- Each user's team over time, [valid_from, valid_to), rebuilt from directory events.
CREATE TABLE user_teams (
    workspace VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT NOT NULL,
    team_id VARCHAR NOT NULL
);
"#,
)];

/// The fact tables, each derived from the event log and rebuildable from it.
pub const FACT_TABLES: &[&str] = &[
    "contacts",
    "conversations",
    "messages",
    "activities",
    "connections",
    "assignments",
];
