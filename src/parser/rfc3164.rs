//! `Format rfc3164` (a gatelog extension): the BSD syslog header nginx and
//! most daemons write, decoded natively with `nom` instead of a regex.
//!
//! Accepted: `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG` and, without a host
//! (nginx's `nohostname`), `<PRI>Mmm dd hh:mm:ss TAG: MSG`; day space- or
//! zero-padded; `TAG[PID]:`; an optional fraction after the seconds; an
//! RFC 3339 timestamp instead of the BSD one; a missing PRI; a missing TAG
//! (`HOST message…`). A token ending with `:` is the tag; otherwise the
//! first token is the host. One trailing `\n` or `\r\n` is removed.
//!
//! Fields, in order: `pri` (string), the header time string under
//! `Time_Key` (only with `Time_Keep`, on by default), `host`, `ident`, `pid`
//! (each only when present), `message` (always, possibly empty). The message
//! is the bytes after the header's single separator space, unaltered.

use nom::bytes::complete::take_while_m_n;
use nom::character::complete::{char, one_of};
use nom::combinator::opt;
use nom::sequence::{preceded, tuple};
use nom::IResult;

use super::strptime::Tm;
use super::ParseFailure;
use crate::record::reads::KeySet;
use crate::record::{Text, Value};

/// The header split into byte slices of the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header<'a> {
    pub pri: Option<&'a [u8]>,
    /// The timestamp exactly as written.
    pub time: &'a [u8],
    pub tm: Tm,
    pub host: Option<&'a [u8]>,
    pub ident: Option<&'a [u8]>,
    pub pid: Option<&'a [u8]>,
    pub message: &'a [u8],
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn num(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |v, d| v.saturating_mul(10).saturating_add(u32::from(d - b'0')))
}

fn two(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, d) = take_while_m_n(2, 2, is_digit)(i)?;
    Ok((i, num(d)))
}

/// `.123456` → nanoseconds (digits beyond nine are consumed and ignored).
fn fraction(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, d) = preceded(char('.'), take_while_m_n(1, 9, is_digit))(i)?;
    let (i, _) = nom::bytes::complete::take_while(is_digit)(i)?;
    let mut n = num(d);
    for _ in d.len()..9 {
        n *= 10;
    }
    Ok((i, n))
}

/// Two ASCII digits at the start of `i`.
#[inline]
fn two_at(i: &[u8]) -> Option<u32> {
    match i {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', ..] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

fn no_match(i: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Digit))
}

/// `hh:mm:ss` (two digits each) and an optional fraction. The fixed layout
/// is read by hand: nom's tuple of six parsers cost ~180 instructions a
/// header (the test holds it against that tuple).
fn hms(i: &[u8]) -> IResult<&[u8], (u32, u32, u32, u32)> {
    let (Some(h), Some(b':'), Some(m), Some(b':'), Some(s)) =
        (two_at(i), i.get(2), two_at(i.get(3..).unwrap_or_default()), i.get(5), two_at(i.get(6..).unwrap_or_default()))
    else {
        return Err(no_match(i));
    };
    let rest = i.get(8..).unwrap_or_default();
    // Most headers have no fraction: test its dot before calling nom.
    Ok(match rest.first().filter(|&&b| b == b'.').and_then(|_| fraction(rest).ok()) {
        Some((rest, nanos)) => (rest, (h, m, s, nanos)),
        None => (rest, (h, m, s, 0)),
    })
}

/// `Nov  3 16:30:00`, `Nov 03 16:30:00`, `Nov 3 16:30:00.123`: the month,
/// a space, the day (space-padded, or one or two digits), a space, [`hms`].
fn bsd(i: &[u8]) -> IResult<&[u8], Tm> {
    let Some(month) = super::strptime::month_of_abbr(i) else {
        return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Tag)));
    };
    let (day, rest) = match i.get(3..).unwrap_or_default() {
        [b' ', b' ', d @ b'0'..=b'9', b' ', rest @ ..] => (u32::from(d - b'0'), rest),
        [b' ', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', b' ', rest @ ..] => {
            (u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0'), rest)
        }
        [b' ', d @ b'0'..=b'9', b' ', rest @ ..] => (u32::from(d - b'0'), rest),
        _ => return Err(no_match(i)),
    };
    let (i, (hour, minute, second, nanos)) = hms(rest)?;
    let tm = Tm { month: Some(month as u32 + 1), day: Some(day), hour, minute, second, nanos, ..Tm::default() };
    Ok((i, tm))
}

