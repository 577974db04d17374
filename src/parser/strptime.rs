//! `Time_Format`: the strptime subset Fluent Bit users write, compiled once
//! when the config loads into a list of items, then matched byte by byte
//! against a time string. Matching never panics and never allocates; it only
//! fills a broken-down [`Tm`] that `time.rs` turns into an instant.
//!
//! Supported: `%Y %y %m %d %e %H %k %M %S %L %b %B %h %a %A %j %p %I %l %z %Z
//! %s %T %D %F %R %r %n %t %%`, literal bytes, and whitespace (a format blank
//! matches zero or more input blanks, as in C's strptime, which is how
//! `%b %d` reads nginx's space-padded `Nov  3`). `Time_Strict` semantics
//! follow Fluent Bit: see [`TimeFormat::parse`].

/// One compiled piece of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Lit(u8),
    Blank,
    Year,
    Year2,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    Fraction,
    MonthName,
    WeekdayName,
    YearDay,
    AmPm,
    Offset,
    ZoneName,
    Epoch,
}

/// A compiled `Time_Format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeFormat {
    items: Vec<Item>,
    source: String,
}

/// The broken-down result of matching a [`TimeFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Tm {
    pub year: Option<i32>,
    pub month: Option<u32>,
    pub day: Option<u32>,
    pub yday: Option<u32>,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// 12-hour clock read with `%I`; combined with `pm` at the end.
    pub hour12: Option<u32>,
    pub pm: Option<bool>,
    /// Seconds east of UTC from `%z` (or a fixed `%Z`).
    pub offset: Option<i32>,
    /// A zone named by `%Z` (`Asia/Tokyo`).
    pub zone: Option<crate::zone::Zone>,
    /// `%s`.
    pub epoch: Option<i64>,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
/// The names' first three letters, folded as by [`fold3`].
const MONTH_KEYS: [u32; 12] = keys(&MONTHS);
const WEEKDAY_KEYS: [u32; 7] = keys(&WEEKDAYS);

const fn keys<const N: usize>(names: &[&str; N]) -> [u32; N] {
    let mut k = [0; N];
    let mut i = 0;
    while i < N {
        let b = names[i].as_bytes();
        k[i] = u32::from_le_bytes([b[0] | 0x20, b[1] | 0x20, b[2] | 0x20, 0]);
        i += 1;
    }
    k
}

/// The first three bytes of `b` with bit 0x20 set: two such keys of which
/// one is three ASCII letters are equal exactly when the bytes are equal
/// ignoring ASCII case (`x | 0x20` is a lower-case letter only for that
/// letter and its upper case).
#[inline]
fn fold3(b: &[u8]) -> Option<u32> {
    let [x, y, z] = *b.first_chunk::<3>()?;
    Some(u32::from_le_bytes([x | 0x20, y | 0x20, z | 0x20, 0]))
}

/// The month (0-11) whose English abbreviation is the first three bytes of
/// `b`, in any case.
#[inline]
pub(super) fn month_of_abbr(b: &[u8]) -> Option<usize> {
    abbr_in(&MONTH_KEYS, b)
}

/// The position in `keys` of the first three bytes of `b`, folded.
#[inline]
fn abbr_in(keys: &[u32], b: &[u8]) -> Option<usize> {
    let want = fold3(b)?;
    keys.iter().position(|k| *k == want)
}

