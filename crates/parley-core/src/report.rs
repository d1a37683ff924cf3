//! Report definitions (SPEC §5, §6): the four reports, their components and logs, the
//! filters each accepts, and the parsing of `--filter name=value`.

use std::collections::BTreeMap;

use crate::enums::{
    AssignSource, CloseSource, ContactSource, ContactType, MessageSource, MessageType, OpenSource,
};

/// One of the four reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Report {
    Conversations,
    Messages,
    Contacts,
    Assignments,
}

impl Report {
    pub const ALL: &'static [Report] = &[
        Report::Conversations,
        Report::Messages,
        Report::Contacts,
        Report::Assignments,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            Report::Conversations => "conversations",
            Report::Messages => "messages",
            Report::Contacts => "contacts",
            Report::Assignments => "assignments",
        }
    }

    pub fn from_wire(s: &str) -> Option<Report> {
        Report::ALL.iter().copied().find(|r| r.wire() == s)
    }

    /// The filter names the report knows, in SPEC §5 order.
    pub fn filters(self) -> &'static [&'static str] {
        match self {
            Report::Conversations => CONVERSATION_FILTERS,
            Report::Messages => &[
                "channel",
                "contact",
                "source",
                "type",
                "team",
                "user",
                "broadcast",
            ],
            Report::Contacts => &["channel", "user", "source", "contact"],
            Report::Assignments => &[
                "source",
                "assignee",
                "assigned_by",
                "contact",
                "conversation",
            ],
        }
    }

    /// The report's components, in document order.
    pub fn components(self) -> &'static [Component] {
        match self {
            Report::Conversations => CONVERSATION_COMPONENTS,
            Report::Messages => MESSAGE_COMPONENTS,
            Report::Contacts => CONTACT_COMPONENTS,
            Report::Assignments => ASSIGNMENT_COMPONENTS,
        }
    }

    /// The report's logs.
    pub fn logs(self) -> &'static [Log] {
        match self {
            Report::Conversations => &[Log::Conversations],
            Report::Messages => &[Log::Incoming, Log::Outgoing, Log::Failed],
            Report::Contacts => &[Log::Added, Log::Connected, Log::Deleted, Log::Merged],
            Report::Assignments => &[Log::Assignments],
        }
    }

    pub fn log(self, name: &str) -> Option<Log> {
        self.logs().iter().copied().find(|l| l.wire() == name)
    }
}

const CONVERSATION_FILTERS: &[&str] = &[
    "closed_source",
    "first_assignee",
    "first_response_by",
    "last_assignee",
    "closed_by_team",
    "closed_by_user",
    "category",
    "opened_channel",
    "opened_source",
    "contact_type",
    "contact",
    "conversation",
];
const OPENED_FILTERS: &[&str] = &[
    "opened_channel",
    "opened_source",
    "contact_type",
    "contact",
    "conversation",
];
const INCOMING_FILTERS: &[&str] = &["channel", "contact"];
const OUTGOING_FILTERS: &[&str] = &[
    "channel",
    "contact",
    "source",
    "type",
    "team",
    "user",
    "broadcast",
];
const ACTIVITY_FILTERS: &[&str] = &["user", "source", "contact"];
const CONNECTED_FILTERS: &[&str] = &["channel", "user", "source", "contact"];
const ASSIGNMENT_FILTERS: &[&str] = &[
    "source",
    "assignee",
    "assigned_by",
    "contact",
    "conversation",
];

/// A set of fact rows that components count, each row with its own timestamp (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// Every opened conversation, by `opened_at`.
    Opened,
    /// Conversations with a counted close, by `closed_at`.
    Closed,
    Incoming,
    Outgoing,
    /// Outgoing messages of type `facebook_message_tag` or `whatsapp_template`.
    Tagged,
    /// Outgoing messages whose final status is `failed`, by `failed_at`.
    Failed,
    Added,
    Deleted,
    Merged,
    Connected,
    Assignments,
}

/// A breakdown's or line's key: a dimension of its dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    ContactType,
    OpenedSource,
    OpenedChannel,
    Category,
    ClosedSource,
    Channel,
    MessageSource,
    MessageType,
    Subtype,
    Status,
    ContactSource,
    AssignSource,
}

