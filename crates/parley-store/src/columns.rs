//! An activity event (SPEC §2.2) as stored: `stage` keeps the columns that ingest's SQL
//! looks at (id, type, instant, rank, contacts, key) and every event's *packed* form,
//! which is all that `events` and `pending` keep besides their lookup keys. An event is
//! parsed from JSON once, at ingest; derivation unpacks it without JSON. Directory events
//! keep their JSON (`body`): they are few and read whole by every report.
//!
//! The packed form is every field of the event (id, type, instant, rank, then the `TEXT`
//! columns but `body`) written as `{byte length}:{bytes}`, or `-` when absent. A lookup
//! of a contact's history decompresses whole row groups of every column it reads, so one
//! packed column instead of 22 typed ones makes it cheaper (measured at L: 511 contacts
//! 0.91 s -> 0.53 s).

use std::fmt::Write;
use std::sync::Arc;

use duckdb::arrow::array::{Array, ArrayRef, Int64Builder, StringBuilder, UInt8Builder};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use parley_core::enums::{
    AssignSource, CloseSource, ContactSource, ContentType, DeliveryStatus, MessageSource,
    MessageType, OpenSource,
};
use parley_core::event::{Body, Broadcast, Content, Event};
use parley_core::time::Instant;

use crate::StoreError;

/// The text columns of a typed event, in table order after `id, type, at_us, rank`.
pub(crate) const TEXT: [&str; 19] = [
    "contact_a",
    "contact_b",
    "key",
    "name",
    "source",
    "user_id",
    "channel_id",
    "assignee",
    "category",
    "summary",
    "status",
    "error",
    "message_type",
    "subtype",
    "bc_id",
    "bc_name",
    "content_type",
    "content_text",
    "body",
];

/// Indexes into `TEXT`.
const A: usize = 0;
const B: usize = 1;
const KEY: usize = 2;
const NAME: usize = 3;
const SOURCE: usize = 4;
const USER: usize = 5;
const CHANNEL: usize = 6;
const ASSIGNEE: usize = 7;
const CATEGORY: usize = 8;
const SUMMARY: usize = 9;
const STATUS: usize = 10;
const ERROR: usize = 11;
const MESSAGE_TYPE: usize = 12;
const SUBTYPE: usize = 13;
const BC_ID: usize = 14;
const BC_NAME: usize = 15;
const CONTENT_TYPE: usize = 16;
const CONTENT_TEXT: usize = 17;
const BODY: usize = 18;

