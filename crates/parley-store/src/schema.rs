//! The schema and its numbered, append-only migrations. An applied migration is never
//! edited: a change is a new entry at the end of `MIGRATIONS`.
//!
//! Every table carries the workspace id. Instants are BIGINT microseconds since the Unix
//! epoch in UTC: the bundled DuckDB has no ICU, so zones are handled in Rust.

/// (version, SQL) in order.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    (
        2,
        r#"
-- Storage laid out for lookups by key at any size. DuckDB prunes row groups by their
-- min/max statistics, so each big table is appended in order of a hash of the key it is
-- looked up by (`hash()` of DuckDB, checked at open by `HASH_PROBE`): a lookup of a few
-- keys, written as a join with a small temp table, reads a few row groups, not the
-- table. The old log is moved aside and re-ingested by `DuckStore::migrate`.
ALTER TABLE events RENAME TO events_v1;
DROP TABLE stage;
DROP TABLE stage_new;
DROP TABLE touched;
DROP TABLE closure;

-- Activity events whose walk is known, as typed columns (`columns.rs`): the log is
-- kept as what SPEC §2 makes of each event (unknown fields are ignored), parsed once.
-- `owner` is the contact whose history applies the event (the opener of a closed
-- conversation, the sender or receiver of a receipt's message, the primary contact of
-- a merge); `oh` = hash(owner) orders the table. `body` is only set in `stage`, for
-- directory events.
CREATE TABLE events (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    rank UTINYINT NOT NULL,
    contact_a VARCHAR,
    contact_b VARCHAR,
    key VARCHAR,
    name VARCHAR,
    source VARCHAR,
    user_id VARCHAR,
    channel_id VARCHAR,
    assignee VARCHAR,
    category VARCHAR,
    summary VARCHAR,
    status VARCHAR,
    error VARCHAR,
    message_type VARCHAR,
    subtype VARCHAR,
    bc_id VARCHAR,
    bc_name VARCHAR,
    content_type VARCHAR,
    content_text VARCHAR,
    body VARCHAR,
    owner VARCHAR NOT NULL,
    oh UBIGINT NOT NULL
);

-- Closes and receipts whose conversation or message is not known yet (SPEC §2.3: they
-- count once it arrives); `key` is that conversation or message id.
CREATE TABLE pending (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    rank UTINYINT NOT NULL,
    contact_a VARCHAR,
    contact_b VARCHAR,
    key VARCHAR,
    name VARCHAR,
    source VARCHAR,
    user_id VARCHAR,
    channel_id VARCHAR,
    assignee VARCHAR,
    category VARCHAR,
    summary VARCHAR,
    status VARCHAR,
    error VARCHAR,
    message_type VARCHAR,
    subtype VARCHAR,
    bc_id VARCHAR,
    bc_name VARCHAR,
    content_type VARCHAR,
    content_text VARCHAR,
    body VARCHAR
);

-- Users, teams and channels: few rows, read whole by every report.
CREATE TABLE directory_events (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    body VARCHAR NOT NULL
);

-- Every accepted event id (idempotence), in order of h = hash(id).
CREATE TABLE event_ids (workspace VARCHAR NOT NULL, h UBIGINT NOT NULL, id VARCHAR NOT NULL);
-- Who opened each conversation id and who sent or received each message id, in order
-- of h = hash(key): resolves closes and receipts, and finds ids shared by contacts.
CREATE TABLE conv_keys (workspace VARCHAR NOT NULL, h UBIGINT NOT NULL, key VARCHAR NOT NULL, owner VARCHAR NOT NULL);
CREATE TABLE msg_keys (workspace VARCHAR NOT NULL, h UBIGINT NOT NULL, key VARCHAR NOT NULL, owner VARCHAR NOT NULL);
-- Contacts whose histories are walked together (merges, shared conversation or message
-- ids), as union-find components; a contact absent here is alone. `grp` is the
-- component's smallest contact id.
CREATE TABLE contact_groups (workspace VARCHAR NOT NULL, contact_id VARCHAR NOT NULL, grp VARCHAR NOT NULL);

CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL);