/// What a component shows.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Metric(Dataset),
    Bar(&'static [(&'static str, &'static str, Dataset)]),
    Heatmap(Dataset),
    Breakdown(Dataset, Key),
    /// The delivery line: always its four statuses.
    Line(Dataset, Key),
}

impl Shape {
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Metric(_) => "metric",
            Shape::Bar(_) => "bar",
            Shape::Heatmap(_) => "heatmap",
            Shape::Breakdown(..) => "breakdown",
            Shape::Line(..) => "line",
        }
    }
}

/// A component of a report (SPEC §6) and the filters it accepts (SPEC §5).
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub id: &'static str,
    pub shape: Shape,
    pub accepts: &'static [&'static str],
}

const fn c(id: &'static str, shape: Shape, accepts: &'static [&'static str]) -> Component {
    Component { id, shape, accepts }
}

const CONVERSATION_COMPONENTS: &[Component] = &[
    c("opened", Shape::Metric(Dataset::Opened), OPENED_FILTERS),
    c(
        "closed",
        Shape::Metric(Dataset::Closed),
        CONVERSATION_FILTERS,
    ),
    c(
        "open_vs_closed",
        Shape::Bar(&[
            ("opened", "Opened", Dataset::Opened),
            ("closed", "Closed", Dataset::Closed),
        ]),
        OPENED_FILTERS,
    ),
    c(
        "opened_heatmap",
        Shape::Heatmap(Dataset::Opened),
        OPENED_FILTERS,
    ),
    c(
        "closed_heatmap",
        Shape::Heatmap(Dataset::Closed),
        CONVERSATION_FILTERS,
    ),
    c(
        "opened_by_contact_type",
        Shape::Breakdown(Dataset::Opened, Key::ContactType),
        OPENED_FILTERS,
    ),
    c(
        "opened_by_source",
        Shape::Breakdown(Dataset::Opened, Key::OpenedSource),
        OPENED_FILTERS,
    ),
    c(
        "opened_by_channel",
        Shape::Breakdown(Dataset::Opened, Key::OpenedChannel),
        OPENED_FILTERS,
    ),
    c(
        "closed_by_category",
        Shape::Breakdown(Dataset::Closed, Key::Category),
        CONVERSATION_FILTERS,
    ),
    c(
        "closed_by_source",
        Shape::Breakdown(Dataset::Closed, Key::ClosedSource),
        CONVERSATION_FILTERS,
    ),
    c(
        "closed_by_contact_type",
        Shape::Breakdown(Dataset::Closed, Key::ContactType),
        CONVERSATION_FILTERS,
    ),
];

const MESSAGE_COMPONENTS: &[Component] = &[
    c(
        "incoming_by_channel",
        Shape::Breakdown(Dataset::Incoming, Key::Channel),
        INCOMING_FILTERS,
    ),
    c(
        "outgoing_by_channel",
        Shape::Breakdown(Dataset::Outgoing, Key::Channel),
        OUTGOING_FILTERS,
    ),
    c(
        "outgoing_by_source",
        Shape::Breakdown(Dataset::Outgoing, Key::MessageSource),
        OUTGOING_FILTERS,
    ),
    c(
        "outgoing_by_type",
        Shape::Breakdown(Dataset::Outgoing, Key::MessageType),
        OUTGOING_FILTERS,
    ),
    c(
        "outgoing_by_subtype",
        Shape::Breakdown(Dataset::Tagged, Key::Subtype),
        OUTGOING_FILTERS,
    ),
    c(
        "delivery",
        Shape::Line(Dataset::Outgoing, Key::Status),
        OUTGOING_FILTERS,
    ),
];

const CONTACT_COMPONENTS: &[Component] = &[
    c("added", Shape::Metric(Dataset::Added), ACTIVITY_FILTERS),
    c("deleted", Shape::Metric(Dataset::Deleted), ACTIVITY_FILTERS),
    c("merged", Shape::Metric(Dataset::Merged), ACTIVITY_FILTERS),
    c(
        "added_vs_deleted_vs_merged",
        Shape::Bar(&[
            ("added", "Added", Dataset::Added),
            ("deleted", "Deleted", Dataset::Deleted),
            ("merged", "Merged", Dataset::Merged),
        ]),
        ACTIVITY_FILTERS,
    ),
    c(
        "added_by_source",
        Shape::Breakdown(Dataset::Added, Key::ContactSource),
        ACTIVITY_FILTERS,
    ),
    c(
        "connected_by_channel",
        Shape::Breakdown(Dataset::Connected, Key::Channel),
        CONNECTED_FILTERS,
    ),
];

const ASSIGNMENT_COMPONENTS: &[Component] = &[c(
    "assignments_by_source",
    Shape::Breakdown(Dataset::Assignments, Key::AssignSource),
    ASSIGNMENT_FILTERS,
)];

/// How a log column's value is typed, which decides its JSON and CSV forms (SPEC §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// An instant, shown in the workspace's offset.
    Time,
    /// Whole seconds; `hh:mm:ss` in CSV.
    Duration,
    Int,
    Text,
    /// A user id, shown by display name; `""` stands for `Unassigned`.
    User,
    Team,
    Channel,
    /// An enumeration's wire value; its English label in CSV.
    Enum,
}