/// The text columns of one event.
pub(crate) fn texts<'a>(e: &'a Event, body: &'a str) -> [Option<&'a str>; 19] {
    let mut t: [Option<&str>; 19] = [None; 19];
    let content = |t: &mut [Option<&'a str>; 19], c: &'a Content| {
        t[CONTENT_TYPE] = Some(c.kind.wire());
        t[CONTENT_TEXT] = c.text.as_deref();
    };
    match &e.body {
        Body::UserUpserted { .. }
        | Body::UserDeleted { .. }
        | Body::TeamUpserted { .. }
        | Body::ChannelUpserted { .. }
        | Body::ChannelDeleted { .. } => t[BODY] = Some(body),
        Body::ContactAdded {
            contact_id,
            name,
            source,
            user_id,
        } => {
            t[A] = Some(contact_id);
            t[NAME] = Some(name);
            t[SOURCE] = Some(source.wire());
            t[USER] = user_id.as_deref();
        }
        Body::ContactUpdated { contact_id, name } => {
            t[A] = Some(contact_id);
            t[NAME] = Some(name);
        }
        Body::ContactDeleted {
            contact_id,
            user_id,
        } => {
            t[A] = Some(contact_id);
            t[USER] = Some(user_id);
        }
        Body::ContactMerged {
            primary_contact_id,
            merged_contact_id,
            user_id,
        } => {
            t[A] = Some(primary_contact_id);
            t[B] = Some(merged_contact_id);
            t[USER] = Some(user_id);
        }
        Body::ConversationOpened {
            conversation_id,
            contact_id,
            source,
            channel_id,
            user_id,
        } => {
            t[KEY] = Some(conversation_id);
            t[A] = Some(contact_id);
            t[SOURCE] = Some(source.wire());
            t[CHANNEL] = channel_id.as_deref();
            t[USER] = user_id.as_deref();
        }
        Body::ConversationClosed {
            conversation_id,
            source,
            user_id,
            category,
            summary,
        } => {
            t[KEY] = Some(conversation_id);
            t[SOURCE] = Some(source.wire());
            t[USER] = user_id.as_deref();
            t[CATEGORY] = category.as_deref();
            t[SUMMARY] = summary.as_deref();
        }
        Body::ContactAssigned {
            contact_id,
            assignee_id,
            source,
            by_user_id,
        } => {
            t[A] = Some(contact_id);
            t[ASSIGNEE] = assignee_id.as_deref();
            t[SOURCE] = Some(source.wire());
            t[USER] = by_user_id.as_deref();
        }
        Body::MessageReceived {
            message_id,
            contact_id,
            channel_id,
            content: c,
        } => {
            t[KEY] = Some(message_id);
            t[A] = Some(contact_id);
            t[CHANNEL] = Some(channel_id);
            content(&mut t, c);
        }
        Body::MessageSent {
            message_id,
            contact_id,
            channel_id,
            source,
            user_id,
            message_type,
            subtype,
            broadcast,
            content: c,
        } => {
            t[KEY] = Some(message_id);
            t[A] = Some(contact_id);
            t[CHANNEL] = Some(channel_id);
            t[SOURCE] = Some(source.wire());
            t[USER] = user_id.as_deref();
            t[MESSAGE_TYPE] = Some(message_type.wire());
            t[SUBTYPE] = subtype.as_deref();
            if let Some(b) = broadcast {
                t[BC_ID] = Some(&b.id);
                t[BC_NAME] = Some(&b.name);
            }
            content(&mut t, c);
        }
        Body::MessageStatus {
            message_id,
            status,
            error,
        } => {
            t[KEY] = Some(message_id);
            t[STATUS] = Some(status.wire());
            t[ERROR] = error.as_deref();
        }
    }
    t
}

/// The columns of `stage` that ingest's SQL reads, after `idx, id, type, at_us, rank`;
/// the rest of an event is in `payload`.
const STAGED: [usize; 4] = [A, B, KEY, BODY];

/// Builds the Arrow batch of `stage` (idx, id, type, at_us, rank, the `STAGED` columns,
/// payload) from parsed events.
pub(crate) struct StageBuilder {
    idx: Int64Builder,
    id: StringBuilder,
    kind: StringBuilder,
    at: Int64Builder,
    rank: UInt8Builder,
    texts: Vec<StringBuilder>,
    payload: StringBuilder,
    /// Scratch for one packed event.
    packed: String,
    /// Bit `r` is set when an event of rank `r` was pushed.
    ranks: u16,
}

impl StageBuilder {
    pub(crate) fn new() -> StageBuilder {
        StageBuilder {
            idx: Int64Builder::new(),
            id: StringBuilder::new(),
            kind: StringBuilder::new(),
            at: Int64Builder::new(),
            rank: UInt8Builder::new(),
            texts: (0..STAGED.len()).map(|_| StringBuilder::new()).collect(),
            payload: StringBuilder::new(),
            packed: String::new(),
            ranks: 0,
        }
    }

    /// Adds one event; `body` is its JSON line (kept for directory events only).
    pub(crate) fn push(&mut self, idx: i64, e: &Event, body: &str) {
        self.idx.append_value(idx);
        self.id.append_value(&e.id);
        self.kind.append_value(e.body.type_name());
        self.at.append_value(e.at.micros());
        self.rank.append_value(e.body.rank());
        self.ranks |= 1 << e.body.rank();
        let t = texts(e, body);
        for (b, col) in self.texts.iter_mut().zip(STAGED) {
            b.append_option(t[col]);
        }
        self.packed.clear();
        pack_fields(e, &t, &mut self.packed);
        self.payload.append_value(&self.packed);
    }

    /// The ranks of the events pushed so far, as a bit set (bit `r` for rank `r`).
    pub(crate) fn ranks(&self) -> u16 {
        self.ranks
    }

    pub(crate) fn finish(mut self) -> RecordBatch {
        let mut fields = vec![
            Field::new("idx", DataType::Int64, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("type", DataType::Utf8, false),
            Field::new("at_us", DataType::Int64, false),
            Field::new("rank", DataType::UInt8, false),
        ];
        fields.extend(
            STAGED
                .iter()
                .map(|&c| Field::new(TEXT[c], DataType::Utf8, true)),
        );
        fields.push(Field::new("payload", DataType::Utf8, false));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.idx.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.at.finish()),
            Arc::new(self.rank.finish()),
        ];
        columns.extend(
            self.texts
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.payload.finish()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("columns match the schema")
    }
}

/// Fields of the packed form: id, type, at_us, rank, then `TEXT` up to `body`.
const PACKED_FIELDS: usize = 4 + BODY;

// Packing runs once per ingested event (21.8M at L): fields are written straight into
// the reused buffer, without a `String` per number.
fn push_field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push('-'),
        Some(v) => write!(out, "{}:{v}", v.len()).expect("writing to a String"),
    }
}