-- Facts carry ch = hash(contact_id) so a contact's rows are found by key.
ALTER TABLE contacts ADD COLUMN ch UBIGINT;
ALTER TABLE conversations ADD COLUMN ch UBIGINT;
ALTER TABLE messages ADD COLUMN ch UBIGINT;
ALTER TABLE activities ADD COLUMN ch UBIGINT;
ALTER TABLE connections ADD COLUMN ch UBIGINT;
ALTER TABLE assignments ADD COLUMN ch UBIGINT;
DELETE FROM contacts;
DELETE FROM conversations;
DELETE FROM messages;
DELETE FROM activities;
DELETE FROM connections;
DELETE FROM assignments;
DELETE FROM user_teams;
"#,
    ),
    (
        3,
        r#"
-- Contacts whose events were filed by a deferred ingest and whose facts are not derived
-- yet: the next settle (or the next read of the workspace) derives them.
CREATE TABLE dirty (workspace VARCHAR NOT NULL, contact VARCHAR NOT NULL);
"#,
    ),
    (
        4,
        r#"
-- The log keeps each activity event packed in one column (`columns.rs`): a contact's
-- history is read by decompressing whole row groups of every column read, so one packed
-- column costs far less than 22 typed ones. {PACK} is `columns::pack_sql()`.
CREATE TABLE events_packed (
    workspace VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    oh UBIGINT NOT NULL,
    payload VARCHAR NOT NULL
);
INSERT INTO events_packed SELECT workspace, owner, oh, {PACK} FROM events ORDER BY oh, owner;
DROP TABLE events;
ALTER TABLE events_packed RENAME TO events;
CREATE TABLE pending_packed (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    key VARCHAR,
    payload VARCHAR NOT NULL
);
INSERT INTO pending_packed SELECT workspace, id, type, key, {PACK} FROM pending;
DROP TABLE pending;
ALTER TABLE pending_packed RENAME TO pending;
"#,
    ),
    (
        5,
        r#"
-- The kinds of event (bit r for `Body::rank` r) that made a contact dirty: a settle of
-- receipts and closes only replaces the fact tables they can change. Rows from before
-- say "every kind".
ALTER TABLE dirty ADD COLUMN ranks USMALLINT NOT NULL DEFAULT 65535;
"#,
    ),
    (
        6,
        r#"
-- Pre-aggregated counts per 15-minute slot (`cubes.rs`), filled from the facts:
-- opened, closed, incoming, outgoing, assignments. The statements below are
-- `cubes::create_sql(6)`.
{CUBES}
"#,
    ),
    (
        7,
        r#"
-- Cubes of the Contacts report's datasets: added, deleted, merged, connected
-- (`cubes::create_sql(7)`).
{CUBES}
"#,
    ),
    (
        8,
        r#"
-- Each fact row carries its contact's current name (logs show it) and the name's case
-- folding (the `contact` filter matches it; merge rows the merged contact's too), so
-- neither a log nor a filter reads the contacts table. They stay current because a name
-- changes only by its contact's own events, and those re-derive all of its rows.
ALTER TABLE conversations ADD COLUMN contact_name VARCHAR;
ALTER TABLE conversations ADD COLUMN name_folded VARCHAR;
ALTER TABLE messages ADD COLUMN contact_name VARCHAR;
ALTER TABLE messages ADD COLUMN name_folded VARCHAR;
ALTER TABLE activities ADD COLUMN contact_name VARCHAR;
ALTER TABLE activities ADD COLUMN name_folded VARCHAR;
ALTER TABLE connections ADD COLUMN contact_name VARCHAR;
ALTER TABLE connections ADD COLUMN name_folded VARCHAR;
ALTER TABLE assignments ADD COLUMN contact_name VARCHAR;
ALTER TABLE assignments ADD COLUMN name_folded VARCHAR;
ALTER TABLE activities ADD COLUMN merged_name_folded VARCHAR;
UPDATE conversations SET contact_name = k.name, name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = conversations.workspace AND k.contact_id = conversations.contact_id;
UPDATE messages SET contact_name = k.name, name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = messages.workspace AND k.contact_id = messages.contact_id;
UPDATE activities SET contact_name = k.name, name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = activities.workspace AND k.contact_id = activities.contact_id;
UPDATE connections SET contact_name = k.name, name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = connections.workspace AND k.contact_id = connections.contact_id;
UPDATE assignments SET contact_name = k.name, name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = assignments.workspace AND k.contact_id = assignments.contact_id;
UPDATE activities SET merged_name_folded = k.name_folded FROM contacts k
    WHERE k.workspace = activities.workspace AND k.contact_id = activities.merged_contact_id;
"#,
    ),
    (
        9,
        r#"
-- API bearer tokens, each scoped to one workspace and one of `ingest` or `read`. A token
-- is stored only as the SHA-256 of its text (hex); `id`, the public part of the token
-- (`parley_{id}_{secret}`), finds its row before the hashes are compared in constant
-- time. A revoked token keeps its row, with the instant it was revoked.
CREATE TABLE tokens (
    workspace VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    created_us BIGINT NOT NULL,
    revoked_us BIGINT
);
"#,
    ),
];

/// The fact tables, each derived from the event log and rebuildable from it.
pub const FACT_TABLES: &[&str] = &[
    "contacts",
    "conversations",
    "messages",
    "activities",
    "connections",
    "assignments",
];

/// Scratch tables of one connection (TEMP: never shared between connections), created
/// when a connection opens. `stage` holds one ingest's validated events (the columns its
/// SQL reads, and each event packed: `columns.rs`); `f_*` hold
/// derived facts until they are copied, with their contact hash, into the fact tables.
pub const SCRATCH: &str = r#"
CREATE TEMP TABLE IF NOT EXISTS stage (
    idx BIGINT NOT NULL,
    id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    at_us BIGINT NOT NULL,
    rank UTINYINT NOT NULL,
    contact_a VARCHAR,
    contact_b VARCHAR,
    key VARCHAR,
    body VARCHAR,
    payload VARCHAR NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS f_contacts AS SELECT * EXCLUDE (ch) FROM contacts LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS f_conversations AS SELECT * EXCLUDE (ch) FROM conversations LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS f_messages AS SELECT * EXCLUDE (ch) FROM messages LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS f_activities AS SELECT * EXCLUDE (ch) FROM activities LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS f_connections AS SELECT * EXCLUDE (ch) FROM connections LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS f_assignments AS SELECT * EXCLUDE (ch) FROM assignments LIMIT 0;
"#;

/// A value of DuckDB's `hash()` recorded when the schema is created: every stored hash
/// (`oh`, `h`, `ch`) was computed by it, so a DuckDB whose `hash()` differs must not
/// open the file.
pub const HASH_PROBE: &str = "parley";
