//! What a caller asks for, as the text it arrives in (command-line arguments, HTTP path
//! segments and query parameters), parsed and checked once: the CLI and the HTTP API
//! both hand their strings here, so they accept and refuse exactly the same inputs
//! with the same messages (SPEC §7, §8.3).

use jiff::tz::TimeZone;

use crate::report::{FilterError, Filters, Log, Report};
use crate::time::{parse_date, parse_rfc3339, Instant, Preset, Range, RangeError, TimestampError};

/// Rows per log page when none is asked for (SPEC §8.2).
pub const DEFAULT_PER_PAGE: u64 = 50;
/// The most rows a log page may ask for.
pub const MAX_PER_PAGE: u64 = 1000;

/// Why a request was refused. [`RequestError::is_usage`] tells the malformed request
/// (the CLI's exit status 2) from a well-formed one asking for something that is not
/// there or not valid (exit status 1); over HTTP both are 400, but an unknown report
/// is 404.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown report {0:?} (expected one of {list})", list = names(Report::ALL.iter().map(|r| r.wire())))]
    UnknownReport(String),
    #[error("unknown log {name:?} for the {report} report (expected one of {expected})")]
    UnknownLog {
        name: String,
        report: &'static str,
        expected: String,
    },
    #[error("unknown range {0:?} (expected one of {list})", list = names(Preset::ALL.iter().map(|p| p.wire())))]
    UnknownPreset(String),
    #[error("a range is needed: a preset (range) or both from and to")]
    NoRange,
    #[error("range and from/to cannot be given together")]
    RangeAndDates,
    #[error("from and to go together: {0} is missing")]
    HalfRange(&'static str),
    #[error("bad now {0:?}: {1}")]
    BadNow(String, TimestampError),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{name} must be an integer, got {value:?}")]
    NotAnInteger { name: &'static str, value: String },
    #[error("page must be 1 or more, got {0}")]
    PageBelowOne(i64),
    #[error("per_page must be between 1 and {MAX_PER_PAGE}, got {0}")]
    PerPageOutOfBounds(i64),
    #[error("workspace id {0:?} must be 1-64 characters of a-z, 0-9, '-' and '_'")]
    BadWorkspaceId(String),
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
}

impl RequestError {
    /// A malformed request rather than a refused value: an unknown report or preset,
    /// no range or both kinds of range, a number that is not one (SPEC §8.3, exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RequestError::UnknownReport(_)
                | RequestError::UnknownPreset(_)
                | RequestError::NoRange
                | RequestError::RangeAndDates
                | RequestError::HalfRange(_)
                | RequestError::NotAnInteger { .. }
        )
    }
}

fn names<'a>(list: impl Iterator<Item = &'a str>) -> String {
    list.collect::<Vec<_>>().join(", ")
}

/// A report by its wire name.
pub fn report(name: &str) -> Result<Report, RequestError> {
    Report::from_wire(name).ok_or_else(|| RequestError::UnknownReport(name.to_string()))
}

/// One of the report's logs by its wire name.
pub fn log(report: Report, name: &str) -> Result<Log, RequestError> {
    report.log(name).ok_or_else(|| RequestError::UnknownLog {
        name: name.to_string(),
        report: report.wire(),
        expected: names(report.logs().iter().map(|l| l.wire())),
    })
}

/// Checks a workspace id against SPEC §8.3's pattern.
pub fn workspace_id(id: &str) -> Result<(), RequestError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RequestError::BadWorkspaceId(id.to_string()))
    }
}

/// An IANA zone by name (any case), with its canonical spelling, which reports echo.
pub fn zone(name: &str) -> Result<(TimeZone, String), RequestError> {
    let tz = crate::time::parse_zone(name).ok_or_else(|| RequestError::UnknownZone(name.into()))?;
    let canonical = tz
        .iana_name()
        .map_or_else(|| name.to_string(), str::to_string);
    Ok((tz, canonical))
}

/// The range and filters of a report, log or export, as given: a preset (`range`) or
/// `from` and `to` dates, `now` (RFC 3339, default the present) and `NAME=VALUE`
/// filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub now: Option<String>,
    pub filters: Vec<String>,
}

impl View {
    /// The range in the zone `tz` and the filters, checked for `report`; `present` is
    /// the instant taken as now when the view names none.
    pub fn resolve(
        &self,
        report: Report,
        tz: &TimeZone,
        present: Instant,
    ) -> Result<(Range, Filters), RequestError> {
        let range = match (&self.range, &self.from, &self.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(RequestError::RangeAndDates)
            }
            (None, None, None) => return Err(RequestError::NoRange),
            (None, Some(_), None) => return Err(RequestError::HalfRange("to")),
            (None, None, Some(_)) => return Err(RequestError::HalfRange("from")),
            (Some(p), None, None) => {
                let preset =
                    Preset::from_wire(p).ok_or_else(|| RequestError::UnknownPreset(p.clone()))?;
                let now = match &self.now {
                    Some(s) => parse_rfc3339(s).map_err(|e| RequestError::BadNow(s.clone(), e))?,
                    None => present,
                };
                Range::preset(preset, now, tz)?
            }
            (None, Some(from), Some(to)) => {
                if let Some(s) = &self.now {
                    parse_rfc3339(s).map_err(|e| RequestError::BadNow(s.clone(), e))?;
                }
                Range::custom(parse_date(from)?, parse_date(to)?, tz)?
            }
        };
        Ok((range, Filters::parse(report, &self.filters)?))
    }
}

