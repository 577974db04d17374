//! Time zones for zone-less times (syslog headers, `Time_Format` without
//! `%z`) and for dated paths. The default is the process's `TZ` (or
//! `/etc/localtime` when `TZ` is unset), unlike Fluent Bit, which reads such
//! times as UTC; the two agree when `TZ` is unset on a UTC machine.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Utc,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
    /// The system zone from `/etc/localtime` (TZ unset).
    Local,
}

impl Zone {
    /// The zone of this process: `TZ` if set and understood, else the system zone.
    pub fn from_env() -> Zone {
        match std::env::var("TZ") {
            Ok(tz) if !tz.trim().is_empty() => Zone::parse(&tz).unwrap_or(Zone::Local),
            _ => Zone::Local,
        }
    }

    /// `UTC`, `Asia/Tokyo`, `:Asia/Tokyo`, `+09:00`, `-0500`, `Z`.
    pub fn parse(name: &str) -> Option<Zone> {
        let name = name.trim().trim_start_matches(':');
        if name.eq_ignore_ascii_case("utc") || name == "Z" || name.eq_ignore_ascii_case("gmt") {
            return Some(Zone::Utc);
        }
        if let Some(off) = parse_offset(name) {
            return FixedOffset::east_opt(off).map(Zone::Fixed);
        }
        name.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    pub fn name(&self) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Fixed(o) => o.to_string(),
            Zone::Named(tz) => tz.name().into(),
            Zone::Local => "local (/etc/localtime)".into(),
        }
    }

    /// UTC offset in seconds at the instant `secs`.
    pub fn offset_at(&self, secs: i64) -> i32 {
        let Some(utc) = DateTime::<Utc>::from_timestamp(secs, 0) else {
            return 0;
        };
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => o.local_minus_utc(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc(),
            Zone::Local => chrono::Local.offset_from_utc_datetime(&utc.naive_utc()).local_minus_utc(),
        }
    }

    /// Wall-clock time in this zone at `secs`.
    pub fn wall_clock(&self, secs: i64) -> NaiveDateTime {
        let utc = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default().naive_utc();
        utc + chrono::Duration::seconds(self.offset_at(secs) as i64)
    }

    /// The instant a wall-clock time in this zone denotes. In a DST gap the
    /// time is read with the offset before the gap; when ambiguous, the
    /// earlier instant wins.
    pub fn to_epoch(&self, wall: NaiveDateTime) -> i64 {
        fn pick<T: TimeZone>(r: LocalResult<DateTime<T>>, wall: NaiveDateTime, fallback_off: i32) -> i64 {
            match r {
                LocalResult::Single(t) => t.timestamp(),
                LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
                LocalResult::None => wall.and_utc().timestamp() - fallback_off as i64,
            }
        }
        let guess = wall.and_utc().timestamp();
        let before_gap = self.offset_at(guess - 86400);
        match self {
            Zone::Utc => guess,
            Zone::Fixed(o) => guess - o.local_minus_utc() as i64,
            Zone::Named(tz) => pick(tz.from_local_datetime(&wall), wall, before_gap),
            Zone::Local => pick(chrono::Local.from_local_datetime(&wall), wall, before_gap),
        }
    }
}

/// `+09:00`, `+0900`, `-05`, `Z` → seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn tokyo_wall_clock_round_trips() {
        let z = Zone::parse("Asia/Tokyo").unwrap();
        // 2024-11-23T16:30:00+09:00
        let wall = NaiveDate::from_ymd_opt(2024, 11, 23).unwrap().and_hms_opt(16, 30, 0).unwrap();
        assert_eq!(z.to_epoch(wall), 1732347000);
        assert_eq!(z.wall_clock(1732347000), wall);
        assert_eq!(z.offset_at(1732347000), 9 * 3600);
    }

    #[test]
    fn offsets_and_names() {
        assert_eq!(parse_offset("+09:00"), Some(32400));
        assert_eq!(parse_offset("-0530"), Some(-19800));
        assert_eq!(parse_offset("0900"), None);
        assert_eq!(Zone::parse(":UTC"), Some(Zone::Utc));
        assert!(Zone::parse("Mars/Olympus").is_none());
    }

    #[test]
    fn dst_gap_and_overlap_do_not_panic() {
        let z = Zone::parse("Europe/Berlin").unwrap();
        let gap = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(z.to_epoch(gap), 1711848600); // read as +01:00
        let overlap = NaiveDate::from_ymd_opt(2024, 10, 27).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(z.to_epoch(overlap), 1729989000); // the earlier, +02:00
    }
}