/// One log of SPEC §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Log {
    Conversations,
    Incoming,
    Outgoing,
    Failed,
    Added,
    Connected,
    Deleted,
    Merged,
    Assignments,
}

impl Log {
    pub fn wire(self) -> &'static str {
        match self {
            Log::Conversations => "conversations",
            Log::Incoming => "incoming",
            Log::Outgoing => "outgoing",
            Log::Failed => "failed",
            Log::Added => "added",
            Log::Connected => "connected",
            Log::Deleted => "deleted",
            Log::Merged => "merged",
            Log::Assignments => "assignments",
        }
    }

    pub fn dataset(self) -> Dataset {
        match self {
            Log::Conversations => Dataset::Closed,
            Log::Incoming => Dataset::Incoming,
            Log::Outgoing => Dataset::Outgoing,
            Log::Failed => Dataset::Failed,
            Log::Added => Dataset::Added,
            Log::Connected => Dataset::Connected,
            Log::Deleted => Dataset::Deleted,
            Log::Merged => Dataset::Merged,
            Log::Assignments => Dataset::Assignments,
        }
    }

    /// The filters the log accepts: those of the components over the same rows.
    pub fn accepts(self) -> &'static [&'static str] {
        match self {
            Log::Conversations => CONVERSATION_FILTERS,
            Log::Incoming => INCOMING_FILTERS,
            Log::Outgoing | Log::Failed => OUTGOING_FILTERS,
            Log::Added | Log::Deleted | Log::Merged => ACTIVITY_FILTERS,
            Log::Connected => CONNECTED_FILTERS,
            Log::Assignments => ASSIGNMENT_FILTERS,
        }
    }

    /// The columns, exactly as SPEC §6 lists them, with their types.
    pub fn columns(self) -> &'static [(&'static str, ColType)] {
        use ColType::*;
        match self {
            Log::Conversations => &[
                ("closed_at", Time),
                ("closed_source", Enum),
                ("closed_by", User),
                ("closed_by_team", Team),
                ("opened_at", Time),
                ("opened_source", Enum),
                ("opened_channel", Channel),
                ("conversation_id", Text),
                ("contact_id", Text),
                ("contact_name", Text),
                ("first_assignment_at", Time),
                ("first_assignee", User),
                ("first_response_at", Time),
                ("first_response_by", User),
                ("last_assignment_at", Time),
                ("last_assignee", User),
                ("time_to_first_assignment", Duration),
                ("first_response_time", Duration),
                ("first_assignment_to_first_response", Duration),
                ("last_assignment_to_response", Duration),
                ("resolution_time", Duration),
                ("first_assignment_to_close", Duration),
                ("last_assignment_to_close", Duration),
                ("average_response_time", Duration),
                ("assignments", Int),
                ("incoming_messages", Int),
                ("outgoing_messages", Int),
                ("responses", Int),
                ("category", Text),
                ("summary", Text),
            ],
            Log::Incoming => &[
                ("at", Time),
                ("contact_id", Text),
                ("contact_name", Text),
                ("channel", Channel),
                ("content", Text),
            ],
            Log::Outgoing => &[
                ("at", Time),
                ("source", Enum),
                ("user", User),
                ("contact_id", Text),
                ("contact_name", Text),
                ("delivered_at", Time),
                ("read_at", Time),
                ("channel", Channel),
                ("type", Enum),
                ("subtype", Text),
                ("content", Text),
            ],
            Log::Failed => &[
                ("failed_at", Time),
                ("source", Enum),
                ("user", User),
                ("contact_id", Text),
                ("contact_name", Text),
                ("channel", Channel),
                ("type", Enum),
                ("subtype", Text),
                ("content", Text),
                ("error", Text),
            ],
            Log::Added | Log::Deleted => &[
                ("at", Time),
                ("contact_id", Text),
                ("contact_name", Text),
                ("source", Enum),
                ("user", User),
            ],
            Log::Connected => &[
                ("at", Time),
                ("contact_id", Text),
                ("contact_name", Text),
                ("channel", Channel),
                ("source", Enum),
                ("user", User),
            ],
            Log::Merged => &[
                ("at", Time),
                ("primary_contact_id", Text),
                ("contact_name", Text),
                ("source", Enum),
                ("user", User),
            ],
            Log::Assignments => &[
                ("at", Time),
                ("conversation_id", Text),
                ("contact_id", Text),
                ("contact_name", Text),
                ("previous_assignee", User),
                ("new_assignee", User),
                ("source", Enum),
                ("assigned_by", User),
            ],
        }
    }
}