/// `Z`, `+09:00`, `+0900`.
fn offset(i: &[u8]) -> IResult<&[u8], i32> {
    if let Ok((i, _)) = one_of::<_, _, nom::error::Error<&[u8]>>("Zz")(i) {
        return Ok((i, 0));
    }
    let (i, (sign, h, _, m)) = tuple((one_of("+-"), two, opt(char(':')), two))(i)?;
    let secs = (h * 3600 + m * 60) as i32;
    Ok((i, if sign == '-' { -secs } else { secs }))
}

/// `2024-11-23T16:30:00.123+09:00` (offset optional).
fn rfc3339(i: &[u8]) -> IResult<&[u8], Tm> {
    let (i, (y, _, mo, _, d, _)) =
        tuple((take_while_m_n(4, 4, is_digit), char('-'), two, char('-'), two, one_of("Tt ")))(i)?;
    let (i, (hour, minute, second, nanos)) = hms(i)?;
    let (i, off) = opt(offset)(i)?;
    let tm = Tm {
        year: Some(num(y) as i32),
        month: Some(mo),
        day: Some(d),
        hour,
        minute,
        second,
        nanos,
        offset: off,
        ..Tm::default()
    };
    Ok((i, tm))
}

fn valid(tm: &Tm) -> bool {
    tm.month.is_some_and(|m| (1..=12).contains(&m))
        && tm.day.is_some_and(|d| (1..=31).contains(&d))
        && tm.hour < 24
        && tm.minute < 60
        && tm.second <= 60
        && tm.offset.is_none_or(|o| o.abs() < 86400)
}

/// `<PRI>` then the timestamp; returns the rest after it.
/// PRI (if any), the timestamp as written, and its value.
type Prefix<'a> = (Option<&'a [u8]>, &'a [u8], Tm);

/// Read by hand: nom's `opt(delimited(…))` and `alt` cost ~400
/// instructions a header (the test holds this against them). A timestamp
/// starting with a digit can only be RFC 3339, one starting otherwise
/// only BSD (a month name), so one is tried, not both.
fn prefix(i: &[u8]) -> IResult<&[u8], Prefix<'_>> {
    let (i, pri) = match i {
        [b'<', rest @ ..] => {
            let n = rest.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
            match (rest.get(..n), rest.get(n), rest.get(n + 1..)) {
                (Some(digits), Some(b'>'), Some(after)) if n > 0 => (after, Some(digits)),
                _ => (i, None),
            }
        }
        _ => (i, None),
    };
    let (rest, tm) = if i.first().is_some_and(u8::is_ascii_digit) { rfc3339(i)? } else { bsd(i)? };
    let time = i.get(..i.len() - rest.len()).unwrap_or_default();
    Ok((rest, (pri, time, tm)))
}

/// Up to the next space (memchr: an ident is ~30 bytes).
fn token(i: &[u8]) -> (&[u8], &[u8]) {
    let n = memchr::memchr(b' ', i).unwrap_or(i.len());
    (i.get(n..).unwrap_or_default(), i.get(..n).unwrap_or_default())
}

fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|b| **b == b' ').count();
    i.get(n..).unwrap_or_default()
}

/// `nginx:` → (ident, None); `nginx[12]:` → (ident, pid); otherwise None.
fn split_tag(tok: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let t = tok.strip_suffix(b":")?;
    if let Some(inner) = t.strip_suffix(b"]") {
        if let Some(open) = inner.iter().rposition(|b| *b == b'[') {
            let pid = inner.get(open + 1..).unwrap_or_default();
            if !pid.is_empty() && pid.iter().all(|b| b.is_ascii_digit()) {
                return Some((inner.get(..open).unwrap_or_default(), Some(pid)));
            }
        }
    }
    Some((t, None))
}

