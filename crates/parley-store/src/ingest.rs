//! Ingest and derivation: stage a validated batch, keep the events whose ids are new,
//! then re-derive the facts of exactly the contacts that the new events touch.

use std::io::BufRead;

use duckdb::{params, Appender, Connection};
use parley_core::derive::{derive, Assignee, Facts};
use parley_core::directory::team_spans;
use parley_core::event::{parse_event, Event};
use parley_core::fold_case;

use crate::{IngestSummary, Progress, StoreError};

/// Contacts derived together at most.
const CHUNK_CONTACTS: usize = 5_000;
/// Events (named by contact) derived together at most, unless one contact alone has
/// more: with `CHUNK_CONTACTS`, this bounds the memory of one derivation step.
const CHUNK_EVENTS: i64 = 100_000;

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(crate) fn ingest(
    conn: &Connection,
    ws: &str,
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(Progress),
) -> Result<IngestSummary, StoreError> {
    conn.execute_batch("DELETE FROM stage; DELETE FROM stage_new;")?;
    let total = stage_batch(conn, input, progress)?;
    let accepted = conn.execute(
        "INSERT INTO stage_new
         SELECT id, type, at_us, rank, contact_a, contact_b, conversation_id, message_id, body
         FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY idx) AS rn FROM stage) s
         WHERE rn = 1 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.workspace = $1 AND e.id = s.id)",
        [ws],
    )? as u64;
    progress(Progress::Deriving);
    conn.execute("INSERT INTO events SELECT $1, * FROM stage_new", [ws])?;
    conn.execute_batch("DELETE FROM touched")?;
    conn.execute(
        "INSERT INTO touched
         SELECT contact_a FROM stage_new WHERE contact_a IS NOT NULL
         UNION SELECT contact_b FROM stage_new WHERE contact_b IS NOT NULL
         UNION SELECT e.contact_a FROM events e JOIN stage_new n ON e.conversation_id = n.conversation_id
               WHERE e.workspace = $1 AND e.type = 'conversation.opened' AND n.type = 'conversation.closed'
         UNION SELECT e.contact_a FROM events e JOIN stage_new n ON e.message_id = n.message_id
               WHERE e.workspace = $1 AND e.type IN ('message.received', 'message.sent')
                 AND n.type = 'message.status'",
        [ws],
    )?;
    derive_touched(conn, ws)?;
    let directory_changed: i64 =
        conn.query_row("SELECT count(*) FROM stage_new WHERE rank = 0", [], |r| {
            r.get(0)
        })?;
    if directory_changed > 0 {
        rebuild_user_teams(conn, ws)?;
    }
    conn.execute_batch(
        "DELETE FROM stage; DELETE FROM stage_new; DELETE FROM touched; DELETE FROM closure;",
    )?;
    Ok(IngestSummary {
        accepted,
        duplicates: total - accepted,
    })
}