/// The value that every filter accepts for "this dimension is missing".
pub const MISSING: &str = "-";

/// Parsed filters: names sorted, values in order of first appearance without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

/// Why a `--filter` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter {0:?} has no '=': expected NAME=VALUE")]
    NoEquals(String),
    #[error("unknown filter {name:?} for the {report} report (expected one of {expected})")]
    UnknownName {
        name: String,
        report: &'static str,
        expected: String,
    },
    #[error("filter {0:?} has an empty value")]
    EmptyValue(String),
    #[error("filter {name}: unknown value {value:?} (expected one of {expected}, or -)")]
    BadValue {
        name: String,
        value: String,
        expected: String,
    },
}

/// The wire values an enumerated filter takes, in SPEC order; `None` for a filter that
/// is not enumerated (channels, users, teams, categories, broadcasts, contacts, ids).
pub fn enum_values(report: Report, name: &str) -> Option<Vec<&'static str>> {
    fn wires<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| f(*v)).collect()
    }
    Some(match (report, name) {
        (Report::Conversations, "closed_source") => wires(CloseSource::ALL, CloseSource::wire),
        (Report::Conversations, "opened_source") => wires(OpenSource::ALL, OpenSource::wire),
        (Report::Conversations, "contact_type") => wires(ContactType::ALL, ContactType::wire),
        (Report::Messages, "source") => wires(MessageSource::ALL, MessageSource::wire),
        (Report::Messages, "type") => wires(MessageType::ALL, MessageType::wire),
        (Report::Contacts, "source") => {
            let mut v = wires(ContactSource::ALL, ContactSource::wire);
            for m in MessageSource::ALL {
                if !v.contains(&m.wire()) {
                    v.push(m.wire());
                }
            }
            v
        }
        (Report::Assignments, "source") => wires(AssignSource::ALL, AssignSource::wire),
        _ => return None,
    })
}

