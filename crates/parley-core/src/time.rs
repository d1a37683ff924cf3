//! Time (SPEC §4): instants, the strict RFC 3339 parser of event timestamps, ranges and
//! presets in the workspace's zone, buckets, heatmap cells and the display formats.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// An instant in UTC with microsecond precision, as stored everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub i64);

const MICROS: i64 = 1_000_000;

impl Instant {
    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn to_timestamp(self) -> Timestamp {
        Timestamp::from_microsecond(self.0).expect("stored instants are in jiff's range")
    }

    pub fn from_timestamp(ts: Timestamp) -> Self {
        Instant(ts.as_microsecond())
    }

    /// The instant as RFC 3339 in `tz`'s local offset, truncated to the second (SPEC §8.2).
    pub fn format_local(self, tz: &TimeZone) -> String {
        let mut out = String::with_capacity(25);
        self.write_local(tz, &mut out);
        out
    }

    /// `format_local`, appended to `out`.
    pub fn write_local(self, tz: &TimeZone, out: &mut String) {
        let ts = Timestamp::from_second(self.0.div_euclid(MICROS)).expect("in range");
        let offset = tz.to_offset(ts);
        let dt = offset.to_datetime(ts);
        let time = [dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second()];
        push_datetime(out, i64::from(dt.year()), time.map(|n| n as u32), offset);
    }

    /// The instant in UTC with a `Z`, truncated to the second.
    pub fn format_utc(self) -> String {
        let ts = Timestamp::from_second(self.0.div_euclid(MICROS)).expect("in range");
        let dt = Offset::UTC.to_datetime(ts);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }
}

/// Formats instants as [`Instant::write_local`] does, remembering the offset between the
/// zone's two transitions around the last instant: an export's millions of instants then
/// cost integer arithmetic instead of a zone lookup and a calendar conversion each.
pub struct LocalClock<'a> {
    tz: &'a TimeZone,
    /// Seconds `[from, to)` in which the offset is `offset` (seconds east of UTC).
    span: Option<(i64, i64, i64)>,
}

impl<'a> LocalClock<'a> {
    pub fn new(tz: &'a TimeZone) -> Self {
        LocalClock { tz, span: None }
    }

    /// `at` as RFC 3339 in the zone's local offset, truncated to the second, appended.
    pub fn write(&mut self, at: Instant, out: &mut String) {
        let secs = at.0.div_euclid(MICROS);
        let offset = match self.span {
            Some((from, to, offset)) if from <= secs && secs < to => offset,
            _ => match self.learn(secs) {
                Some(offset) => offset,
                None => return at.write_local(self.tz, out),
            },
        };
        let local = secs + offset;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let of_day = local.rem_euclid(86_400) as u32;
        let time = [month, day, of_day / 3600, of_day / 60 % 60, of_day % 60];
        let offset = Offset::from_seconds(offset as i32).expect("a zone's offset");
        push_datetime(out, year, time, offset);
    }

