//! The output documents of SPEC §8: report documents, log pages, CSV rows, and the
//! rounding and ordering rules they follow.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::directory::Directory;
use crate::enums::{self, ContactSource, ContactType, DeliveryStatus, MessageType};
use crate::report::{ColType, Component, Filters, Key, Log, Report, Shape, MISSING};
use crate::time::{write_duration, Instant, LocalClock, Range};

/// Only the first rows of a log can be paged (SPEC §6.5).
pub const LOG_CAP: u64 = 10_000;

/// `100 × count / total`, rounded half-up to two decimals, exactly.
pub fn percent(count: i64, total: i64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let hundredths = (20_000 * i128::from(count) + i128::from(total)) / (2 * i128::from(total));
    hundredths as f64 / 100.0
}

/// The `range` object of a document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RangeDoc {
    pub preset: Option<&'static str>,
    pub from: String,
    pub to: String,
    pub start: String,
    pub end: String,
    pub bucket: &'static str,
}

impl RangeDoc {
    pub fn new(r: &Range) -> RangeDoc {
        RangeDoc {
            preset: r.preset.map(|p| p.wire()),
            from: r.from.to_string(),
            to: r.to.to_string(),
            start: r.start.format_utc(),
            end: r.end.format_utc(),
            bucket: r.bucket.wire(),
        }
    }
}

/// Per breakdown key (`None` = missing) its per-bucket counts.
pub type KeyedCounts = Vec<(Option<String>, Vec<i64>)>;

/// What the store computed for one component, before labels and percentages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentData {
    Metric(i64),
    /// One values array per series, in the component's series order.
    Bar(Vec<Vec<i64>>),
    Heatmap(Box<[[i64; 24]; 7]>),
    Breakdown(KeyedCounts),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesDoc {
    pub key: &'static str,
    pub label: &'static str,
    pub values: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowDoc {
    pub key: String,
    pub label: String,
    pub count: i64,
    pub percent: f64,
    pub values: Vec<i64>,
}

/// One component of a report document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentDoc {
    pub kind: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowDoc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesDoc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Vec<i64>>>,
}

/// An ordered map serialized as a JSON object in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The report document of SPEC §8.1.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportDoc {
    pub report: &'static str,
    pub workspace: String,
    pub timezone: String,
    pub range: RangeDoc,
    pub filters: Ordered<Vec<String>>,
    pub buckets: Vec<String>,
    pub components: Ordered<ComponentDoc>,
}

