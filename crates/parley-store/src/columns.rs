//! An activity event (SPEC §2.2) as typed columns: how `stage`, `events` and `pending`
//! store it, and the Arrow batches that carry it in and out. An event is parsed from
//! JSON once, at ingest; derivation reads the columns back without JSON. Directory
//! events keep their JSON (`body`): they are few and read whole by every report.

use std::sync::Arc;

use duckdb::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder, UInt8Builder};
use duckdb::arrow::datatypes::{DataType, Field, Int64Type, Schema};
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

/// The typed columns, comma-separated, for SELECT lists.
pub(crate) fn column_list(prefix: &str) -> String {
    ["id", "type", "at_us", "rank"]
        .iter()
        .chain(TEXT.iter())
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

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
fn texts<'a>(e: &'a Event, body: &'a str) -> [Option<&'a str>; 19] {
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

/// Builds the Arrow batch of `stage` (idx, then the typed columns) from parsed events.
pub(crate) struct StageBuilder {
    idx: Int64Builder,
    id: StringBuilder,
    kind: StringBuilder,
    at: Int64Builder,
    rank: UInt8Builder,
    texts: Vec<StringBuilder>,
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
            texts: (0..TEXT.len()).map(|_| StringBuilder::new()).collect(),
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
        for (b, v) in self.texts.iter_mut().zip(texts(e, body)) {
            b.append_option(v);
        }
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
        fields.extend(TEXT.iter().map(|c| Field::new(*c, DataType::Utf8, true)));
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
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("columns match the schema")
    }
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

/// Reads typed events back from a batch whose columns `first..` are the typed columns
/// (as `column_list` orders them).
pub(crate) struct TypedReader {
    columns: Vec<ArrayRef>,
}

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        reason: what.to_string(),
    }
}

impl TypedReader {
    pub(crate) fn new(batch: &RecordBatch, first: usize) -> Result<TypedReader, StoreError> {
        Ok(TypedReader {
            columns: plain_columns(&batch.columns()[first..])?,
        })
    }

    fn text(&self, col: usize, row: usize) -> Option<&str> {
        let c = &self.columns[col];
        (!c.is_null(row)).then(|| c.as_string::<i32>().value(row))
    }

    fn owned(&self, col: usize, row: usize) -> Option<String> {
        self.text(4 + col, row).map(str::to_string)
    }

    /// The event in `row`.
    pub(crate) fn event(&self, row: usize) -> Result<Event, StoreError> {
        let id = self.text(0, row).unwrap_or_default().to_string();
        let kind = self.text(1, row).unwrap_or_default();
        let at = Instant(self.columns[2].as_primitive::<Int64Type>().value(row));
        let req = |col: usize| -> Result<String, StoreError> {
            self.owned(col, row)
                .ok_or_else(|| corrupt(&id, &format!("{} is missing", TEXT[col])))
        };
        let parsed = |col: usize, what: &str| -> Result<&str, StoreError> {
            self.text(4 + col, row)
                .ok_or_else(|| corrupt(&id, &format!("{what} is missing")))
        };
        let bad = |what: &str| corrupt(&id, &format!("bad {what}"));
        let content = || -> Result<Content, StoreError> {
            Ok(Content {
                kind: ContentType::from_wire(parsed(CONTENT_TYPE, "content type")?)
                    .ok_or_else(|| bad("content type"))?,
                text: self.owned(CONTENT_TEXT, row),
            })
        };
        let body = match kind {
            "contact.added" => Body::ContactAdded {
                contact_id: req(A)?,
                name: req(NAME)?,
                source: ContactSource::from_wire(parsed(SOURCE, "source")?)
                    .ok_or_else(|| bad("source"))?,
                user_id: self.owned(USER, row),
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
                channel_id: self.owned(CHANNEL, row),
                user_id: self.owned(USER, row),
            },
            "conversation.closed" => Body::ConversationClosed {
                conversation_id: req(KEY)?,
                source: CloseSource::from_wire(parsed(SOURCE, "source")?)
                    .ok_or_else(|| bad("source"))?,
                user_id: self.owned(USER, row),
                category: self.owned(CATEGORY, row),
                summary: self.owned(SUMMARY, row),
            },
            "contact.assigned" => Body::ContactAssigned {
                contact_id: req(A)?,
                assignee_id: self.owned(ASSIGNEE, row),
                source: AssignSource::from_wire(parsed(SOURCE, "source")?)
                    .ok_or_else(|| bad("source"))?,
                by_user_id: self.owned(USER, row),
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
                user_id: self.owned(USER, row),
                message_type: MessageType::from_wire(parsed(MESSAGE_TYPE, "message type")?)
                    .ok_or_else(|| bad("message type"))?,
                subtype: self.owned(SUBTYPE, row),
                broadcast: match (self.owned(BC_ID, row), self.owned(BC_NAME, row)) {
                    (Some(id), Some(name)) => Some(Broadcast { id, name }),
                    _ => None,
                },
                content: content()?,
            },
            "message.status" => Body::MessageStatus {
                message_id: req(KEY)?,
                status: DeliveryStatus::from_wire(parsed(STATUS, "status")?)
                    .ok_or_else(|| bad("status"))?,
                error: self.owned(ERROR, row),
            },
            other => return Err(corrupt(&id, &format!("unexpected type {other:?}"))),
        };
        Ok(Event { id, at, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_core::event::parse_event;

    /// Every activity event type survives the trip through the columns unchanged.
    #[test]
    fn typed_columns_round_trip_every_activity_event() {
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
        let reader = TypedReader::new(&batch, 1).unwrap();
        for (row, e) in events.iter().enumerate() {
            assert_eq!(&reader.event(row).unwrap(), e, "row {row}");
        }
    }
}
