//! From a broken-down time to an instant: which zone a zone-less time is read
//! in, and which year a year-less time (BSD syslog headers, `%b %d`) belongs
//! to.
//!
//! Zone precedence: an offset or zone written in the time itself, then the
//! parser's `Time_Offset` (a fixed offset), then its `Time_Zone`, then the
//! process zone passed in by the caller. Fluent Bit instead reads zone-less
//! times as UTC and takes the UTC year; gatelog reads them in the zone the
//! sender most likely wrote them in and picks the year closest to now, so a
//! `Dec 31 23:59:59` line read on January 1st lands in the old year.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use super::strptime::{TimeFormat, Tm};
use crate::record::Timestamp;
use crate::zone::Zone;

/// How a parser turns its time field into the event time, built from
/// `Time_Key`, `Time_Format`, `Time_Keep`, `Time_Strict`, `Time_Offset`
/// and `Time_Zone`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeRule {
    pub key: String,
    pub format: Option<TimeFormat>,
    pub keep: bool,
    pub strict: bool,
    /// `Time_Offset` or `Time_Zone`: replaces the caller's default zone.
    pub zone: Option<Zone>,
}

impl TimeRule {
    pub fn zone<'a>(&'a self, default: &'a Zone) -> &'a Zone {
        self.zone.as_ref().unwrap_or(default)
    }

    /// Parse `value` with the rule's format; `None` without a format or on failure.
    pub fn parse(&self, value: &str, now: Timestamp, default: &Zone) -> Option<Timestamp> {
        let format = self.format.as_ref()?;
        let zone = self.zone(default);
        // A pure function of these inputs, and a source writes the same
        // time string for every record of a second (nginx's header, its
        // `$time_iso8601`): remember the last answer (the match alone is
        // ~480 instructions on a syslog header).
        LAST_PARSE.with_borrow_mut(|m| {
            if m.filled
                && m.value == value
                && m.now == now.secs
                && m.zone == *zone
                && m.strict == self.strict
                && m.format == format.source()
            {
                return m.answer;
            }
            let answer = format.parse(value.as_bytes(), self.strict).and_then(|tm| resolve(&tm, now, zone));
            if value.len() <= MEMO_MAX {
                m.filled = true;
                m.format.clear();
                m.format.push_str(format.source());
                m.value.clear();
                m.value.push_str(value);
                (m.strict, m.now, m.zone, m.answer) = (self.strict, now.secs, *zone, answer);
            }
            answer
        })
    }
}

/// Time strings longer than this are not remembered.
const MEMO_MAX: usize = 64;

/// [`TimeRule::parse`]'s last answer and everything it depended on (the
/// format by its source text, from which it is compiled).
struct ParseMemo {
    filled: bool,
    format: String,
    strict: bool,
    value: String,
    now: i64,
    zone: Zone,
    answer: Option<Timestamp>,
}

thread_local!(static LAST_PARSE: std::cell::RefCell<ParseMemo> = const {
    std::cell::RefCell::new(ParseMemo {
        filled: false,
        format: String::new(),
        strict: false,
        value: String::new(),
        now: 0,
        zone: Zone::Utc,
        answer: None,
    })
});

/// The instant `tm` denotes. `zone` is used only when `tm` carries no zone.
pub(crate) fn resolve(tm: &Tm, now: Timestamp, zone: &Zone) -> Option<Timestamp> {
    // A pure function of its inputs, and consecutive records carry the same
    // header second, received in the same second: remember the last answer
    // (a zone lookup and year inference cost ~1,400 instructions a record).
    type Last = Option<(Tm, i64, Zone, Option<Timestamp>)>;
    thread_local!(static LAST: std::cell::Cell<Last> = const { std::cell::Cell::new(None) });
    if let Some((t, n, z, answer)) = LAST.get() {
        if t == *tm && n == now.secs && z == *zone {
            return answer;
        }
    }
    let answer = resolve_uncached(tm, now, zone);
    LAST.set(Some((*tm, now.secs, *zone, answer)));
    answer
}

fn resolve_uncached(tm: &Tm, now: Timestamp, zone: &Zone) -> Option<Timestamp> {
    if let Some(secs) = tm.epoch {
        return Some(Timestamp::new(secs, tm.nanos));
    }
    let fixed;
    let zone = match (tm.offset, &tm.zone) {
        (Some(off), _) => {
            fixed = Zone::Fixed(chrono::FixedOffset::east_opt(off)?);
            &fixed
        }
        (None, Some(z)) => z,
        (None, None) => zone,
    };
    // A leap second (:60) is read as the following second.
    let leap = u32::from(tm.second == 60);
    let time = NaiveTime::from_hms_opt(tm.hour, tm.minute, tm.second - leap)?;
    let secs = match tm.year {
        Some(year) => zone.to_epoch(NaiveDateTime::new(date_in_year(tm, year)?, time)),
        None if tm.month.is_none() && tm.day.is_none() && tm.yday.is_none() => {
            // Time of day only: today in that zone.
            zone.to_epoch(NaiveDateTime::new(zone.wall_clock(now.secs).date(), time))
        }
        None => infer_year(tm, time, now, zone)?,
    };
    Some(Timestamp::new(secs + i64::from(leap), tm.nanos))
}

fn date_in_year(tm: &Tm, year: i32) -> Option<NaiveDate> {
    match (tm.month, tm.day, tm.yday) {
        (None, None, Some(yday)) => NaiveDate::from_yo_opt(year, yday),
        (m, d, _) => NaiveDate::from_ymd_opt(year, m.unwrap_or(1), d.unwrap_or(1)),
    }
}