pub fn filters_doc(f: &Filters) -> Ordered<Vec<String>> {
    Ordered(f.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn key_label(key: Key, value: &str, dir: &Directory) -> String {
    if value == MISSING {
        return MISSING.to_string();
    }
    let label = match key {
        Key::ContactType => ContactType::from_wire(value).map(|v| v.label()),
        Key::MessageType => MessageType::from_wire(value).map(|v| v.label()),
        Key::Status => DeliveryStatus::from_wire(value).map(|v| v.label()),
        Key::ContactSource => ContactSource::from_wire(value).map(|v| v.label()),
        Key::OpenedSource | Key::ClosedSource | Key::MessageSource | Key::AssignSource => {
            enums::label_of_source(value)
        }
        Key::OpenedChannel | Key::Channel => return dir.channel(value),
        Key::Category | Key::Subtype => None,
    };
    label.map_or_else(|| value.to_string(), str::to_string)
}

/// Turns per-key bucket counts into breakdown rows: labelled, with percentages, ordered
/// by count descending then key.
pub fn breakdown_rows(
    key: Key,
    data: &[(Option<String>, Vec<i64>)],
    dir: &Directory,
) -> (i64, Vec<RowDoc>) {
    let total: i64 = data.iter().map(|(_, v)| v.iter().sum::<i64>()).sum();
    let mut rows: Vec<RowDoc> = data
        .iter()
        .map(|(k, values)| {
            let key_s = k.clone().unwrap_or_else(|| MISSING.to_string());
            let count = values.iter().sum();
            RowDoc {
                label: key_label(key, &key_s, dir),
                key: key_s,
                count,
                percent: percent(count, total),
                values: values.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.key.as_bytes().cmp(b.key.as_bytes()))
    });
    (total, rows)
}

/// Builds one component's document; `data` is `None` when filters do not apply.
pub fn component_doc(
    c: &Component,
    data: Option<&ComponentData>,
    buckets: usize,
    dir: &Directory,
) -> ComponentDoc {
    let mut doc = ComponentDoc {
        kind: c.shape.kind(),
        status: "filters_not_applicable",
        value: None,
        total: None,
        rows: None,
        series: None,
        values: None,
    };
    let Some(data) = data else { return doc };
    let status = |empty: bool| if empty { "no_data" } else { "ok" };
    match (&c.shape, data) {
        (Shape::Metric(_), ComponentData::Metric(n)) => {
            doc.status = status(*n == 0);
            doc.value = Some(*n);
        }
        (Shape::Bar(series), ComponentData::Bar(values)) => {
            doc.status = status(values.iter().all(|v| v.iter().all(|n| *n == 0)));
            doc.series = Some(
                series
                    .iter()
                    .zip(values)
                    .map(|((key, label, _), v)| SeriesDoc {
                        key,
                        label,
                        values: v.clone(),
                    })
                    .collect(),
            );
        }
        (Shape::Heatmap(_), ComponentData::Heatmap(grid)) => {
            doc.status = status(grid.iter().all(|r| r.iter().all(|n| *n == 0)));
            doc.values = Some(grid.iter().map(|r| r.to_vec()).collect());
        }
        (Shape::Breakdown(_, key), ComponentData::Breakdown(rows)) => {
            let (total, rows) = breakdown_rows(*key, rows, dir);
            doc.status = status(total == 0);
            doc.total = Some(total);
            doc.rows = Some(rows);
        }
        (Shape::Line(_, key), ComponentData::Breakdown(rows)) => {
            // The delivery line always lists its four statuses.
            let mut all: Vec<(Option<String>, Vec<i64>)> = DeliveryStatus::ALL
                .iter()
                .map(|s| (Some(s.wire().to_string()), vec![0; buckets]))
                .collect();
            for (k, v) in rows {
                if let Some(slot) = all.iter_mut().find(|(sk, _)| sk == k) {
                    slot.1 = v.clone();
                }
            }
            let (total, rows) = breakdown_rows(*key, &all, dir);
            doc.status = status(total == 0);
            doc.total = Some(total);
            doc.rows = Some(rows);
        }
        _ => unreachable!("component data matches its shape"),
    }
    doc
}

/// Assembles the whole report document.
pub fn report_doc(
    report: Report,
    workspace: &str,
    timezone: &str,
    range: &Range,
    filters: &Filters,
    data: &[Option<ComponentData>],
    dir: &Directory,
) -> ReportDoc {
    let buckets = range.buckets();
    let components = report
        .components()
        .iter()
        .zip(data)
        .map(|(c, d)| {
            (
                c.id.to_string(),
                component_doc(c, d.as_ref(), buckets.len(), dir),
            )
        })
        .collect();
    ReportDoc {
        report: report.wire(),
        workspace: workspace.to_string(),
        timezone: timezone.to_string(),
        range: RangeDoc::new(range),
        filters: filters_doc(filters),
        buckets: buckets.iter().map(|b| b.label.clone()).collect(),
        components: Ordered(components),
    }
}

/// One raw value of a log row, as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A [`Cell`] whose text is borrowed (from a query's result).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

/// The log page of SPEC §8.2.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogPage {
    pub report: &'static str,
    pub log: &'static str,
    pub range: RangeDoc,
    pub filters: Ordered<Vec<String>>,
    pub total: u64,
    pub truncated: bool,
    pub page: u64,
    pub per_page: u64,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Ordered<Value>>,
}

/// The window of rows a page may show: (offset, limit), within the 10,000-row cap.
pub fn page_window(page: u64, per_page: u64) -> (u64, u64) {
    let offset = (page - 1).saturating_mul(per_page);
    if offset >= LOG_CAP {
        return (offset, 0);
    }
    (offset, per_page.min(LOG_CAP - offset))
}

/// Formats log rows for JSON and CSV in the workspace's zone.
pub struct RowFormatter<'a> {
    pub log: Log,
    pub range: &'a Range,
    pub dir: &'a Directory,
}