/// A number as a packed field: its decimal form's length, then the form.
fn push_number(out: &mut String, n: i64) {
    let digits = n
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1);
    let len = digits + usize::from(n < 0);
    write!(out, "{len}:{n}").expect("writing to a String");
}

fn pack_fields(e: &Event, t: &[Option<&str>; 19], out: &mut String) {
    push_field(out, Some(&e.id));
    push_field(out, Some(e.body.type_name()));
    push_number(out, e.at.micros());
    push_number(out, i64::from(e.body.rank()));
    for v in &t[..BODY] {
        push_field(out, *v);
    }
}

/// The SQL expression that packs a row of typed columns (`id, type, at_us, rank` and
/// `TEXT`, as schema 2 stored `events` and `pending`) exactly as `StageBuilder` packs an
/// event; migration 4 re-files a schema-2 log with it.
pub(crate) fn pack_sql() -> String {
    ["id", "type", "at_us::VARCHAR", "rank::VARCHAR"]
        .iter()
        .copied()
        .chain(TEXT[..BODY].iter().copied())
        .map(|c| {
            format!("CASE WHEN {c} IS NULL THEN '-' ELSE strlen({c})::VARCHAR || ':' || {c} END")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The fields of a packed event, or `None` if it is not a packed event.
fn unpack_fields(payload: &str) -> Option<[Option<&str>; PACKED_FIELDS]> {
    let mut out = [None; PACKED_FIELDS];
    let mut rest = payload;
    for slot in &mut out {
        if let Some(r) = rest.strip_prefix('-') {
            rest = r;
            continue;
        }
        let (len, r) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        *slot = Some(r.get(..len)?);
        rest = &r[len..];
    }
    rest.is_empty().then_some(out)
}

/// The event packed in `payload` (a column of `events` or `pending`).
pub(crate) fn unpack(payload: &str) -> Result<Event, StoreError> {
    let f = unpack_fields(payload).ok_or_else(|| corrupt("", "unreadable packed event"))?;
    let id = f[0].unwrap_or_default();
    let at = f[2]
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| corrupt(id, "bad instant"))?;
    build_event(id, f[1].unwrap_or_default(), at, &|col| f[4 + col])
}

/// DuckDB's Arrow columns as strings, 64-bit integers or bytes (`UInt8`): narrower
/// integers are widened and anything else read as text.
pub(crate) fn plain_columns(columns: &[ArrayRef]) -> Result<Vec<ArrayRef>, StoreError> {
    columns
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 | DataType::Int64 | DataType::UInt8 => Ok(c.clone()),
            DataType::Int32 | DataType::Int16 | DataType::Int8 => {
                duckdb::arrow::compute::cast(c, &DataType::Int64)
            }
            _ => duckdb::arrow::compute::cast(c, &DataType::Utf8),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Rows(e.to_string()))
}

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        reason: what.to_string(),
    }
}

