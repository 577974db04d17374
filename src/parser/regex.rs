//! `Format regex`: a translated Onigmo pattern (see `onigmo.rs`) run as an
//! unanchored search; named groups become string fields in pattern order.
//! A group that did not participate is omitted; an empty one too unless
//! `Skip_Empty_Values off` (Fluent Bit 1.8 always omits it).
//!
//! Input that is not valid UTF-8 is matched after U+FFFD replacement, so
//! `.` and `[^ ]` behave on it as Onigmo does on the raw bytes and the
//! fields are valid strings; valid input is matched without a copy.

use std::borrow::Cow;

use super::onigmo;
use super::stock_syslog::{self, StockSyslog};
use super::ParseFailure;
use crate::record::{Text, Value};

#[derive(Debug)]
pub(crate) struct RegexParser {
    re: regex::Regex,
    /// Field name of capture group `i + 1`.
    names: Vec<Text>,
    skip_empty: bool,
    /// The pattern ended in `(?<last>.*)$`, which always matches the rest of
    /// the line: `re` is compiled without it and the last field is sliced
    /// off the input instead (the stock syslog regex ends so, and matching
    /// `.*` through a 650-byte message with capture slots cost ~9 µs).
    rest_of_line: bool,
    /// The pattern is one of Fluent Bit's stock syslog regexes, matched by
    /// hand (same fields, a tenth of the cost; see `stock_syslog.rs`).
    stock: Option<StockSyslog>,
}

/// If `pattern` ends with a top-level `(.*)` or `(.*)$` that is its last
/// capture group, the pattern without it. Leftmost-first matching makes the
/// two equivalent: the tail matches from any position, so the first path of
/// the prefix that matches is the first path of the whole.
fn strip_rest_of_line(pattern: &str) -> Option<&str> {
    let prefix = pattern.strip_suffix("(.*)$").or_else(|| pattern.strip_suffix("(.*)"))?;
    // `.` must stop at newlines and whitespace must be literal.
    let flags = prefix.strip_prefix("(?")?.split(')').next()?;
    if flags.contains('s') || flags.contains('x') || prefix.ends_with('\\') {
        return None;
    }
    let (mut depth, mut class, mut escaped) = (0i32, false, false);
    for c in prefix.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !class => class = true,
            ']' if class => class = false,
            _ if class => {}
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => return None,
            _ => {}
        }
    }
    (depth == 0 && !class).then_some(prefix)
}

impl RegexParser {
    /// Translate and compile; the error is a sentence for the `Regex` line.
    pub fn compile(src: &str, skip_empty: bool) -> Result<RegexParser, String> {
        let mut p = Self::compile_generic(src, skip_empty)?;
        p.stock = match src {
            stock_syslog::RFC3164 => Some(StockSyslog { host: true }),
            stock_syslog::RFC3164_LOCAL => Some(StockSyslog { host: false }),
            _ => None,
        }
        .filter(|_| p.rest_of_line);
        Ok(p)
    }

    /// Whether the stock syslog matcher is used instead of the regex engine.
    #[cfg(test)]
    pub(crate) fn uses_stock_syslog(&self) -> bool {
        self.stock.is_some()
    }

    /// [`Self::compile`] always through the regex engine.
    pub(crate) fn compile_generic(src: &str, skip_empty: bool) -> Result<RegexParser, String> {
        let t = onigmo::translate(src)?;
        let stripped = strip_rest_of_line(&t.pattern).filter(|_| !t.names.is_empty());
        let rest_of_line = stripped.is_some_and(|p| regex::Regex::new(p).is_ok());
        let pattern = if rest_of_line { stripped.unwrap_or(&t.pattern) } else { &t.pattern };
        let re = regex::Regex::new(pattern).map_err(|e| match e {
            regex::Error::Syntax(text) => {
                // The crate's message draws the translated pattern; keep its verdict.
                let verdict =
                    text.lines().filter_map(|l| l.strip_prefix("error: ")).next().unwrap_or("syntax error").to_owned();
                format!("the pattern does not compile: {verdict}")
            }
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern is too large once compiled (over {limit} bytes)")
            }
            other => format!("the pattern does not compile: {other}"),
        })?;
        if t.names.is_empty() {
            tracing::warn!(pattern = src, "regex has no named groups: it will produce empty records");
        }
        let names = t.names.into_iter().map(Text::from).collect();
        Ok(RegexParser { re, names, skip_empty, rest_of_line, stock: None })
    }

    pub fn fields(&self, input: &[u8]) -> Result<Vec<(Text, Value)>, ParseFailure> {
        let text: Cow<'_, str> = match crate::record::utf8(input) {
            Some(s) => Cow::Borrowed(s),
            None => String::from_utf8_lossy(input),
        };
        self.fields_str(&text)
    }

    /// [`Self::fields`] of a string (no UTF-8 check needed).
    pub fn fields_str(&self, text: &str) -> Result<Vec<(Text, Value)>, ParseFailure> {
        let mut out = Vec::with_capacity(self.names.len());
        match self.stock {
            // The stock syslog patterns' groups, found by hand.
            Some(stock) => {
                let g = stock.find(text.as_bytes()).ok_or(ParseFailure::NoMatch)?;
                let host = stock.host.then_some(g.host);
                let groups = [Some(g.pri), Some(g.time)].into_iter().chain(host).chain([
                    Some(g.ident),
                    g.pid,
                    Some(rest_of_line(text, g.end)),
                ]);
                self.push_groups(&mut out, text, groups);
            }
            None => {
                let caps = self.re.captures(text).ok_or(ParseFailure::NoMatch)?;
                let end = caps.get(0).map_or(0, |m| m.end());
                let groups = (1..caps.len()).map(|i| caps.get(i).map(|m| (m.start(), m.end())));
                let tail = self.rest_of_line.then(|| Some(rest_of_line(text, end)));
                self.push_groups(&mut out, text, groups.chain(tail));
            }
        }
        Ok(out)
    }

    /// The fields of the groups' byte ranges, in `names` order: a group
    /// that did not participate is omitted, an empty one with `skip_empty`.
    fn push_groups(
        &self,
        out: &mut Vec<(Text, Value)>,
        text: &str,
        groups: impl Iterator<Item = Option<(usize, usize)>>,
    ) {
        for (name, group) in self.names.iter().zip(groups) {
            let Some((a, b)) = group else { continue };
            if a == b && self.skip_empty {
                continue;
            }
            // Group bounds are char boundaries (the engine's, or next to ASCII delimiters).
            out.push((name.clone(), Value::Str(Text::new(text.get(a..b).unwrap_or_default()))));
        }
    }
}