/// A log page's number and size, as given (absent: page 1 of 50 rows).
pub fn page(page: Option<&str>, per_page: Option<&str>) -> Result<(u64, u64), RequestError> {
    let int = |name: &'static str, value: &str| {
        value
            .parse::<i64>()
            .map_err(|_| RequestError::NotAnInteger {
                name,
                value: value.to_string(),
            })
    };
    let page = match page {
        Some(v) => int("page", v)?,
        None => 1,
    };
    let per_page = match per_page {
        Some(v) => int("per_page", v)?,
        None => DEFAULT_PER_PAGE as i64,
    };
    if page < 1 {
        return Err(RequestError::PageBelowOne(page));
    }
    if !(1..=MAX_PER_PAGE as i64).contains(&per_page) {
        return Err(RequestError::PerPageOutOfBounds(per_page));
    }
    Ok((page as u64, per_page as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn madrid() -> TimeZone {
        zone("Europe/Madrid").unwrap().0
    }

    fn now() -> Instant {
        parse_rfc3339("2026-11-30T12:00:00+01:00").unwrap()
    }

    fn view(range: Option<&str>, from: Option<&str>, to: Option<&str>) -> View {
        View {
            range: range.map(Into::into),
            from: from.map(Into::into),
            to: to.map(Into::into),
            ..View::default()
        }
    }

    #[test]
    fn a_view_needs_exactly_one_kind_of_range() {
        let r = Report::Conversations;
        let err = |v: View| v.resolve(r, &madrid(), now()).unwrap_err();
        assert_eq!(err(view(None, None, None)), RequestError::NoRange);
        assert_eq!(
            err(view(Some("today"), Some("2026-01-01"), None)),
            RequestError::RangeAndDates
        );
        assert_eq!(
            err(view(None, Some("2026-01-01"), None)),
            RequestError::HalfRange("to")
        );
        assert_eq!(
            err(view(None, None, Some("2026-01-01"))),
            RequestError::HalfRange("from")
        );
        assert_eq!(
            err(view(Some("last_year"), None, None)),
            RequestError::UnknownPreset("last_year".into())
        );
        assert!(matches!(
            err(view(None, Some("2026-02-01"), Some("2026-01-01"))),
            RequestError::Range(RangeError::FromAfterTo { .. })
        ));
        assert!(matches!(
            err(view(None, Some("2026-02-30"), Some("2026-03-01"))),
            RequestError::Range(RangeError::BadDate(_))
        ));
        let bad_now = View {
            now: Some("yesterday".into()),
            ..view(Some("today"), None, None)
        };
        assert!(matches!(err(bad_now), RequestError::BadNow(..)));
        let bad_filter = View {
            filters: vec!["nope=1".into()],
            ..view(Some("today"), None, None)
        };
        assert!(matches!(err(bad_filter), RequestError::Filter(_)));
    }

    fn same(r: &Range) -> (Option<Preset>, Instant, Instant) {
        (r.preset, r.start, r.end)
    }

    #[test]
    fn a_preset_is_taken_in_the_zone_at_now() {
        let v = View {
            now: Some("2026-11-30T12:00:00+01:00".into()),
            ..view(Some("last_30_days"), None, None)
        };
        let (range, filters) = v.resolve(Report::Messages, &madrid(), Instant(0)).unwrap();
        let expected = Range::preset(Preset::Last30Days, now(), &madrid()).unwrap();
        assert_eq!(same(&range), same(&expected));
        assert!(filters.0.is_empty());
        // Without `now`, the present given is used.
        let v = view(Some("today"), None, None);
        let (range, _) = v.resolve(Report::Messages, &madrid(), now()).unwrap();
        let today = Range::preset(Preset::Today, now(), &madrid()).unwrap();
        assert_eq!(same(&range), same(&today));
    }

    #[test]
    fn pages_are_integers_within_bounds() {
        assert_eq!(page(None, None), Ok((1, DEFAULT_PER_PAGE)));
        assert_eq!(page(Some("3"), Some("1000")), Ok((3, 1000)));
        assert_eq!(page(Some("0"), None), Err(RequestError::PageBelowOne(0)));
        assert_eq!(page(Some("-3"), None), Err(RequestError::PageBelowOne(-3)));
        assert_eq!(
            page(None, Some("1001")),
            Err(RequestError::PerPageOutOfBounds(1001))
        );
        assert_eq!(
            page(None, Some("0")),
            Err(RequestError::PerPageOutOfBounds(0))
        );
        let e = page(Some("x"), None).unwrap_err();
        assert!(e.is_usage(), "{e}");
        assert_eq!(e.to_string(), r#"page must be an integer, got "x""#);
    }

    #[test]
    fn names_are_checked_with_the_expected_values_listed() {
        assert_eq!(report("messages"), Ok(Report::Messages));
        let e = report("sales").unwrap_err();
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            r#"unknown report "sales" (expected one of conversations, messages, contacts, assignments)"#
        );
        let e = log(Report::Messages, "sent").unwrap_err();
        assert!(!e.is_usage());
        assert_eq!(
            e.to_string(),
            r#"unknown log "sent" for the messages report (expected one of incoming, outgoing, failed)"#
        );
        assert!(workspace_id("shop-1_a").is_ok());
        for bad in ["", "Shop", "a b", &"x".repeat(65)] {
            assert_eq!(
                workspace_id(bad),
                Err(RequestError::BadWorkspaceId(bad.to_string()))
            );
        }
        assert_eq!(zone("europe/madrid").unwrap().1, "Europe/Madrid");
        assert_eq!(
            zone("Mars/Olympus").unwrap_err(),
            RequestError::UnknownZone("Mars/Olympus".into())
        );
    }
}