/// The event of type `kind` whose `TEXT` columns `text` gives.
fn build_event<'a>(
    id: &str,
    kind: &str,
    at: i64,
    text: &dyn Fn(usize) -> Option<&'a str>,
) -> Result<Event, StoreError> {
    let owned = |col: usize| text(col).map(str::to_string);
    let req = |col: usize| -> Result<String, StoreError> {
        owned(col).ok_or_else(|| corrupt(id, &format!("{} is missing", TEXT[col])))
    };
    let parsed = |col: usize, what: &str| -> Result<&str, StoreError> {
        text(col).ok_or_else(|| corrupt(id, &format!("{what} is missing")))
    };
    let bad = |what: &str| corrupt(id, &format!("bad {what}"));
    let content = || -> Result<Content, StoreError> {
        Ok(Content {
            kind: ContentType::from_wire(parsed(CONTENT_TYPE, "content type")?)
                .ok_or_else(|| bad("content type"))?,
            text: owned(CONTENT_TEXT),
        })
    };
    let body = match kind {
        "contact.added" => Body::ContactAdded {
            contact_id: req(A)?,
            name: req(NAME)?,
            source: ContactSource::from_wire(parsed(SOURCE, "source")?)
                .ok_or_else(|| bad("source"))?,
            user_id: owned(USER),
        },
        "contact.updated" => Body::ContactUpdated {
            contact_id: req(A)?,
            name: req(NAME)?,
        },
        "contact.deleted" => Body::ContactDeleted {
            contact_id: req(A)?,
            user_id: req(USER)?,
        },
        "contact.merged" => Body::ContactMerged {
            primary_contact_id: req(A)?,
            merged_contact_id: req(B)?,
            user_id: req(USER)?,
        },
        "conversation.opened" => Body::ConversationOpened {
            conversation_id: req(KEY)?,
            contact_id: req(A)?,
            source: OpenSource::from_wire(parsed(SOURCE, "source")?)
                .ok_or_else(|| bad("source"))?,
            channel_id: owned(CHANNEL),
            user_id: owned(USER),
        },
        "conversation.closed" => Body::ConversationClosed {
            conversation_id: req(KEY)?,
            source: CloseSource::from_wire(parsed(SOURCE, "source")?)
                .ok_or_else(|| bad("source"))?,
            user_id: owned(USER),
            category: owned(CATEGORY),
            summary: owned(SUMMARY),
        },
        "contact.assigned" => Body::ContactAssigned {
            contact_id: req(A)?,
            assignee_id: owned(ASSIGNEE),
            source: AssignSource::from_wire(parsed(SOURCE, "source")?)
                .ok_or_else(|| bad("source"))?,
            by_user_id: owned(USER),
        },
        "message.received" => Body::MessageReceived {
            message_id: req(KEY)?,
            contact_id: req(A)?,
            channel_id: req(CHANNEL)?,
            content: content()?,
        },
        "message.sent" => Body::MessageSent {
            message_id: req(KEY)?,
            contact_id: req(A)?,
            channel_id: req(CHANNEL)?,
            source: MessageSource::from_wire(parsed(SOURCE, "source")?)
                .ok_or_else(|| bad("source"))?,
            user_id: owned(USER),
            message_type: MessageType::from_wire(parsed(MESSAGE_TYPE, "message type")?)
                .ok_or_else(|| bad("message type"))?,
            subtype: owned(SUBTYPE),
            broadcast: match (owned(BC_ID), owned(BC_NAME)) {
                (Some(id), Some(name)) => Some(Broadcast { id, name }),
                _ => None,
            },
            content: content()?,
        },
        "message.status" => Body::MessageStatus {
            message_id: req(KEY)?,
            status: DeliveryStatus::from_wire(parsed(STATUS, "status")?)
                .ok_or_else(|| bad("status"))?,
            error: owned(ERROR),
        },
        other => return Err(corrupt(id, &format!("unexpected type {other:?}"))),
    };
    Ok(Event {
        id: id.to_string(),
        at: Instant(at),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::arrow::array::AsArray;
    use parley_core::event::parse_event;

    #[test]
    fn packed_numbers_carry_their_decimal_length() {
        for n in [
            0,
            9,
            10,
            99,
            100,
            -1,
            -9,
            -10,
            1_767_571_200_000_000,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = String::new();
            push_number(&mut out, n);
            assert_eq!(out, format!("{}:{n}", n.to_string().len()), "{n}");
        }
    }

    /// Every activity event type survives packing unchanged, and SQL packs it as Rust does.
    #[test]
    fn packed_events_round_trip_every_activity_event() {
        let lines = [
            r#"{"id":"a","type":"contact.added","at":"2026-01-05T10:00:00Z","contact":{"id":"c","name":"Ann"},"source":"user","user_id":"u"}"#,
            r#"{"id":"b","type":"contact.added","at":"2026-01-05T10:00:00Z","contact":{"id":"c","name":""},"source":"zapier"}"#,
            r#"{"id":"c","type":"contact.updated","at":"2026-01-05T10:00:00Z","contact":{"id":"c","name":"Bo"}}"#,
            r#"{"id":"d","type":"contact.deleted","at":"2026-01-05T10:00:00Z","contact_id":"c","user_id":"u"}"#,
            r#"{"id":"e","type":"contact.merged","at":"2026-01-05T10:00:00Z","primary_contact_id":"c","merged_contact_id":"d","user_id":"u"}"#,
            r#"{"id":"f","type":"conversation.opened","at":"2026-01-05T10:00:00Z","conversation_id":"v","contact_id":"c","source":"contact","channel_id":"wa","user_id":"u"}"#,
            r#"{"id":"g","type":"conversation.opened","at":"2026-01-05T10:00:00Z","conversation_id":"v","contact_id":"c","source":"workflow"}"#,
            r#"{"id":"h","type":"conversation.closed","at":"2026-01-05T10:00:00Z","conversation_id":"v","source":"user","user_id":"u","category":"Sales","summary":"ok"}"#,
            r#"{"id":"i","type":"contact.assigned","at":"2026-01-05T10:00:00Z","contact_id":"c","assignee_id":null,"source":"bot"}"#,
            r#"{"id":"j","type":"contact.assigned","at":"2026-01-05T10:00:00Z","contact_id":"c","assignee_id":"u2","source":"user","by_user_id":"u"}"#,
            r#"{"id":"k","type":"message.received","at":"2026-01-05T10:00:00.123456Z","message_id":"m","contact_id":"c","channel_id":"wa","content":{"type":"text","text":""}}"#,
            r#"{"id":"k2","type":"message.received","at":"1969-12-31T23:59:59Z","message_id":"m:1","contact_id":"-","channel_id":"3:wa","content":{"type":"text","text":"12:-é😀\u001f a:b\n-"}}"#,
            r#"{"id":"l","type":"message.sent","at":"2026-01-05T10:00:00Z","message_id":"m2","contact_id":"c","channel_id":"wa","source":"broadcast","message_type":"whatsapp_template","subtype":"promo","broadcast":{"id":"b1","name":"Black Friday"},"content":{"type":"template"}}"#,
            r#"{"id":"n","type":"message.sent","at":"2026-01-05T10:00:00Z","message_id":"m3","contact_id":"c","channel_id":"wa","source":"user","user_id":"u","message_type":"session","content":{"type":"image"}}"#,
            r#"{"id":"o","type":"message.status","at":"2026-01-05T10:00:00Z","message_id":"m","status":"failed","error":"131047"}"#,
            r#"{"id":"p","type":"message.status","at":"2026-01-05T10:00:00Z","message_id":"m","status":"read"}"#,
        ];
        let events: Vec<Event> = lines
            .iter()
            .map(|l| parse_event(l.as_bytes(), 1, 0).unwrap())
            .collect();
        let mut b = StageBuilder::new();
        for (i, (e, l)) in events.iter().zip(lines).enumerate() {
            b.push(i as i64, e, l);
        }
        let batch = b.finish();
        let payloads = batch.column(batch.num_columns() - 1).as_string::<i32>();
        for (row, e) in events.iter().enumerate() {
            assert_eq!(&unpack(payloads.value(row)).unwrap(), e, "row {row}");
        }
        // Migration 4 packs schema 2's typed columns in SQL: the same bytes.
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let typed: Vec<String> = TEXT.iter().map(|c| format!("{c} VARCHAR")).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE t (row BIGINT, id VARCHAR, type VARCHAR, at_us BIGINT, rank UTINYINT, {})",
            typed.join(", ")
        ))
        .unwrap();
        for (row, (e, l)) in events.iter().zip(lines).enumerate() {
            let mut values: Vec<duckdb::types::Value> = vec![
                (row as i64).into(),
                e.id.clone().into(),
                e.body.type_name().to_string().into(),
                e.at.micros().into(),
                e.body.rank().into(),
            ];
            values.extend(texts(e, l).iter().map(|t| match t {
                Some(v) => duckdb::types::Value::Text(v.to_string()),
                None => duckdb::types::Value::Null,
            }));
            let marks = vec!["?"; values.len()].join(", ");
            conn.execute(
                &format!("INSERT INTO t VALUES ({marks})"),
                duckdb::params_from_iter(values),
            )
            .unwrap();
        }
        let mut stmt = conn
            .prepare(&format!("SELECT {} FROM t ORDER BY row", pack_sql()))
            .unwrap();
        let packed: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (row, p) in packed.iter().enumerate() {
            assert_eq!(p, payloads.value(row), "row {row}");
        }
    }
}