    /// The offset at `secs`, remembering the span of it between transitions; `None` when
    /// the span cannot be told (the instant on a transition is simply not remembered).
    fn learn(&mut self, secs: i64) -> Option<i64> {
        let ts = Timestamp::from_second(secs).ok()?;
        let offset = self.tz.to_offset(ts);
        let from = self.tz.preceding(ts).next().map(|t| t.timestamp());
        let to = self.tz.following(ts).next().map(|t| t.timestamp());
        if from.is_some_and(|f| self.tz.to_offset(f) != offset) {
            return None;
        }
        let from = from.map_or(i64::MIN, |f| f.as_second());
        let to = to.map_or(i64::MAX, |t| t.as_second());
        let offset = i64::from(offset.seconds());
        if from <= secs && secs < to {
            self.span = Some((from, to, offset));
            return Some(offset);
        }
        None
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDThh:mm:ss±hh:mm` of a local date and time (month, day, hour, minute,
/// second) and its offset, appended. Digits by hand: an export formats millions of these,
/// and `write!` costs several times more.
fn push_datetime(out: &mut String, year: i64, time: [u32; 5], offset: Offset) {
    if (0..=9999).contains(&year) {
        push_digits(out, year as u32, 4);
    } else {
        use std::fmt::Write;
        write!(out, "{year:04}").expect("writing to a String");
    }
    for (sep, n) in ['-', '-', 'T', ':', ':'].into_iter().zip(time) {
        out.push(sep);
        push_digits(out, n, 2);
    }
    write_offset(offset, out);
}

/// `±hh:mm`, with UTC as `+00:00`.
pub fn format_offset(offset: Offset) -> String {
    let mut out = String::with_capacity(6);
    write_offset(offset, &mut out);
    out
}

/// `format_offset`, appended to `out`.
fn write_offset(offset: Offset, out: &mut String) {
    let secs = offset.seconds();
    out.push(if secs < 0 { '-' } else { '+' });
    let abs = secs.unsigned_abs();
    push_digits(out, abs / 3600, 2);
    out.push(':');
    push_digits(out, (abs % 3600) / 60, 2);
}

/// `n` in decimal, zero-padded to at least `width` digits.
pub fn push_digits(out: &mut String, mut n: u32, width: usize) {
    if width == 2 && n < 100 {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
        return;
    }
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    while n > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// Why an RFC 3339 timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimestampError(pub String);

/// Parses an RFC 3339 `date-time` with an offset, strictly: `T`/`Z` in either case, no
/// space separator, no leap second; fraction digits past the microsecond are truncated.
pub fn parse_rfc3339(s: &str) -> Result<Instant, TimestampError> {
    let err = |why: &str| TimestampError(format!("not an RFC 3339 date-time with offset ({why})"));
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    };
    let expect = |at: usize, c: u8| b.get(at) == Some(&c);
    let year = digits(0, 4).ok_or_else(|| err("bad year"))?;
    if !expect(4, b'-') || !expect(7, b'-') {
        return Err(err("bad date"));
    }
    let month = digits(5, 2).ok_or_else(|| err("bad month"))?;
    let day = digits(8, 2).ok_or_else(|| err("bad day"))?;
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return Err(err("expected 'T' between date and time"));
    }
    let hour = digits(11, 2).ok_or_else(|| err("bad hour"))?;
    let minute =
        (expect(13, b':').then(|| digits(14, 2)).flatten()).ok_or_else(|| err("bad minute"))?;
    let second =
        (expect(16, b':').then(|| digits(17, 2)).flatten()).ok_or_else(|| err("bad second"))?;
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(err("empty fraction"));
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && expect(i + 3, b':') => {
            let oh = digits(i + 1, 2).ok_or_else(|| err("bad offset"))?;
            let om = digits(i + 4, 2).ok_or_else(|| err("bad offset"))?;
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(err("missing or malformed offset")),
    };
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 {
        return Err(err("field out of range"));
    }
    if second > 59 {
        return Err(err("seconds out of range; leap seconds are not accepted"));
    }
    let date = Date::new(year as i16, month as i8, day as i8).map_err(|_| err("no such day"))?;
    let dt = date.at(hour as i8, minute as i8, second as i8, 0);
    let base = Offset::UTC
        .to_timestamp(dt)
        .map_err(|_| err("out of range"))?;
    let total = base.as_microsecond() + micros - offset_secs * MICROS;
    Timestamp::from_microsecond(total).map_err(|_| err("out of range"))?;
    Ok(Instant(total))
}

/// The granularity of a report's time series (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketKind {
    Hour,
    Day,
    Week,
}

impl BucketKind {
    pub fn wire(self) -> &'static str {
        match self {
            BucketKind::Hour => "hour",
            BucketKind::Day => "day",
            BucketKind::Week => "week",
        }
    }
}

/// A date preset of SPEC §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Today,
    Yesterday,
    Last7Days,
    Last14Days,
    Last30Days,
    ThisMonth,
    LastMonth,
}

impl Preset {
    pub const ALL: &'static [Preset] = &[
        Preset::Today,
        Preset::Yesterday,
        Preset::Last7Days,
        Preset::Last14Days,
        Preset::Last30Days,
        Preset::ThisMonth,
        Preset::LastMonth,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            Preset::Today => "today",
            Preset::Yesterday => "yesterday",
            Preset::Last7Days => "last_7_days",
            Preset::Last14Days => "last_14_days",
            Preset::Last30Days => "last_30_days",
            Preset::ThisMonth => "this_month",
            Preset::LastMonth => "last_month",
        }
    }

    pub fn from_wire(s: &str) -> Option<Preset> {
        Preset::ALL.iter().copied().find(|p| p.wire() == s)
    }

    /// The inclusive local dates the preset covers when today is `today`.
    pub fn dates(self, today: Date) -> (Date, Date) {
        let back = |n: i32| today.checked_sub(n.days()).unwrap_or(Date::MIN);
        match self {
            Preset::Today => (today, today),
            Preset::Yesterday => (back(1), back(1)),
            Preset::Last7Days => (back(6), today),
            Preset::Last14Days => (back(13), today),
            Preset::Last30Days => (back(29), today),
            Preset::ThisMonth => (today.first_of_month(), today),
            Preset::LastMonth => {
                let last = today
                    .first_of_month()
                    .checked_sub(1.day())
                    .expect("in range");
                (last.first_of_month(), last)
            }
        }
    }
}

/// Why a range could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("bad date {0:?}: expected YYYY-MM-DD")]
    BadDate(String),
    #[error("from {from} is after to {to}")]
    FromAfterTo { from: Date, to: Date },
    #[error("range ending {0} is outside the supported calendar")]
    OutOfRange(Date),
}

/// Parses a `YYYY-MM-DD` date strictly.
pub fn parse_date(s: &str) -> Result<Date, RangeError> {
    let bad = || RangeError::BadDate(s.to_string());
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, RangeError> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    Date::new(y as i16, m as i8, d as i8).map_err(|_| bad())
}

/// One time-series bucket: its label and the half-open instant interval it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: String,
    pub start: Instant,
    pub end: Instant,
}

/// A report's range: whole local days [start of `from`, start of the day after `to`).
#[derive(Debug, Clone)]
pub struct Range {
    pub preset: Option<Preset>,
    pub from: Date,
    pub to: Date,
    pub start: Instant,
    pub end: Instant,
    pub bucket: BucketKind,
    pub tz: TimeZone,
}

/// The first instant of a local day (the first existing one where midnight is skipped).
pub fn start_of_day(date: Date, tz: &TimeZone) -> Instant {
    try_start_of_day(date, tz).expect("day inside a validated range")
}

/// The first instant of a local day, or `None` past the ends of the supported calendar.
fn try_start_of_day(date: Date, tz: &TimeZone) -> Option<Instant> {
    let zdt = date
        .to_zoned_datetime(tz.clone())
        .and_then(|z| z.start_of_day())
        .ok()?;
    Some(Instant::from_timestamp(zdt.timestamp()))
}

/// Today's local date in `tz` at `now`.
pub fn local_date(now: Instant, tz: &TimeZone) -> Date {
    tz.to_datetime(now.to_timestamp()).date()
}

impl Range {
    /// A range from a preset, evaluated at `now`.
    pub fn preset(preset: Preset, now: Instant, tz: &TimeZone) -> Result<Range, RangeError> {
        let (from, to) = preset.dates(local_date(now, tz));
        let mut range = Range::custom(from, to, tz)?;
        range.preset = Some(preset);
        Ok(range)
    }

    /// A custom range of inclusive dates.
    pub fn custom(from: Date, to: Date, tz: &TimeZone) -> Result<Range, RangeError> {
        if from > to {
            return Err(RangeError::FromAfterTo { from, to });
        }
        // The range runs from the start of `from` to the start of the day after `to`;
        // both instants must exist.
        let after = to.checked_add(1.day()).ok();
        let bounds =
            after.and_then(|a| Some((try_start_of_day(from, tz)?, try_start_of_day(a, tz)?)));
        if bounds.is_none() {
            return Err(RangeError::OutOfRange(to));
        }
        Ok(Range::build(from, to, tz))
    }

    fn build(from: Date, to: Date, tz: &TimeZone) -> Range {
        let days = (to.since(from).expect("in range").get_days() + 1) as i64;
        let bucket = match days {
            1..=2 => BucketKind::Hour,
            3..=92 => BucketKind::Day,
            _ => BucketKind::Week,
        };
        let next = to.checked_add(1.day()).expect("date in range");
        Range {
            preset: None,
            from,
            to,
            start: start_of_day(from, tz),
            end: start_of_day(next, tz),
            bucket,
            tz: tz.clone(),
        }
    }

    pub fn contains(&self, at: Instant) -> bool {
        self.start <= at && at < self.end
    }

    /// Every bucket of the range, in order, with zeros where nothing happened.
    pub fn buckets(&self) -> Vec<Bucket> {
        match self.bucket {
            BucketKind::Hour => {
                let mut out = Vec::new();
                let mut t = self.start.0;
                while t < self.end.0 {
                    let ts = Timestamp::from_microsecond(t).expect("in range");
                    let offset = self.tz.to_offset(ts);
                    let dt = offset.to_datetime(ts);
                    out.push(Bucket {
                        label: format!(
                            "{:04}-{:02}-{:02}T{:02}:{:02}{}",
                            dt.year(),
                            dt.month(),
                            dt.day(),
                            dt.hour(),
                            dt.minute(),
                            format_offset(offset)
                        ),
                        start: Instant(t),
                        end: Instant((t + 3600 * MICROS).min(self.end.0)),
                    });
                    t += 3600 * MICROS;
                }
                out
            }
            BucketKind::Day => {
                let mut out = Vec::new();
                let mut d = self.from;
                while d <= self.to {
                    let next = d.checked_add(1.day()).expect("in range");
                    out.push(Bucket {
                        label: d.to_string(),
                        start: start_of_day(d, &self.tz),
                        end: start_of_day(next, &self.tz),
                    });
                    d = next;
                }
                out
            }
            BucketKind::Week => {
                let mut out = Vec::new();
                let back = i32::from(self.from.weekday().to_monday_zero_offset());
                let mut monday = self.from.checked_sub(back.days()).expect("in range");
                while monday <= self.to {
                    let next = monday.checked_add(7.days()).expect("in range");
                    let week = monday.iso_week_date();
                    out.push(Bucket {
                        label: format!("{:04}-W{:02}", week.year(), week.week()),
                        start: start_of_day(monday, &self.tz).max(self.start),
                        end: start_of_day(next, &self.tz).min(self.end),
                    });
                    monday = next;
                }
                out
            }
        }
    }

    /// The UTC offsets in force over the range, as (from, offset seconds) segments in
    /// order, so that SQL can turn instants into local weekdays and hours without ICU.
    pub fn offset_segments(&self) -> Vec<(Instant, i64)> {
        let mut out = vec![(
            Instant(i64::MIN),
            i64::from(self.tz.to_offset(self.start.to_timestamp()).seconds()),
        )];
        let mut t = self.start.to_timestamp();
        while let Some(tr) = self.tz.following(t).next() {
            if tr.timestamp() >= self.end.to_timestamp() {
                break;
            }
            out.push((
                Instant::from_timestamp(tr.timestamp()),
                i64::from(tr.offset().seconds()),
            ));
            t = tr.timestamp();
        }
        out
    }
}

/// The heatmap cell of an instant: (weekday with Monday = 0, local hour).
pub fn heatmap_cell(at: Instant, tz: &TimeZone) -> (usize, usize) {
    let dt: DateTime = tz.to_datetime(at.to_timestamp());
    (
        usize::from(dt.weekday().to_monday_zero_offset() as u8),
        dt.hour() as usize,
    )
}

/// A duration in whole seconds as `hh:mm:ss`, or `mm:ss` under an hour (SPEC §3.4).
pub fn format_duration(secs: i64) -> String {
    let mut out = String::with_capacity(8);
    write_duration(secs, &mut out);
    out
}

/// `format_duration`, appended to `out`.
pub fn write_duration(secs: i64, out: &mut String) {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if !(0..=u32::MAX as i64).contains(&h) || m < 0 || s < 0 {
        use std::fmt::Write;
        if h > 0 {
            write!(out, "{h:02}:{m:02}:{s:02}")
        } else {
            write!(out, "{m:02}:{s:02}")
        }
        .expect("writing to a String");
        return;
    }
    if h > 0 {
        push_digits(out, h as u32, 2);
        out.push(':');
    }
    push_digits(out, m as u32, 2);
    out.push(':');
    push_digits(out, s as u32, 2);
}

/// Parses an IANA zone name from the bundled database.
pub fn parse_zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// The remembering clock writes every instant as `write_local` does, in zones
        /// with DST, 45-minute and half-hour offsets, local mean time, and across their
        /// transitions, in any order.
        #[test]
        fn a_local_clock_writes_what_write_local_writes(
            zone in proptest::sample::select(vec![
                "Europe/Madrid", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe",
                "Africa/Monrovia", "Europe/Amsterdam", "UTC", "Pacific/Apia",
            ]),
            // 1900 to 2100, in seconds, with transitions hit exactly now and then.
            instants in proptest::collection::vec(
                proptest::prop_oneof![
                    -2_208_988_800i64..4_102_444_800i64,
                    (0i64..200).prop_map(|i| 1_774_746_000 + i * 15_724_800 - 1),
                    (0i64..200).prop_map(|i| 1_774_746_000 + i * 15_724_800),
                ],
                1..40,
            ),
            micros in 0i64..1_000_000,
        ) {
            let tz = parse_zone(zone).unwrap();
            let mut clock = LocalClock::new(&tz);
            for secs in instants {
                let at = Instant(secs * MICROS + micros);
                let mut ours = String::new();
                clock.write(at, &mut ours);
                proptest::prop_assert_eq!(ours, at.format_local(&tz), "{} in {}", secs, zone);
            }
        }
    }

    #[test]
    fn days_count_to_the_gregorian_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
    }

    fn tz(name: &str) -> TimeZone {
        parse_zone(name).unwrap()
    }

    fn at(s: &str) -> Instant {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn rfc3339_accepts_either_case_and_truncates_to_micros() {
        assert_eq!(
            at("2026-11-03T09:15:27.120+01:00"),
            at("2026-11-03t08:15:27.12z")
        );
        assert_eq!(
            at("2025-10-01T00:45:55.984000282+14:00").0 % MICROS,
            984_000,
            "nanoseconds are truncated"
        );
        assert_eq!(at("2026-01-01T00:00:00-00:00"), at("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn rfc3339_rejects_loose_forms() {
        for bad in [
            "2026-11-03 09:15:27Z",
            "2026-11-03T09:15:27",
            "2026-11-03T09:15Z",
            "2026-11-03T23:59:60Z",
            "2026-02-30T00:00:00Z",
            "2026-11-03T09:15:27+0100",
            "2026-11-03T09:15:27.Z",
            "2026-11-03T24:00:00Z",
            "2026-11-03T09:15:27+01:00 ",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn madrid_fall_back_day_has_25_hour_buckets() {
        let d = parse_date("2025-10-26").unwrap();
        let r = Range::custom(d, d, &tz("Europe/Madrid")).unwrap();
        let b = r.buckets();
        assert_eq!(r.bucket, BucketKind::Hour);
        assert_eq!(b.len(), 25);
        assert_eq!(b[2].label, "2025-10-26T02:00+02:00");
        assert_eq!(b[3].label, "2025-10-26T02:00+01:00");
        assert_eq!(r.start.format_utc(), "2025-10-25T22:00:00Z");
        assert_eq!(r.end.format_utc(), "2025-10-26T23:00:00Z");
    }

    #[test]
    fn new_york_spring_forward_day_has_23_hour_buckets() {
        let d = parse_date("2026-03-08").unwrap();
        let r = Range::custom(d, d, &tz("America/New_York")).unwrap();
        assert_eq!(r.buckets().len(), 23);
        assert_eq!(r.buckets()[2].label, "2026-03-08T03:00-04:00");
    }

    #[test]
    fn kolkata_half_hour_offset_labels() {
        let d = parse_date("2026-11-03").unwrap();
        let r = Range::custom(d, d, &tz("Asia/Kolkata")).unwrap();
        assert_eq!(r.start.format_utc(), "2026-11-02T18:30:00Z");
        assert_eq!(r.buckets()[0].label, "2026-11-03T00:00+05:30");
        assert_eq!(r.buckets().len(), 24);
        assert_eq!(
            at("2026-11-02T18:30:00Z").format_local(&r.tz),
            "2026-11-03T00:00:00+05:30"
        );
    }

    #[test]
    fn utc_formats_as_plus_zero() {
        assert_eq!(
            at("2026-11-03T09:15:27.9Z").format_local(&tz("UTC")),
            "2026-11-03T09:15:27+00:00"
        );
    }

    #[test]
    fn bucket_kind_follows_range_length() {
        let z = tz("UTC");
        let d = |s| parse_date(s).unwrap();
        assert_eq!(
            Range::custom(d("2026-01-01"), d("2026-01-02"), &z)
                .unwrap()
                .bucket,
            BucketKind::Hour
        );
        assert_eq!(
            Range::custom(d("2026-01-01"), d("2026-01-03"), &z)
                .unwrap()
                .bucket,
            BucketKind::Day
        );
        assert_eq!(
            Range::custom(d("2026-01-01"), d("2026-04-02"), &z)
                .unwrap()
                .bucket,
            BucketKind::Day
        );
        assert_eq!(
            Range::custom(d("2026-01-01"), d("2026-04-03"), &z)
                .unwrap()
                .bucket,
            BucketKind::Week
        );
        assert!(Range::custom(d("2026-01-02"), d("2026-01-01"), &z).is_err());
    }

    #[test]
    fn week_buckets_are_iso_weeks_clipped_to_the_range() {
        let z = tz("Europe/Madrid");
        let r = Range::custom(
            parse_date("2025-08-01").unwrap(),
            parse_date("2025-11-08").unwrap(),
            &z,
        )
        .unwrap();
        let b = r.buckets();
        assert_eq!(b.first().unwrap().label, "2025-W31");
        assert_eq!(b.last().unwrap().label, "2025-W45");
        assert_eq!(b.len(), 15);
        assert_eq!(b[0].start, r.start);
        assert_eq!(b[14].end, r.end);
    }

    #[test]
    fn presets_in_the_workspace_zone() {
        let z = tz("Europe/Madrid");
        let now = at("2025-10-27T11:55:05+01:00");
        let r = Range::preset(Preset::Last30Days, now, &z).unwrap();
        assert_eq!(
            (r.from.to_string(), r.to.to_string()),
            ("2025-09-28".into(), "2025-10-27".into())
        );
        let r = Range::preset(Preset::LastMonth, now, &z).unwrap();
        assert_eq!(
            (r.from.to_string(), r.to.to_string()),
            ("2025-09-01".into(), "2025-09-30".into())
        );
        let r = Range::preset(Preset::ThisMonth, now, &z).unwrap();
        assert_eq!(r.from.to_string(), "2025-10-01");
        // 23:30 UTC is already tomorrow in Madrid.
        let r = Range::preset(Preset::Today, at("2025-10-27T23:30:00Z"), &z).unwrap();
        assert_eq!(r.from.to_string(), "2025-10-28");
        let r = Range::preset(Preset::Yesterday, now, &tz("America/New_York")).unwrap();
        assert_eq!(r.from.to_string(), "2025-10-26");
    }

    #[test]
    fn heatmap_cells_use_local_weekday_and_hour() {
        let z = tz("Europe/Madrid");
        // Sunday 2025-10-26, both 02:xx hours of the fall-back land in column 2.
        assert_eq!(heatmap_cell(at("2025-10-26T02:30:00+02:00"), &z), (6, 2));
        assert_eq!(heatmap_cell(at("2025-10-26T02:30:00+01:00"), &z), (6, 2));
        assert_eq!(
            heatmap_cell(at("2026-11-02T18:29:59Z"), &tz("Asia/Kolkata")),
            (0, 23)
        );
    }

    #[test]
    fn offset_segments_cover_the_transition() {
        let z = tz("Europe/Madrid");
        let d = parse_date("2025-10-26").unwrap();
        let r = Range::custom(d, d, &z).unwrap();
        let segs = r.offset_segments();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].1, 7200);
        assert_eq!(segs[1], (at("2025-10-26T01:00:00Z"), 3600));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_its_first_instant() {
        // Chile springs forward at 00:00 on 2026-09-06: the day starts at 01:00 (-03:00).
        let z = tz("America/Santiago");
        let d = parse_date("2026-09-06").unwrap();
        assert_eq!(
            start_of_day(d, &z).format_local(&z),
            "2026-09-06T01:00:00-03:00"
        );
        let r = Range::custom(d, d, &z).unwrap();
        assert_eq!(r.buckets().len(), 23);
        assert_eq!(r.buckets()[0].label, "2026-09-06T01:00-03:00");
    }

    #[test]
    fn a_range_at_the_end_of_the_calendar_is_refused_not_a_panic() {
        let d = parse_date("9999-12-31").unwrap();
        assert!(matches!(
            Range::custom(d, d, &tz("UTC")),
            Err(RangeError::OutOfRange(_))
        ));
        let now = at("9999-12-30T20:00:00Z");
        assert!(matches!(
            Range::preset(Preset::Today, now, &tz("UTC")),
            Err(RangeError::OutOfRange(_))
        ));
        let d = parse_date("0000-01-01").unwrap();
        assert!(
            Range::custom(d, d, &tz("UTC")).is_ok(),
            "year 0 is inside the calendar"
        );
    }

    #[test]
    fn durations_format_as_clock() {
        assert_eq!(format_duration(0), "00:00");
        assert_eq!(format_duration(36), "00:36");
        assert_eq!(format_duration(2607), "43:27");
        assert_eq!(format_duration(4672), "01:17:52");
        assert_eq!(format_duration(400 * 3600 + 61), "400:01:01");
    }

    /// The hand-written digits agree with `format!` everywhere, negatives included.
    #[test]
    fn hand_written_digits_agree_with_format() {
        let reference = |secs: i64| {
            let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
            if h > 0 {
                format!("{h:02}:{m:02}:{s:02}")
            } else {
                format!("{m:02}:{s:02}")
            }
        };
        for secs in (-4000..200_000).chain([i64::MAX, i64::MIN + 1, 99 * 3600, 100 * 3600]) {
            assert_eq!(format_duration(secs), reference(secs), "{secs}");
        }
        for (n, w) in [
            (0, 2),
            (7, 2),
            (42, 2),
            (2026, 4),
            (99, 4),
            (123_456, 2),
            (u32::MAX, 1),
        ] {
            let mut out = String::new();
            push_digits(&mut out, n, w);
            assert_eq!(out, format!("{n:0w$}"));
        }
        let madrid = tz("Europe/Madrid");
        for us in (0..2_000).map(|i| 1_700_000_000_000_000 + i * 7_777_777_777_i64) {
            let ts = Timestamp::from_second(us.div_euclid(MICROS)).unwrap();
            let offset = madrid.to_offset(ts);
            let dt = offset.to_datetime(ts);
            let o = offset.seconds();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                if o < 0 { '-' } else { '+' },
                o.unsigned_abs() / 3600,
                o.unsigned_abs() % 3600 / 60
            );
            assert_eq!(Instant(us).format_local(&madrid), want);
        }
    }
}