/// Of last year, this year and next year (in `zone`), the candidate whose
/// instant is closest to `now`. A date that does not exist in a candidate
/// year (Feb 29) skips that candidate.
fn infer_year(tm: &Tm, time: NaiveTime, now: Timestamp, zone: &Zone) -> Option<i64> {
    let year = zone.wall_clock(now.secs).year();
    let at = |y: i32| -> Option<i64> { Some(zone.to_epoch(NaiveDateTime::new(date_in_year(tm, y)?, time))) };
    // Fast path: within ~5 months of now the current year is the closest, as
    // the other candidates are a year away.
    if let Some(secs) = at(year) {
        if (secs - now.secs).abs() <= 150 * 86400 {
            return Some(secs);
        }
    }
    [year - 1, year, year + 1].into_iter().filter_map(at).min_by_key(|secs| (secs - now.secs).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(fmt: &str, zone: Option<&str>) -> TimeRule {
        TimeRule {
            key: "time".into(),
            format: Some(TimeFormat::compile(fmt).unwrap()),
            keep: false,
            strict: true,
            zone: zone.map(|z| Zone::parse(z).unwrap()),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::new(secs, 0)
    }

    #[test]
    fn new_year_in_tokyo_belongs_to_the_old_year() {
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        let r = rule("%b %d %H:%M:%S", None);
        // Read at 2025-01-01T00:00:30+09:00 (2024-12-31T15:00:30Z).
        let now = at(1735657230);
        // 2024-12-31T23:59:59+09:00
        assert_eq!(r.parse("Dec 31 23:59:59", now, &tokyo), Some(at(1735657199)));
        // 2025-01-01T00:00:10+09:00 (the UTC year is still 2024: FB would say 2024)
        assert_eq!(r.parse("Jan  1 00:00:10", now, &tokyo), Some(at(1735657210)));
    }

    #[test]
    fn clock_skew_at_year_end_goes_to_next_year_in_utc() {
        // Read at 2024-12-31T23:59:59Z, the sender is a little ahead.
        let now = at(1735689599);
        let r = rule("%b %d %H:%M:%S", None);
        assert_eq!(r.parse("Jan  1 00:00:01", now, &Zone::Utc), Some(at(1735689601)));
        assert_eq!(r.parse("Dec 31 23:59:58", now, &Zone::Utc), Some(at(1735689598)));
    }

    #[test]
    fn the_remembered_answer_is_only_for_the_same_inputs() {
        // Each call against the answer without the memo (another thread's
        // memo is empty, and each call there starts from an empty one).
        let fresh = |r: &TimeRule, v: &str, now: Timestamp, z: Zone| {
            let (r, v) = (r.clone(), v.to_owned());
            std::thread::spawn(move || r.parse(&v, now, &z)).join().unwrap()
        };
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        let header = rule("%b %d %H:%M:%S", None);
        let dmy = rule("%d %b %H:%M:%S", None);
        let mut lax = rule("%b %d %H:%M:%S", None);
        lax.strict = false;
        let calls: [(&TimeRule, &str, i64, Zone); 9] = [
            (&header, "Dec 31 23:59:59", 1735657230, tokyo),
            (&header, "Dec 31 23:59:59", 1735657230, tokyo),
            (&header, "Dec 31 23:59:59", 1735657230, Zone::Utc),
            (&header, "Dec 31 23:59:59", 1767225600, Zone::Utc),
            (&header, "Dec 31 23:59:58", 1767225600, Zone::Utc),
            (&dmy, "Dec 31 23:59:58", 1767225600, Zone::Utc),
            (&header, "Dec 31 23-59-58", 1767225600, Zone::Utc),
            (&lax, "Dec 31 23-59-58", 1767225600, Zone::Utc),
            (&header, "Dec 31 23-59-58", 1767225600, Zone::Utc),
        ];
        for (r, v, now, z) in calls {
            assert_eq!(r.parse(v, at(now), &z), fresh(r, v, at(now), z), "{v:?} at {now} in {z:?}");
        }
    }

    #[test]
    fn feb_29_skips_non_leap_years() {
        // Read at 2025-03-01T00:00:00Z: 2025 has no Feb 29, 2024 does.
        let r = rule("%b %d %H:%M:%S", None);
        assert_eq!(r.parse("Feb 29 12:00:00", at(1740787200), &Zone::Utc), Some(at(1709208000)));
    }

    #[test]
    fn offset_rule_replaces_default_zone_but_not_explicit_offset() {
        let r = rule("%Y-%m-%d %H:%M:%S", Some("+0900"));
        assert_eq!(r.parse("2024-11-23 16:30:00", at(0), &Zone::Utc), Some(at(1732347000)));
        let r = rule("%Y-%m-%d %H:%M:%S %z", Some("-05:00"));
        assert_eq!(r.parse("2024-11-23 07:30:00 +0000", at(0), &Zone::Utc), Some(at(1732347000)));
    }

    #[test]
    fn epoch_fraction_time_only_and_leap_second() {
        let r = rule("%s.%L", None);
        assert_eq!(r.parse("1732347000.5", at(0), &Zone::Utc), Some(Timestamp::new(1732347000, 500_000_000)));
        let r = rule("%H:%M:%S", None);
        // Read at 2024-11-23T16:30:00Z
        assert_eq!(r.parse("01:00:00", at(1732379400), &Zone::Utc), Some(at(1732323600)));
        let r = rule("%Y-%m-%dT%H:%M:%S", None);
        assert_eq!(r.parse("2016-12-31T23:59:60", at(0), &Zone::Utc), Some(at(1483228800)));
        assert_eq!(r.parse("2016-02-30T00:00:00", at(0), &Zone::Utc), None);
    }
}