/// Split one syslog line into its header parts; `None` when there is no
/// recognisable timestamp.
pub(crate) fn decode(input: &[u8]) -> Option<Header<'_>> {
    let input = input.strip_suffix(b"\r\n").or_else(|| input.strip_suffix(b"\n")).unwrap_or(input);
    let (rest, (pri, time, tm)) = prefix(input).ok()?;
    if !valid(&tm) {
        return None;
    }
    let mut h = Header { pri, time, tm, host: None, ident: None, pid: None, message: b"" };
    if rest.is_empty() {
        return Some(h);
    }
    let rest = rest.strip_prefix(b" ")?;
    let rest = skip_spaces(rest);
    let (after1, tok1) = token(rest);
    if tok1.is_empty() {
        return Some(h);
    }
    let (after_tag, tag) = match split_tag(tok1) {
        Some(tag) => (after1, Some(tag)),
        None => {
            h.host = Some(tok1);
            let after_host = skip_spaces(after1);
            let (after2, tok2) = token(after_host);
            match split_tag(tok2) {
                Some(tag) if !tok2.is_empty() => (after2, Some(tag)),
                _ => {
                    h.message = after_host;
                    return Some(h);
                }
            }
        }
    };
    if let Some((ident, pid)) = tag {
        h.ident = (!ident.is_empty()).then_some(ident);
        h.pid = pid;
    }
    h.message = after_tag.strip_prefix(b" ").unwrap_or(after_tag);
    Some(h)
}