impl RowFormatter<'_> {
    /// A text cell as shown: users, teams and channels by display name.
    fn display<'a>(&'a self, t: ColType, s: &'a str) -> &'a str {
        match t {
            ColType::User if s.is_empty() => "Unassigned",
            ColType::User => self.dir.user_ref(s),
            ColType::Team => self.dir.team_ref(s),
            ColType::Channel => self.dir.channel_ref(s),
            _ => s,
        }
    }

    /// A row as a JSON object: timestamps local, durations in seconds, names displayed,
    /// enumerations as wire values, missing values null.
    pub fn json(&self, cells: &[Cell]) -> Ordered<Value> {
        let cols = self.log.columns();
        Ordered(
            cols.iter()
                .zip(cells)
                .map(|((name, t), cell)| {
                    let v = match (t, cell) {
                        (_, Cell::Null) => Value::Null,
                        (ColType::Time, Cell::Int(us)) => {
                            Value::String(Instant(*us).format_local(&self.range.tz))
                        }
                        (_, Cell::Int(n)) => Value::from(*n),
                        (t, Cell::Text(s)) => Value::String(self.display(*t, s).to_string()),
                    };
                    (name.to_string(), v)
                })
                .collect(),
        )
    }

    /// A row as CSV fields, written into the strings of `out`, one per column: durations
    /// as clock times, enumerations as English labels, missing values as `-`. Cells are
    /// borrowed and `clock` (of this formatter's zone) remembers offsets from row to row,
    /// so an export of millions of rows allocates almost nothing per row.
    pub fn fields_into(&self, cells: &[CellRef], out: &mut [String], clock: &mut LocalClock) {
        let cols = self.log.columns();
        for (((_, t), cell), o) in cols.iter().zip(cells).zip(out.iter_mut()) {
            o.clear();
            match (t, cell) {
                (_, CellRef::Null) => o.push_str(MISSING),
                (ColType::Time, CellRef::Int(us)) => clock.write(Instant(*us), o),
                (ColType::Duration, CellRef::Int(n)) => write_duration(*n, o),
                (_, CellRef::Int(n)) => push_int(*n, o),
                (ColType::Enum, CellRef::Text(s)) => o.push_str(enum_label_ref(s)),
                (t, CellRef::Text(s)) => o.push_str(self.display(*t, s)),
            }
        }
    }
}