impl TimeFormat {
    /// Compile a format; the error names the offending conversion.
    pub fn compile(fmt: &str) -> Result<TimeFormat, String> {
        let mut items = Vec::new();
        push_items(fmt.as_bytes(), &mut items, 0)?;
        Ok(TimeFormat { items, source: fmt.to_owned() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Match `input`, as Fluent Bit does: the format must match a prefix of
    /// the input and trailing text is ignored. Without `strict`, a mismatch
    /// keeps what was read up to it (Fluent Bit's "non-exact match").
    ///
    /// One addition: when the format reads no zone and the rest of the input
    /// starts with an ISO 8601 designator (`Z`, `+09:00`, `-0500`), it is
    /// honoured. Fluent Bit ignores it (the stock `docker` and
    /// `syslog-rfc5424` formats end in `%L` and their inputs in `Z`), which
    /// is harmless only because it reads zone-less times as UTC; gatelog
    /// reads them in `TZ`, so dropping the designator would be wrong.
    pub fn parse(&self, input: &[u8], strict: bool) -> Option<Tm> {
        let mut tm = Tm::default();
        let mut pos = 0usize;
        let mut complete = true;
        for item in &self.items {
            match match_item(*item, input, pos, &mut tm) {
                Some(p) => pos = p,
                None if strict => return None,
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete && tm.offset.is_none() && tm.zone.is_none() && tm.epoch.is_none() {
            if let Some((off, _)) = offset(input, pos) {
                tm.offset = Some(off);
            }
        }
        if let Some(h) = tm.hour12 {
            let h = h % 12;
            tm.hour = if tm.pm == Some(true) { h + 12 } else { h };
        } else if tm.pm == Some(true) && tm.hour < 12 {
            tm.hour += 12;
        }
        Some(tm)
    }
}

fn push_items(fmt: &[u8], items: &mut Vec<Item>, depth: u8) -> Result<(), String> {
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            if c.is_ascii_whitespace() {
                if items.last() != Some(&Item::Blank) {
                    items.push(Item::Blank);
                }
            } else {
                items.push(Item::Lit(c));
            }
            i += 1;
            continue;
        }
        let Some(&conv) = fmt.get(i + 1) else {
            return Err("format ends with a lone '%'".into());
        };
        i += 2;
        let expand: Option<&[u8]> = match conv {
            b'T' => Some(b"%H:%M:%S"),
            b'D' => Some(b"%m/%d/%y"),
            b'F' => Some(b"%Y-%m-%d"),
            b'R' => Some(b"%H:%M"),
            b'r' => Some(b"%I:%M:%S %p"),
            _ => None,
        };
        if let Some(e) = expand {
            if depth > 0 {
                return Err("nested composite conversion".into());
            }
            push_items(e, items, depth + 1)?;
            continue;
        }
        let item = match conv {
            b'Y' => Item::Year,
            b'y' => Item::Year2,
            b'm' => Item::Month,
            b'd' | b'e' => Item::Day,
            b'H' | b'k' => Item::Hour24,
            b'I' | b'l' => Item::Hour12,
            b'M' => Item::Minute,
            b'S' => Item::Second,
            b'L' => Item::Fraction,
            b'b' | b'B' | b'h' => Item::MonthName,
            b'a' | b'A' => Item::WeekdayName,
            b'j' => Item::YearDay,
            b'p' => Item::AmPm,
            b'z' => Item::Offset,
            b'Z' => Item::ZoneName,
            b's' => Item::Epoch,
            b'n' | b't' => Item::Blank,
            b'%' => Item::Lit(b'%'),
            other => return Err(format!("unsupported conversion '%{}'", char::from(other).escape_default())),
        };
        if item == Item::Blank && items.last() == Some(&Item::Blank) {
            continue;
        }
        items.push(item);
    }
    Ok(())
}

/// Read 1..=max ASCII digits (after optional leading blanks when `blanks`).
fn digits(input: &[u8], mut pos: usize, max: usize, blanks: bool) -> Option<(u64, usize)> {
    if blanks {
        while input.get(pos) == Some(&b' ') {
            pos += 1;
        }
    }
    let start = pos;
    let mut v: u64 = 0;
    while pos - start < max {
        match input.get(pos) {
            Some(b) if b.is_ascii_digit() => {
                v = v * 10 + u64::from(b - b'0');
                pos += 1;
            }
            _ => break,
        }
    }
    (pos > start).then_some((v, pos))
}

fn ranged(input: &[u8], pos: usize, max: usize, lo: u64, hi: u64) -> Option<(u32, usize)> {
    let (v, p) = digits(input, pos, max, true)?;
    (lo..=hi).contains(&v).then_some((v as u32, p))
}

/// Longest case-insensitive match of a full name or its 3-letter abbreviation.
/// The abbreviations of month and weekday names are distinct and each full
/// name starts with its own, so the abbreviation finds the only candidate.
fn name(input: &[u8], pos: usize, names: &[&str], keys: &[u32]) -> Option<(usize, usize)> {
    let rest = input.get(pos..)?;
    let idx = abbr_in(keys, rest)?;
    let full = names.get(idx)?.as_bytes();
    match rest.get(..full.len()) {
        Some(r) if r.eq_ignore_ascii_case(full) => Some((idx, pos + full.len())),
        _ => Some((idx, pos + 3)),
    }
}

fn match_item(item: Item, input: &[u8], pos: usize, tm: &mut Tm) -> Option<usize> {
    match item {
        Item::Lit(c) => (input.get(pos) == Some(&c)).then_some(pos + 1),
        Item::Blank => {
            let mut p = pos;
            while input.get(p).is_some_and(|b| b.is_ascii_whitespace()) {
                p += 1;
            }
            Some(p)
        }
        Item::Year => {
            let (v, p) = digits(input, pos, 4, true)?;
            tm.year = Some(v as i32);
            Some(p)
        }
        Item::Year2 => {
            let (v, p) = digits(input, pos, 2, true)?;
            // POSIX: 69-99 are 1969-1999, 00-68 are 2000-2068.
            tm.year = Some(if v >= 69 { 1900 + v as i32 } else { 2000 + v as i32 });
            Some(p)
        }
        Item::Month => {
            let (v, p) = ranged(input, pos, 2, 1, 12)?;
            tm.month = Some(v);
            Some(p)
        }
        Item::Day => {
            let (v, p) = ranged(input, pos, 2, 1, 31)?;
            tm.day = Some(v);
            Some(p)
        }
        Item::Hour24 => {
            let (v, p) = ranged(input, pos, 2, 0, 23)?;
            tm.hour = v;
            Some(p)
        }
        Item::Hour12 => {
            let (v, p) = ranged(input, pos, 2, 1, 12)?;
            tm.hour12 = Some(v);
            Some(p)
        }
        Item::Minute => {
            let (v, p) = ranged(input, pos, 2, 0, 59)?;
            tm.minute = v;
            Some(p)
        }
        Item::Second => {
            let (v, p) = ranged(input, pos, 2, 0, 60)?;
            tm.second = v;
            Some(p)
        }
        Item::Fraction => {
            // Fluent Bit reads `%L` with strtod, so a leading separator is tolerated.
            let mut p = pos;
            if matches!(input.get(p), Some(b'.') | Some(b',')) {
                p += 1;
            }
            let start = p;
            let mut nanos: u64 = 0;
            while let Some(b) = input.get(p).filter(|b| b.is_ascii_digit()) {
                if p - start < 9 {
                    nanos = nanos * 10 + u64::from(b - b'0');
                }
                p += 1;
            }
            if p == start {
                return None;
            }
            for _ in (p - start).min(9)..9 {
                nanos *= 10;
            }
            tm.nanos = nanos as u32;
            Some(p)
        }
        Item::MonthName => {
            let (idx, p) = name(input, pos, &MONTHS, &MONTH_KEYS)?;
            tm.month = Some(idx as u32 + 1);
            Some(p)
        }
        Item::WeekdayName => name(input, pos, &WEEKDAYS, &WEEKDAY_KEYS).map(|(_, p)| p),
        Item::YearDay => {
            let (v, p) = ranged(input, pos, 3, 1, 366)?;
            tm.yday = Some(v);
            Some(p)
        }
        Item::AmPm => {
            let rest = input.get(pos..pos + 2)?;
            if rest.eq_ignore_ascii_case(b"am") {
                tm.pm = Some(false);
            } else if rest.eq_ignore_ascii_case(b"pm") {
                tm.pm = Some(true);
            } else {
                return None;
            }
            Some(pos + 2)
        }
        Item::Offset => {
            let (off, p) = offset(input, pos)?;
            tm.offset = Some(off);
            Some(p)
        }
        Item::ZoneName => {
            let start = pos;
            let mut p = pos;
            while input
                .get(p)
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-' | b':'))
            {
                p += 1;
            }
            let text = std::str::from_utf8(input.get(start..p)?).ok()?;
            match crate::zone::Zone::parse(text)? {
                crate::zone::Zone::Utc => tm.offset = Some(0),
                crate::zone::Zone::Fixed(o) => tm.offset = Some(o.local_minus_utc()),
                z => tm.zone = Some(z),
            }
            Some(p)
        }
        Item::Epoch => {
            let (neg, p) = match input.get(pos) {
                Some(b'-') => (true, pos + 1),
                _ => (false, pos),
            };
            let (v, p) = digits(input, p, 18, false)?;
            let v = v as i64;
            tm.epoch = Some(if neg { -v } else { v });
            Some(p)
        }
    }
}

/// `Z`, `+09`, `+0900`, `+09:00` at `pos`.
fn offset(input: &[u8], pos: usize) -> Option<(i32, usize)> {
    let sign = match input.get(pos)? {
        b'Z' | b'z' => return Some((0, pos + 1)),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |p: usize| -> Option<i32> {
        let a = input.get(p).filter(|b| b.is_ascii_digit())?;
        let b = input.get(p + 1).filter(|b| b.is_ascii_digit())?;
        Some(i32::from(a - b'0') * 10 + i32::from(b - b'0'))
    };
    let h = two(pos + 1)?;
    let mut p = pos + 3;
    let mut m = 0;
    if input.get(p) == Some(&b':') {
        m = two(p + 1)?;
        p += 3;
    } else if let Some(v) = two(p) {
        m = v;
        p += 2;
    }
    (h < 24 && m < 60).then_some((sign * (h * 3600 + m * 60), p))
}

#[cfg(test)]
mod tests {
    /// The two-pass definition [`super::name`] replaced.
    fn name_reference(input: &[u8], pos: usize, names: &[&str]) -> Option<(usize, usize)> {
        let rest = input.get(pos..)?;
        for (idx, n) in names.iter().enumerate() {
            let n = n.as_bytes();
            if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n) {
                return Some((idx, pos + n.len()));
            }
        }
        for (idx, n) in names.iter().enumerate() {
            let n = &n.as_bytes()[..3];
            if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(n) {
                return Some((idx, pos + 3));
            }
        }
        None
    }

    #[test]
    fn month_abbreviations_match_ignoring_ascii_case_only() {
        let abbrs = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
        // Each letter of the abbreviations, its upper case, and the bytes
        // that differ from them by 0x20 or 0x80.
        let mut bytes: Vec<u8> = abbrs.iter().flat_map(|a| a.bytes()).collect();
        bytes.extend(bytes.clone().iter().flat_map(|b| [b ^ 0x20, b & !0x20 & !0x40, b ^ 0x80, b | 0x80]));
        bytes.sort_unstable();
        bytes.dedup();
        for &x in &bytes {
            for &y in &bytes {
                for &z in &bytes {
                    let b = [x, y, z];
                    let want = abbrs.iter().position(|a| a.as_bytes().eq_ignore_ascii_case(&b));
                    assert_eq!(super::month_of_abbr(&b), want, "{b:?}");
                }
            }
        }
        assert_eq!(super::month_of_abbr(b"No"), None);
    }

    #[test]
    fn names_match_as_the_two_pass_definition_did() {
        let mut inputs: Vec<String> = Vec::new();
        for n in super::MONTHS.iter().chain(super::WEEKDAYS.iter()) {
            for cut in 0..=n.len() {
                for s in [&n[..cut], &n.to_uppercase()[..cut], &n.to_lowercase()[..cut]] {
                    inputs.push(format!("{s} 23"));
                    inputs.push(s.to_owned());
                    inputs.push(format!("{s}x"));
                }
            }
        }
        inputs.extend(["", "Ma", "Mayday", "Junk", "Thursda", "é", "Nov\u{e9}"].map(String::from));
        // Bytes one bit 0x20 away from a letter that are not its other case.
        inputs.extend(["N\x0fv", "NO\x16", "\x0eov", "n@v", "Ju`", "Ju\x0e", "Ma\x12", "\x13un"].map(String::from));
        for input in &inputs {
            for (names, keys) in
                [(&super::MONTHS[..], &super::MONTH_KEYS[..]), (&super::WEEKDAYS[..], &super::WEEKDAY_KEYS[..])]
            {
                for pos in 0..2 {
                    assert_eq!(
                        super::name(input.as_bytes(), pos, names, keys),
                        name_reference(input.as_bytes(), pos, names),
                        "{input:?} at {pos}"
                    );
                }
            }
        }
    }

    use super::*;

    fn p(fmt: &str, s: &str) -> Option<Tm> {
        TimeFormat::compile(fmt).unwrap().parse(s.as_bytes(), true)
    }

    #[test]
    fn bsd_header_with_space_padded_day() {
        let tm = p("%b %d %H:%M:%S", "Nov  3 06:07:08").unwrap();
        assert_eq!((tm.month, tm.day, tm.hour, tm.minute, tm.second), (Some(11), Some(3), 6, 7, 8));
        assert_eq!(tm.year, None);
    }

    #[test]
    fn iso_with_fraction_and_offsets() {
        let tm = p("%Y-%m-%dT%H:%M:%S.%L%z", "2024-11-23T16:30:00.123+09:00").unwrap();
        assert_eq!(tm.year, Some(2024));
        assert_eq!(tm.nanos, 123_000_000);
        assert_eq!(tm.offset, Some(32400));
        assert_eq!(p("%Y-%m-%dT%H:%M:%S%z", "2024-11-23T16:30:00Z").unwrap().offset, Some(0));
        assert_eq!(p("%T %z", "01:02:03 -0530").unwrap().offset, Some(-19800));
        assert_eq!(p("%S.%L", "05.123456789123").unwrap().nanos, 123_456_789);
    }

    #[test]
    fn apache_time_and_names() {
        let tm = p("%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!((tm.year, tm.month, tm.day), (Some(2000), Some(10), Some(10)));
        assert_eq!(tm.offset, Some(-25200));
        let tm = p("%A, %B %e %Y %I:%M %p", "Saturday, November  2 2024 12:05 AM").unwrap();
        assert_eq!((tm.month, tm.day, tm.hour, tm.minute), (Some(11), Some(2), 0, 5));
        assert_eq!(p("%I %p", "01 pm").unwrap().hour, 13);
    }

    #[test]
    fn strictness_epoch_and_errors() {
        // Trailing text is ignored (Fluent Bit); a mismatch fails only when strict.
        assert_eq!(p("%H:%M", "10:20 trailing").unwrap().minute, 20);
        assert_eq!(p("%H:%M", "10-20"), None);
        let f = TimeFormat::compile("%H:%M").unwrap();
        let partial = f.parse(b"10-20", false).unwrap();
        assert_eq!((partial.hour, partial.minute), (10, 0));
        // A trailing ISO designator is honoured when the format has no zone.
        let f = TimeFormat::compile("%Y-%m-%dT%H:%M:%S.%L").unwrap();
        assert_eq!(f.parse(b"2024-11-23T07:30:00.5Z", true).unwrap().offset, Some(0));
        assert_eq!(f.parse(b"2024-11-23T16:30:00.5+09:00", true).unwrap().offset, Some(32400));
        assert_eq!(f.parse(b"2024-11-23T16:30:00.5", true).unwrap().offset, None);
        assert_eq!(p("%s", "1732347000").unwrap().epoch, Some(1732347000));
        assert_eq!(p("%m", "13"), None);
        assert_eq!(p("%Y", ""), None);
        assert_eq!(p("%Z", "Asia/Tokyo").unwrap().zone, crate::zone::Zone::parse("Asia/Tokyo"));
        assert_eq!(p("%Z", "UTC").unwrap().offset, Some(0));
        assert_eq!(TimeFormat::compile("%Q").unwrap_err(), "unsupported conversion '%Q'");
        assert!(TimeFormat::compile("abc%").is_err());
        assert_eq!(p("100%% %j", "100% 032").unwrap().yday, Some(32));
    }
}