/// Decode and lay out the fields, `time_key` holding the header time as
/// written; with `keep`, only the fields it holds (`record::reads`). The
/// line is checked as UTF-8 once (if a field is built) and its fields are
/// sliced from it. The header's broken-down time is returned for the
/// caller's zone and year handling.
pub(crate) fn fields(
    input: &[u8],
    time_key: Option<&str>,
    keep: Option<&KeySet>,
) -> Result<(Vec<(Text, Value)>, Tm), ParseFailure> {
    let h = decode(input).ok_or(ParseFailure::NoMatch)?;
    // Checked when the first field is built (with `keep`, maybe none is).
    let line = std::cell::OnceCell::new();
    let text = |part: &[u8]| -> Text {
        let line = *line.get_or_init(|| crate::record::utf8(input));
        // `part` lies within `input` (checked, not assumed): then it is the
        // same bytes in `line`, and valid wherever it ends on a boundary.
        let off = (part.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
        let within = off <= input.len() && part.len() <= input.len() - off;
        crate::record::sliced_text(line.filter(|_| within), off, part)
    };
    let wanted = |k: &str| keep.is_none_or(|set| set.contains(k.as_bytes()));
    let mut out = Vec::with_capacity(6);
    if let Some(pri) = h.pri.filter(|_| wanted("pri")) {
        out.push((Text::const_new("pri"), Value::Str(text(pri))));
    }
    if let Some(key) = time_key.filter(|k| wanted(k)) {
        out.push((Text::new(key), Value::Str(text(h.time))));
    }
    for (k, v) in [("host", h.host), ("ident", h.ident), ("pid", h.pid)] {
        if let Some(v) = v.filter(|_| wanted(k)) {
            out.push((Text::const_new(k), Value::Str(text(v))));
        }
    }
    if wanted("message") {
        out.push((Text::const_new("message"), Value::Str(text(h.message))));
    }
    Ok((out, h.tm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{near_misses, same_outcome};
    use nom::branch::alt;
    use nom::bytes::complete::tag;
    use nom::combinator::consumed;
    use nom::sequence::delimited;

    /// The nom definition [`prefix`] replaced.
    fn prefix_nom(i: &[u8]) -> IResult<&[u8], Prefix<'_>> {
        let (i, pri) = opt(delimited(tag("<"), take_while_m_n(1, 3, is_digit), tag(">")))(i)?;
        let (rest, (time, tm)) = consumed(alt((rfc3339, bsd)))(i)?;
        Ok((rest, (pri, time, tm)))
    }

    /// The nom definitions [`hms`] and [`bsd`] replaced.
    fn hms_nom(i: &[u8]) -> IResult<&[u8], (u32, u32, u32, u32)> {
        let (i, (h, _, m, _, s, frac)) = tuple((two, char(':'), two, char(':'), two, opt(fraction)))(i)?;
        Ok((i, (h, m, s, frac.unwrap_or(0))))
    }

    fn bsd_nom(i: &[u8]) -> IResult<&[u8], Tm> {
        let (i, mon) = nom::bytes::complete::take(3usize)(i)?;
        let Some(month) = super::super::strptime::month_of_abbr(mon) else {
            return Err(no_match(i));
        };
        let (i, _) = char(' ')(i)?;
        let (i, day) = alt((preceded(char(' '), take_while_m_n(1, 1, is_digit)), take_while_m_n(1, 2, is_digit)))(i)?;
        let (i, _) = char(' ')(i)?;
        let (i, (hour, minute, second, nanos)) = hms_nom(i)?;
        let tm =
            Tm { month: Some(month as u32 + 1), day: Some(num(day)), hour, minute, second, nanos, ..Tm::default() };
        Ok((i, tm))
    }

    #[test]
    fn hand_read_parts_agree_with_the_nom_definitions() {
        let seeds: [&[u8]; 12] = [
            b"Nov 23 16:30:00 host nginx: x",
            b"Nov  3 16:30:00 nginx: x",
            b"nov 3 16:30:00.123456789123 x",
            b"Dec 31 23:59:60.5",
            b"Jan 01 00:00:00",
            b"Feb  9 07:05:03.",
            b"<190>Nov 23 16:30:00 host nginx: x",
            b"<1>Nov  3 16:30:00 nginx: x",
            b"<13>2024-11-23T16:30:00.5+09:00 h t: m",
            b"2024-11-23 16:30:00Z",
            b"<1234>Nov 23 16:30:00",
            b"<>Dec 31 23:59:59",
        ];
        let alphabet = b"<> :.-+TZ0123456789NovDecjJ\xe9x";
        let mut bsd_ok = [0usize; 2];
        let prefix_ok = near_misses(&seeds, alphabet, 0x7135_7A4B_0000_0003, 300_000, |input| {
            let rest = input.get(7..).unwrap_or_default();
            same_outcome(hms(rest), hms_nom(rest), rest);
            bsd_ok[usize::from(same_outcome(bsd(input), bsd_nom(input), input))] += 1;
            same_outcome(prefix(input), prefix_nom(input), input)
        });
        for ok in [bsd_ok, prefix_ok] {
            assert!(ok[0] > 20_000 && ok[1] > 20_000, "{ok:?}");
        }
    }
    use crate::record::lossy_text;

    fn d(s: &str) -> Header<'_> {
        decode(s.as_bytes()).unwrap()
    }

    fn st(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn nginx_with_and_without_hostname() {
        let h = d(r#"<190>Nov  3 06:07:08 web-1 nginx: {"a":"b"}"#);
        assert_eq!(st(h.pri), Some("190"));
        assert_eq!(h.time, b"Nov  3 06:07:08");
        assert_eq!((h.tm.month, h.tm.day, h.tm.hour, h.tm.year), (Some(11), Some(3), 6, None));
        assert_eq!(st(h.host), Some("web-1"));
        assert_eq!(st(h.ident), Some("nginx"));
        assert_eq!(h.pid, None);
        assert_eq!(h.message, br#"{"a":"b"}"#);

        let h = d("<190>Nov 23 16:30:00 nginx: {\"a\":\"b\"}\n");
        assert_eq!((h.host, st(h.ident)), (None, Some("nginx")));
        assert_eq!(h.message, br#"{"a":"b"}"#);
    }

    #[test]
    fn pid_missing_pri_and_zero_padded_day() {
        let h = d("Nov 03 16:30:00 host sshd[1234]: Accepted  key\r\n");
        assert_eq!(h.pri, None);
        assert_eq!(h.tm.day, Some(3));
        assert_eq!((st(h.host), st(h.ident), st(h.pid)), (Some("host"), Some("sshd"), Some("1234")));
        assert_eq!(h.message, b"Accepted  key");
        let h = d("<13>Nov  3 16:30:00 cron[x]: m");
        assert_eq!((st(h.ident), h.pid), (Some("cron[x]"), None));
    }

    #[test]
    fn no_tag_rfc3339_fraction_and_trailing_spaces() {
        let h = d("<13>Nov 23 16:30:00 host message without colon");
        assert_eq!((st(h.host), h.ident), (Some("host"), None));
        assert_eq!(h.message, b"message without colon");

        let h = d("<13>2024-11-23T16:30:00.123+09:00 host tag: msg");
        assert_eq!(h.time, b"2024-11-23T16:30:00.123+09:00");
        assert_eq!((h.tm.year, h.tm.nanos, h.tm.offset), (Some(2024), 123_000_000, Some(32400)));
        assert_eq!((st(h.host), st(h.ident)), (Some("host"), Some("tag")));

        let h = d("<13>Nov 23 16:30:00.123456 host tag:   body with  spaces  ");
        assert_eq!(h.tm.nanos, 123_456_000);
        assert_eq!(h.message, b"  body with  spaces  ");

        let h = d("<13>Nov 23 16:30:00 host tag: ");
        assert_eq!(h.message, b"");
        let h = d("<13>Nov 23 16:30:00 ");
        assert_eq!((h.host, h.message), (None, &b""[..]));
    }

    #[test]
    fn garbage_is_no_match() {
        for g in [
            "",
            "hello world",
            "<13>",
            "<13>Nov 32 16:30:00 h t: m",
            "<13>Foo 23 16:30:00 h t: m",
            "<13>Nov 23 25:30:00 h t: m",
            "<13>Nov 23 16:30:00x",
            "<1234>Nov 23 16:30:00 h t: m",
            "\u{ff}\u{fe}",
        ] {
            assert_eq!(decode(g.as_bytes()), None, "{g}");
        }
        assert_eq!(fields(b"garbage", None, None), Err(ParseFailure::NoMatch));
    }

    #[test]
    fn fields_are_the_header_parts_lossy_and_keep_selects_them() {
        let keep = KeySet::new(["host", "message", "t"]);
        let mut next = crate::testing::xorshift(0x3164_3164_3164);
        let seeds: [&[u8]; 3] = [
            b"<190>Nov 23 16:30:00 istio-ingressgateway-7d9f-abcde nginx[12]: {\"a\":\"caf\xc3\xa9\"}",
            b"<13>Nov  3 06:07:08 nginx: message",
            b"Nov 03 16:30:00 h\xc3\xa9 sshd[1234]: x\n",
        ];
        for i in 0..50_000 {
            let mut input = seeds[i % seeds.len()].to_vec();
            if next() % 2 == 0 {
                // A byte that breaks UTF-8 (or a lone continuation) somewhere.
                let at = (next() as usize) % input.len();
                input[at] = [0xff, 0xc3, 0x80, 0xe3][(next() % 4) as usize];
            }
            let Some(h) = decode(&input) else { continue };
            let (all, _) = fields(&input, Some("t"), None).unwrap();
            let mut want = Vec::new();
            for (k, v) in [("pri", h.pri), ("t", Some(h.time)), ("host", h.host), ("ident", h.ident), ("pid", h.pid)] {
                if let Some(v) = v {
                    want.push((Text::new(k), Value::Str(lossy_text(v))));
                }
            }
            want.push((Text::new("message"), Value::Str(lossy_text(h.message))));
            assert_eq!(all, want, "{}", String::from_utf8_lossy(&input));
            let (some, _) = fields(&input, Some("t"), Some(&keep)).unwrap();
            want.retain(|(k, _)| keep.contains(k.as_bytes()));
            assert_eq!(some, want);
        }
    }
}