/// `n` in decimal, appended.
fn push_int(n: i64, out: &mut String) {
    if n < 0 {
        out.push('-');
    }
    let mut n = n.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// Appends one CSV record to `out` as the `csv` crate writes it with its defaults and a
/// CRLF terminator (RFC 4180): a field is quoted when it holds a comma, a quote, CR or
/// LF (quotes doubled inside), and a record of one empty field is written `""`. About
/// four times faster than the crate's writer per field, which was a third of an export.
pub fn push_csv_record<S: AsRef<str>>(fields: &[S], out: &mut Vec<u8>) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let f = field.as_ref().as_bytes();
        if needs_quotes(f) {
            out.push(b'"');
            for &b in f {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(f);
        }
    }
    if let [only] = fields {
        if only.as_ref().is_empty() {
            out.extend_from_slice(b"\"\"");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether a field holds a comma, a quote, CR or LF: eight bytes at a time (a byte of a
/// word equals `c` when the word xor `c` repeated has a zero byte). Most fields are a
/// few bytes long, where `memchr`'s set-up costs more than the search.
fn needs_quotes(f: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let special = |w: u64| has(w, b',') | has(w, b'"') | has(w, b'\n') | has(w, b'\r');
    let word = |at: usize| u64::from_le_bytes(f[at..at + 8].try_into().expect("eight bytes"));
    if f.len() < 8 {
        // Padded with zero bytes, which are never special.
        let mut padded = [0u8; 8];
        padded[..f.len()].copy_from_slice(f);
        return special(u64::from_le_bytes(padded));
    }
    // Whole words, the last one overlapping its predecessor: no byte-by-byte tail.
    (0..f.len() - 8)
        .step_by(8)
        .chain([f.len() - 8])
        .any(|at| special(word(at)))
}

/// The English label of any enumeration's wire value (the value itself if unknown).
pub fn enum_label(wire: &str) -> String {
    enum_label_ref(wire).to_string()
}

/// `enum_label`, borrowed.
pub fn enum_label_ref(wire: &str) -> &str {
    enums::label_of_source(wire)
        .or_else(|| MessageType::from_wire(wire).map(|v| v.label()))
        .or_else(|| ContactType::from_wire(wire).map(|v| v.label()))
        .or_else(|| DeliveryStatus::from_wire(wire).map(|v| v.label()))
        .unwrap_or(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up_exactly() {
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(2, 3), 66.67);
        assert_eq!(percent(1, 8), 12.5);
        assert_eq!(percent(1, 800), 0.13, "0.125 rounds half-up");
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(5, 5), 100.0);
    }

    #[test]
    fn breakdown_orders_by_count_then_key_and_labels_missing_as_dash() {
        let dir = Directory::default();
        let data = vec![
            (Some("zapier".to_string()), vec![1, 0]),
            (None, vec![0, 2]),
            (Some("bot".to_string()), vec![1, 0]),
        ];
        let (total, rows) = breakdown_rows(Key::MessageSource, &data, &dir);
        assert_eq!(total, 4);
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.key.as_str(), r.label.as_str(), r.count))
            .collect();
        assert_eq!(
            keys,
            [("-", "-", 2), ("bot", "Bot", 1), ("zapier", "Zapier", 1)]
        );
        assert_eq!(rows[0].percent, 50.0);
    }

    proptest::proptest! {
        /// The hand-written CSV record is byte for byte what the `csv` crate writes.
        #[test]
        fn csv_records_are_written_as_the_csv_crate_writes_them(
            fields in proptest::collection::vec("[a-c,\"\r\n é]{0,6}", 1..5)
        ) {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            w.write_record(&fields).unwrap();
            let theirs = w.into_inner().unwrap();
            let mut ours = Vec::new();
            push_csv_record(&fields, &mut ours);
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }
    }

    #[test]
    fn fields_need_quotes_for_commas_quotes_and_line_ends_anywhere() {
        for special in [",", "\"", "\r", "\n"] {
            for len in 1..=20 {
                for at in 0..len {
                    let mut f = "a".repeat(len);
                    f.replace_range(at..=at, special);
                    assert!(needs_quotes(f.as_bytes()), "{f:?}");
                }
            }
        }
        for plain in [
            "",
            "abc",
            "Sofía Dubois (agent)",
            "2026-11-30T22:56:11+01:00",
            "\u{2c00}",
        ] {
            assert!(!needs_quotes(plain.as_bytes()), "{plain:?}");
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1234, -1, -90, i64::MAX, i64::MIN] {
            let mut s = String::new();
            push_int(n, &mut s);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn pages_stop_at_the_cap() {
        assert_eq!(page_window(1, 50), (0, 50));
        assert_eq!(page_window(200, 50), (9950, 50));
        assert_eq!(page_window(201, 50), (10_000, 0));
        assert_eq!(page_window(11, 1000), (10_000, 0));
        assert_eq!(page_window(4, 3000), (9000, 1000));
    }
}