/// The rest of the line from `from`: what a trailing `(.*)$` matches.
fn rest_of_line(text: &str, from: usize) -> (usize, usize) {
    let rest = text.as_bytes().get(from..).unwrap_or_default();
    (from, from + memchr::memchr(b'\n', rest).unwrap_or(rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn named_groups_in_order_and_empty_ones_skipped() {
        let r = RegexParser::compile(r"^(?<a>\w+) (?<b>\d*)(?: (?<c>x))?(?<d>.*)$", true).unwrap();
        assert_eq!(r.fields(b"abc  tail").unwrap(), vec![("a".into(), s("abc")), ("d".into(), s(" tail"))]);
        let keep = RegexParser::compile(r"^(?<a>\w+) (?<b>\d*)(?: (?<c>x))?", false).unwrap();
        assert_eq!(keep.fields(b"abc ").unwrap(), vec![("a".into(), s("abc")), ("b".into(), s(""))]);
        assert_eq!(r.fields(b"!!!"), Err(ParseFailure::NoMatch));
    }

    #[test]
    fn line_anchors_unanchored_search_and_invalid_utf8() {
        let r = RegexParser::compile(r"^(?<m>.*)$", true).unwrap();
        assert_eq!(r.fields(b"first\nsecond").unwrap(), vec![("m".into(), s("first"))]);
        let r = RegexParser::compile(r"id=(?<id>[^ ]+)", true).unwrap();
        assert_eq!(r.fields(b"x id=\xff1 id=2").unwrap(), vec![("id".into(), s("\u{FFFD}1"))]);
    }

    #[test]
    fn a_trailing_rest_of_line_group_gives_the_same_fields_as_the_full_regex() {
        let stock = r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$";
        let fast = RegexParser::compile(stock, true).unwrap();
        assert!(fast.rest_of_line);
        let t = onigmo::translate(stock).unwrap();
        let full = RegexParser {
            re: regex::Regex::new(&t.pattern).unwrap(),
            names: t.names.into_iter().map(Into::into).collect(),
            skip_empty: true,
            rest_of_line: false,
            stock: None,
        };
        for line in [
            &b"<190>Nov 23 16:30:00 host nginx: {\"a\":1}"[..],
            b"<190>Nov  3 16:30:00 nginx: {\"a\":1}",
            b"<13>Nov 23 16:30:00 host app[42]: msg: with: colons",
            b"<13>Nov 23 16:30:00 host app[42]:",
            b"<13>Nov 23 16:30:00 host app[42]:   ",
            b"<13>Nov 23 16:30:00 host",
            b"<13>Nov 23 16:30:00 host app: two\nlines",
            b"junk <13>Nov 23 16:30:00 host app: late",
            b"nothing to see",
            b"\n<13>Nov 23 16:30:00 h a: second line",
            b"<13>Nov 23 16:30:00 h a: \xff\xfe",
            b"<13>Nov 23 16:30:00 h a[1] b: c",
            b"<13>Nov 23 16:30:00 h a[x]: c",
        ] {
            assert_eq!(fast.fields(line), full.fields(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn tails_that_are_not_rest_of_line_are_left_alone() {
        for p in [r"(?<a>x)|(?<m>.*)$", r"(?<a>x)(?<m>.*)$/m", r"/(?<a>x) (?<m>.*)$/x"] {
            let r = RegexParser::compile(p, true).unwrap();
            assert!(!r.rest_of_line, "{p}");
        }
        let r = RegexParser::compile(r"(?<a>[|(])(?<m>.*)$", true).unwrap();
        assert!(r.rest_of_line);
        assert_eq!(r.fields(b"|tail\nx").unwrap(), vec![("a".into(), s("|")), ("m".into(), s("tail"))]);
    }

    #[test]
    fn compile_errors_are_sentences() {
        assert_eq!(RegexParser::compile(r"(?<a>x", true).unwrap_err(), "the pattern does not compile: unclosed group");
        assert!(RegexParser::compile(r"(?=x)", true).unwrap_err().contains("lookahead"));
    }
}