impl Filters {
    /// Parses repeated `NAME=VALUE` arguments for a report (SPEC §5).
    pub fn parse<S: AsRef<str>>(report: Report, args: &[S]) -> Result<Filters, FilterError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arg in args {
            let arg = arg.as_ref();
            let (name, value) = arg
                .split_once('=')
                .ok_or_else(|| FilterError::NoEquals(arg.to_string()))?;
            if !report.filters().contains(&name) {
                return Err(FilterError::UnknownName {
                    name: name.to_string(),
                    report: report.wire(),
                    expected: report.filters().join(", "),
                });
            }
            if value.is_empty() {
                return Err(FilterError::EmptyValue(name.to_string()));
            }
            if let Some(allowed) = enum_values(report, name) {
                if value != MISSING && !allowed.contains(&value) {
                    return Err(FilterError::BadValue {
                        name: name.to_string(),
                        value: value.to_string(),
                        expected: allowed.join(", "),
                    });
                }
            }
            let values = map.entry(name.to_string()).or_default();
            if !values.iter().any(|v| v == value) {
                values.push(value.to_string());
            }
        }
        Ok(Filters(map))
    }

    /// Whether a component or log accepting `accepts` can honour every filter.
    pub fn applicable(&self, accepts: &[&str]) -> bool {
        self.first_not_applicable(accepts).is_none()
    }

    /// The first filter that `accepts` lacks.
    pub fn first_not_applicable(&self, accepts: &[&str]) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|k| !accepts.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_sort_names_and_dedupe_values_in_first_order() {
        let f = Filters::parse(
            Report::Messages,
            &["user=u2", "channel=wa", "user=u1", "user=u2"],
        )
        .unwrap();
        let got: Vec<_> = f.0.iter().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(f.0["channel"], vec!["wa"]);
        assert_eq!(f.0["user"], vec!["u2", "u1"]);
        assert_eq!(f.0.keys().next().unwrap(), "channel");
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(matches!(
            Filters::parse(Report::Messages, &["channel"]),
            Err(FilterError::NoEquals(_))
        ));
        assert!(matches!(
            Filters::parse(Report::Messages, &["category=x"]),
            Err(FilterError::UnknownName { .. })
        ));
        assert!(matches!(
            Filters::parse(Report::Messages, &["channel="]),
            Err(FilterError::EmptyValue(_))
        ));
        assert!(matches!(
            Filters::parse(Report::Messages, &["source=robot"]),
            Err(FilterError::BadValue { .. })
        ));
        assert!(Filters::parse(Report::Messages, &["source=-"]).is_ok());
        assert!(Filters::parse(
            Report::Contacts,
            &["source=incoming_message", "source=broadcast"]
        )
        .is_ok());
        assert!(Filters::parse(Report::Assignments, &["source=blocked"]).is_err());
        assert!(Filters::parse(Report::Conversations, &["contact_type=vip"]).is_err());
    }

    #[test]
    fn section5_applicability_table() {
        let f = Filters::parse(Report::Conversations, &["category=Sales"]).unwrap();
        let by_id = |id: &str| {
            Report::Conversations
                .components()
                .iter()
                .find(|c| c.id == id)
                .unwrap()
        };
        assert!(!f.applicable(by_id("opened").accepts));
        assert!(!f.applicable(by_id("open_vs_closed").accepts));
        assert!(f.applicable(by_id("closed").accepts));
        assert!(f.applicable(Log::Conversations.accepts()));
        let f = Filters::parse(Report::Messages, &["source=user"]).unwrap();
        assert!(!f.applicable(Log::Incoming.accepts()));
        assert_eq!(
            f.first_not_applicable(Log::Incoming.accepts()),
            Some("source")
        );
        let f = Filters::parse(Report::Contacts, &["channel=wa"]).unwrap();
        assert!(!f.applicable(Report::Contacts.components()[0].accepts));
        assert!(f.applicable(Log::Connected.accepts()));
    }

    /// The table at the end of SPEC §5, transcribed literally.
    #[test]
    fn section5_table_for_every_component_and_log() {
        let opened = [
            "opened_channel",
            "opened_source",
            "contact_type",
            "contact",
            "conversation",
        ];
        let all_conv = [
            "closed_source",
            "first_assignee",
            "first_response_by",
            "last_assignee",
            "closed_by_team",
            "closed_by_user",
            "category",
            "opened_channel",
            "opened_source",
            "contact_type",
            "contact",
            "conversation",
        ];
        let incoming = ["channel", "contact"];
        let outgoing = [
            "channel",
            "contact",
            "source",
            "type",
            "team",
            "user",
            "broadcast",
        ];
        let activity = ["user", "source", "contact"];
        let connected = ["channel", "user", "source", "contact"];
        let assignments = [
            "source",
            "assignee",
            "assigned_by",
            "contact",
            "conversation",
        ];
        let table: &[(Report, &str, &[&str])] = &[
            (Report::Conversations, "opened", &opened),
            (Report::Conversations, "open_vs_closed", &opened),
            (Report::Conversations, "opened_heatmap", &opened),
            (Report::Conversations, "opened_by_contact_type", &opened),
            (Report::Conversations, "opened_by_source", &opened),
            (Report::Conversations, "opened_by_channel", &opened),
            (Report::Conversations, "closed", &all_conv),
            (Report::Conversations, "closed_heatmap", &all_conv),
            (Report::Conversations, "closed_by_category", &all_conv),
            (Report::Conversations, "closed_by_source", &all_conv),
            (Report::Conversations, "closed_by_contact_type", &all_conv),
            (Report::Messages, "incoming_by_channel", &incoming),
            (Report::Messages, "outgoing_by_channel", &outgoing),
            (Report::Messages, "outgoing_by_source", &outgoing),
            (Report::Messages, "outgoing_by_type", &outgoing),
            (Report::Messages, "outgoing_by_subtype", &outgoing),
            (Report::Messages, "delivery", &outgoing),
            (Report::Contacts, "added", &activity),
            (Report::Contacts, "deleted", &activity),
            (Report::Contacts, "merged", &activity),
            (Report::Contacts, "added_vs_deleted_vs_merged", &activity),
            (Report::Contacts, "added_by_source", &activity),
            (Report::Contacts, "connected_by_channel", &connected),
            (Report::Assignments, "assignments_by_source", &assignments),
        ];
        fn sorted<'a>(v: &[&'a str]) -> Vec<&'a str> {
            let mut v = v.to_vec();
            v.sort();
            v
        }
        for (report, id, want) in table {
            let c = report.components().iter().find(|c| c.id == *id).unwrap();
            assert_eq!(sorted(c.accepts), sorted(want), "{id}");
        }
        assert_eq!(
            table.len(),
            Report::ALL
                .iter()
                .map(|r| r.components().len())
                .sum::<usize>()
        );
        let logs: &[(Log, &[&str])] = &[
            (Log::Conversations, &all_conv),
            (Log::Incoming, &incoming),
            (Log::Outgoing, &outgoing),
            (Log::Failed, &outgoing),
            (Log::Added, &activity),
            (Log::Deleted, &activity),
            (Log::Merged, &activity),
            (Log::Connected, &connected),
            (Log::Assignments, &assignments),
        ];
        for (log, want) in logs {
            assert_eq!(sorted(log.accepts()), sorted(want), "{}", log.wire());
        }
        assert_eq!(sorted(Report::Conversations.filters()), sorted(&all_conv));
        assert_eq!(sorted(Report::Messages.filters()), sorted(&outgoing));
        assert_eq!(sorted(Report::Contacts.filters()), sorted(&connected));
        assert_eq!(sorted(Report::Assignments.filters()), sorted(&assignments));
    }

    #[test]
    fn every_component_id_of_section6_is_defined() {
        let ids = |r: Report| r.components().iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(
            ids(Report::Conversations),
            [
                "opened",
                "closed",
                "open_vs_closed",
                "opened_heatmap",
                "closed_heatmap",
                "opened_by_contact_type",
                "opened_by_source",
                "opened_by_channel",
                "closed_by_category",
                "closed_by_source",
                "closed_by_contact_type"
            ]
        );
        assert_eq!(
            ids(Report::Messages),
            [
                "incoming_by_channel",
                "outgoing_by_channel",
                "outgoing_by_source",
                "outgoing_by_type",
                "outgoing_by_subtype",
                "delivery"
            ]
        );
        assert_eq!(
            ids(Report::Contacts),
            [
                "added",
                "deleted",
                "merged",
                "added_vs_deleted_vs_merged",
                "added_by_source",
                "connected_by_channel"
            ]
        );
        assert_eq!(ids(Report::Assignments), ["assignments_by_source"]);
        assert_eq!(Log::Conversations.columns().len(), 30);
    }
}
