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
use super::ParseFailure;
use crate::record::Value;

#[derive(Debug)]
pub(crate) struct RegexParser {
    re: regex::Regex,
    /// Field name of capture group `i + 1`.
    names: Vec<String>,
    skip_empty: bool,
}

impl RegexParser {
    /// Translate and compile; the error is a sentence for the `Regex` line.
    pub fn compile(src: &str, skip_empty: bool) -> Result<RegexParser, String> {
        let t = onigmo::translate(src)?;
        let re = regex::Regex::new(&t.pattern).map_err(|e| match e {
            regex::Error::Syntax(text) => {
                // The crate's message draws the translated pattern; keep its verdict.
                let verdict = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("error: "))
                    .next()
                    .unwrap_or("syntax error")
                    .to_owned();
                format!("the pattern does not compile: {verdict}")
            }
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern is too large once compiled (over {limit} bytes)")
            }
            other => format!("the pattern does not compile: {other}"),
        })?;
        if t.names.is_empty() {
            tracing::warn!(
                pattern = src,
                "regex has no named groups: it will produce empty records"
            );
        }
        Ok(RegexParser {
            re,
            names: t.names,
            skip_empty,
        })
    }

    pub fn fields(&self, input: &[u8]) -> Result<Vec<(String, Value)>, ParseFailure> {
        let text: Cow<'_, str> = String::from_utf8_lossy(input);
        let caps = self.re.captures(&text).ok_or(ParseFailure::NoMatch)?;
        let mut out = Vec::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            let Some(m) = caps.get(i + 1) else { continue };
            if m.is_empty() && self.skip_empty {
                continue;
            }
            out.push((name.clone(), Value::Str(m.as_str().to_owned())));
        }
        Ok(out)
    }
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
        assert_eq!(
            r.fields(b"abc  tail").unwrap(),
            vec![("a".into(), s("abc")), ("d".into(), s(" tail"))]
        );
        let keep = RegexParser::compile(r"^(?<a>\w+) (?<b>\d*)(?: (?<c>x))?", false).unwrap();
        assert_eq!(
            keep.fields(b"abc ").unwrap(),
            vec![("a".into(), s("abc")), ("b".into(), s(""))]
        );
        assert_eq!(r.fields(b"!!!"), Err(ParseFailure::NoMatch));
    }

    #[test]
    fn line_anchors_unanchored_search_and_invalid_utf8() {
        let r = RegexParser::compile(r"^(?<m>.*)$", true).unwrap();
        assert_eq!(
            r.fields(b"first\nsecond").unwrap(),
            vec![("m".into(), s("first"))]
        );
        let r = RegexParser::compile(r"id=(?<id>[^ ]+)", true).unwrap();
        assert_eq!(
            r.fields(b"x id=\xff1 id=2").unwrap(),
            vec![("id".into(), s("\u{FFFD}1"))]
        );
    }

    #[test]
    fn compile_errors_are_sentences() {
        assert_eq!(
            RegexParser::compile(r"(?<a>x", true).unwrap_err(),
            "the pattern does not compile: unclosed group"
        );
        assert!(RegexParser::compile(r"(?=x)", true)
            .unwrap_err()
            .contains("lookahead"));
    }
}