/// Validates every line into `stage`; the first invalid event aborts the batch.
fn stage_batch(
    conn: &Connection,
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, StoreError> {
    let mut app = conn.appender("stage")?;
    let (mut line_no, mut index, mut bytes) = (0usize, 0usize, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as u64;
        let line = trim_eol(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = parse_event(line, line_no, index)?;
        let text = std::str::from_utf8(line).expect("validated as UTF-8");
        let (a, b) = event.body.contacts();
        app.append_row(params![
            index as i64,
            event.id,
            event.body.type_name(),
            event.at.micros(),
            event.body.rank(),
            a,
            b,
            event.body.conversation_id(),
            event.body.message_id(),
            text,
        ])?;
        index += 1;
        if line_no % 8192 == 0 {
            progress(Progress::Read(bytes));
        }
    }
    app.flush()?;
    progress(Progress::Read(bytes));
    Ok(index as u64)
}

/// Recomputes every fact of a workspace from its log.
pub(crate) fn rebuild(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    for table in crate::schema::FACT_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE workspace = $1"), [ws])?;
    }
    conn.execute_batch("DELETE FROM touched")?;
    conn.execute(
        "INSERT INTO touched
         SELECT contact_a FROM events WHERE workspace = $1 AND contact_a IS NOT NULL
         UNION SELECT contact_b FROM events WHERE workspace = $1 AND contact_b IS NOT NULL",
        [ws],
    )?;
    derive_touched(conn, ws)?;
    rebuild_user_teams(conn, ws)?;
    conn.execute_batch("DELETE FROM touched; DELETE FROM closure;")?;
    Ok(())
}

/// The workspace's directory events (users, teams, channels), in any order.
pub(crate) fn load_directory_events(conn: &Connection, ws: &str) -> Result<Vec<Event>, StoreError> {
    load_events(
        conn,
        "SELECT body FROM events WHERE workspace = $1 AND rank = 0",
        ws,
    )
}

fn rebuild_user_teams(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    let events = load_directory_events(conn, ws)?;
    conn.execute("DELETE FROM user_teams WHERE workspace = $1", [ws])?;
    let mut app = conn.appender("user_teams")?;
    for s in team_spans(&events) {
        app.append_row(params![
            ws,
            s.user_id,
            s.from.micros(),
            s.to.micros(),
            s.team_id
        ])?;
    }
    app.flush()?;
    Ok(())
}

fn load_events(conn: &Connection, sql: &str, ws: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let bodies = stmt.query_map([ws], |r| r.get::<_, String>(0))?;
    let mut events = Vec::new();
    for body in bodies {
        let body = body?;
        let event = parse_event(body.as_bytes(), 0, 0).map_err(|e| StoreError::Corrupt {
            id: e.id.clone().unwrap_or_default(),
            reason: e.to_string(),
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Adds to `closure` every contact whose history is tied to one already in it: both sides
/// of a merge, and contacts that share a conversation id or a message id (the first use
/// of an id wins, so their walks must be one walk). Repeats to a fixed point.
fn expand_closure(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    loop {
        let added = conn.execute(
            "INSERT INTO closure
             SELECT DISTINCT x FROM (
               SELECT contact_a AS x FROM events WHERE workspace = $1 AND type = 'contact.merged'
                 AND contact_b IN (SELECT contact_id FROM closure)
               UNION ALL
               SELECT contact_b FROM events WHERE workspace = $1 AND type = 'contact.merged'
                 AND contact_a IN (SELECT contact_id FROM closure)
               UNION ALL
               SELECT e2.contact_a FROM events e1 JOIN events e2 ON e1.conversation_id = e2.conversation_id
                 WHERE e1.workspace = $1 AND e2.workspace = $1
                   AND e1.type = 'conversation.opened' AND e2.type = 'conversation.opened'
                   AND e1.contact_a IN (SELECT contact_id FROM closure)
               UNION ALL
               SELECT e2.contact_a FROM events e1 JOIN events e2 ON e1.message_id = e2.message_id
                 WHERE e1.workspace = $1 AND e2.workspace = $1
                   AND e1.type IN ('message.received', 'message.sent')
                   AND e2.type IN ('message.received', 'message.sent')
                   AND e1.contact_a IN (SELECT contact_id FROM closure)
             ) WHERE x NOT IN (SELECT contact_id FROM closure)",
            [ws],
        )?;
        if added == 0 {
            return Ok(());
        }
    }
}

/// Re-derives the facts of every contact in `touched`, a chunk at a time.
fn derive_touched(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    let touched: Vec<(String, i64)> = {
        let mut stmt = conn.prepare(
            "SELECT t.contact_id, count(e.contact_a)
             FROM (SELECT DISTINCT contact_id FROM touched) t
             LEFT JOIN events e ON e.workspace = $1 AND e.contact_a = t.contact_id
             GROUP BY t.contact_id ORDER BY t.contact_id",
        )?;
        let rows = stmt.query_map([ws], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for chunk in chunks(&touched) {
        conn.execute_batch("DELETE FROM closure")?;
        {
            let mut app = conn.appender("closure")?;
            for (id, _) in chunk {
                app.append_row([id])?;
            }
            app.flush()?;
        }
        expand_closure(conn, ws)?;
        let events = load_events(
            conn,
            // Three plain semi-joins: an OR of IN-subqueries scans far slower. After
            // closure expansion both sides of a merge are in `closure`, so the merges are
            // found by their primary (contact_a) alone.
            "SELECT body FROM events WHERE workspace = $1 AND contact_a IN (SELECT contact_id FROM closure)
             UNION ALL
             SELECT body FROM events WHERE workspace = $1 AND type = 'conversation.closed'
               AND conversation_id IN (
                 SELECT conversation_id FROM events WHERE workspace = $1 AND type = 'conversation.opened'
                   AND contact_a IN (SELECT contact_id FROM closure))
             UNION ALL
             SELECT body FROM events WHERE workspace = $1 AND type = 'message.status'
               AND message_id IN (
                 SELECT message_id FROM events WHERE workspace = $1
                   AND type IN ('message.received', 'message.sent')
                   AND contact_a IN (SELECT contact_id FROM closure))",
            ws,
        )?;
        let facts = derive(events);
        replace_facts(conn, ws, &facts)?;
    }
    Ok(())
}

/// Splits contacts (with their event counts) into runs of at most `CHUNK_CONTACTS`
/// contacts and, where possible, `CHUNK_EVENTS` events.
fn chunks(contacts: &[(String, i64)]) -> Vec<&[(String, i64)]> {
    let mut out = Vec::new();
    let (mut start, mut events) = (0, 0);
    for (i, (_, n)) in contacts.iter().enumerate() {
        if i > start && (i - start >= CHUNK_CONTACTS || events + n > CHUNK_EVENTS) {
            out.push(&contacts[start..i]);
            (start, events) = (i, 0);
        }
        events += n;
    }
    if start < contacts.len() {
        out.push(&contacts[start..]);
    }
    out
}

fn replace_facts(conn: &Connection, ws: &str, f: &Facts) -> Result<(), StoreError> {
    for table in [
        "contacts",
        "conversations",
        "messages",
        "connections",
        "assignments",
    ] {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE workspace = $1 AND contact_id IN (SELECT contact_id FROM closure)"
            ),
            [ws],
        )?;
    }
    conn.execute(
        "DELETE FROM activities WHERE workspace = $1 AND (contact_id IN (SELECT contact_id FROM closure)
           OR merged_contact_id IN (SELECT contact_id FROM closure))",
        [ws],
    )?;
    let mut app = conn.appender("contacts")?;
    for c in &f.contacts {
        let folded = c.name.as_deref().map(fold_case);
        app.append_row(params![ws, c.contact_id, c.name, folded])?;
    }
    finish(app)?;
    let mut app = conn.appender("conversations")?;
    for c in &f.conversations {
        let close = c.close.as_ref();
        let last_assignee = c.last_assignee.as_ref().map(|a| match a {
            Assignee::User(u) => u.as_str(),
            Assignee::Unassigned => "",
        });
        app.append_row(params![
            ws,
            c.conversation_id,
            c.contact_id,
            c.opened_at.micros(),
            c.opened_source.wire(),
            c.opened_channel,
            c.contact_type.wire(),
            close.map(|x| x.at.micros()),
            close.map(|x| x.source.wire()),
            close.and_then(|x| x.by.as_deref()),
            close.and_then(|x| x.category.as_deref()),
            close.and_then(|x| x.summary.as_deref()),
            c.first_assignment_at.map(|t| t.micros()),
            c.first_assignee,
            c.first_response_at.map(|t| t.micros()),
            c.first_response_by,
            c.last_assignment_at.map(|t| t.micros()),
            last_assignee,
            c.time_to_first_assignment,
            c.first_response_time,
            c.first_assignment_to_first_response,
            c.last_assignment_to_response,
            c.resolution_time,
            c.first_assignment_to_close,
            c.last_assignment_to_close,
            c.average_response_time,
            c.assignments,
            c.incoming_messages,
            c.outgoing_messages,
            c.responses,
        ])?;
    }
    finish(app)?;
    let mut app = conn.appender("messages")?;
    for m in &f.messages {
        app.append_row(params![
            ws,
            m.message_id,
            m.contact_id,
            m.conversation_id,
            m.incoming,
            m.at.micros(),
            m.channel_id,
            m.source.map(|s| s.wire()),
            m.user_id,
            m.message_type.map(|t| t.wire()),
            m.subtype,
            m.broadcast,
            m.content,
            m.status.map(|s| s.wire()),
            m.delivered_at.map(|t| t.micros()),
            m.read_at.map(|t| t.micros()),
            m.failed_at.map(|t| t.micros()),
            m.error,
        ])?;
    }
    finish(app)?;
    let mut app = conn.appender("activities")?;
    for a in &f.activities {
        app.append_row(params![
            ws,
            a.event_id,
            a.kind.wire(),
            a.at.micros(),
            a.contact_id,
            a.merged_contact_id,
            a.source,
            a.user_id,
        ])?;
    }
    finish(app)?;
    let mut app = conn.appender("connections")?;
    for c in &f.connections {
        app.append_row(params![
            ws,
            c.contact_id,
            c.channel_id,
            c.at.micros(),
            c.message_id,
            c.source,
            c.user_id
        ])?;
    }
    finish(app)?;
    let mut app = conn.appender("assignments")?;
    for a in &f.assignments {
        app.append_row(params![
            ws,
            a.event_id,
            a.at.micros(),
            a.conversation_id,
            a.contact_id,
            a.previous_assignee,
            a.new_assignee,
            a.source.wire(),
            a.assigned_by,
        ])?;
    }
    finish(app)
}

fn finish(mut app: Appender<'_>) -> Result<(), StoreError> {
    app.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(counts: &[i64]) -> Vec<(String, i64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("c{i}"), *n))
            .collect()
    }

    #[test]
    fn chunks_bound_contacts_and_events() {
        let c = contacts(&[60_000, 50_000, 10, 200_000, 5]);
        let sizes: Vec<usize> = chunks(&c).iter().map(|ch| ch.len()).collect();
        assert_eq!(sizes, [1, 2, 1, 1], "a heavy contact stands alone");
        let c = contacts(&vec![1; CHUNK_CONTACTS * 2 + 1]);
        let sizes: Vec<usize> = chunks(&c).iter().map(|ch| ch.len()).collect();
        assert_eq!(sizes, [CHUNK_CONTACTS, CHUNK_CONTACTS, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
