//! `Format ltsv` and `Format logfmt`: flat key/value lines. Values are
//! strings (logfmt bare keys are `true`); invalid UTF-8 becomes U+FFFD.
//!
//! LTSV reads the first line only (`label:value` items separated by tabs;
//! items without a colon are skipped). logfmt reads `key=value`,
//! `key="quoted \" value"` and bare `key` items separated by blanks. Input
//! without a single pair is `NoMatch`.

use super::ParseFailure;
use crate::record::{lossy_text, Text, Value};

pub(crate) fn ltsv(input: &[u8]) -> Result<Vec<(Text, Value)>, ParseFailure> {
    let line = match memchr::memchr(b'\n', input) {
        Some(n) => input.get(..n).unwrap_or_default(),
        None => input,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::new();
    for item in line.split(|b| *b == b'\t') {
        let Some(colon) = memchr::memchr(b':', item) else {
            continue;
        };
        let (label, value) = (&item[..colon], &item[colon + 1..]);
        if label.is_empty() {
            continue;
        }
        out.push((lossy_text(label), Value::Str(lossy_text(value))));
    }
    if out.is_empty() {
        return Err(ParseFailure::NoMatch);
    }
    Ok(out)
}

fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `no_bare_keys`: a bare key makes the whole line `NoMatch` (Fluent Bit's
/// `logfmt_no_bare_keys`).
pub(crate) fn logfmt(input: &[u8], no_bare_keys: bool) -> Result<Vec<(Text, Value)>, ParseFailure> {
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| input.get(i).copied();
    while i < input.len() {
        while at(i).is_some_and(blank) {
            i += 1;
        }
        let start = i;
        while at(i).is_some_and(|b| !blank(b) && b != b'=' && b != b'"') {
            i += 1;
        }
        if i == start {
            // A stray '=' or '"': skip it.
            if at(i).is_some() {
                i += 1;
            }
            continue;
        }
        let key = lossy_text(input.get(start..i).unwrap_or_default());
        if at(i) != Some(b'=') {
            if no_bare_keys {
                return Err(ParseFailure::NoMatch);
            }
            out.push((key, Value::Bool(true)));
            continue;
        }
        i += 1;
        if at(i) == Some(b'"') {
            i += 1;
            let mut buf = Vec::new();
            while let Some(b) = at(i) {
                i += 1;
                match b {
                    b'"' => break,
                    b'\\' if matches!(at(i), Some(b'"' | b'\\')) => {
                        buf.extend(at(i));
                        i += 1;
                    }
                    _ => buf.push(b),
                }
            }
            out.push((key, Value::Str(lossy_text(&buf))));
        } else {
            let vs = i;
            while at(i).is_some_and(|b| !blank(b)) {
                i += 1;
            }
            out.push((key, Value::Str(lossy_text(input.get(vs..i).unwrap_or_default()))));
        }
    }
    if out.is_empty() {
        return Err(ParseFailure::NoMatch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn ltsv_first_line_only() {
        let p = ltsv(b"host:127.0.0.1\tident:-\treq:GET /a:b HTTP/1.1\tbad\t:x\r\nnext:line").unwrap();
        assert_eq!(
            p,
            vec![("host".into(), s("127.0.0.1")), ("ident".into(), s("-")), ("req".into(), s("GET /a:b HTTP/1.1"))]
        );
        assert_eq!(ltsv(b"no pairs here"), Err(ParseFailure::NoMatch));
        assert_eq!(ltsv(b"k:\xff").unwrap()[0].1, s("\u{FFFD}"));
    }

    #[test]
    fn logfmt_quotes_bare_keys_and_empty_values() {
        let p = logfmt(br#"level=info msg="hello \"world\" \n" debug empty= path=/x=y"#, false).unwrap();
        assert_eq!(
            p,
            vec![
                ("level".into(), s("info")),
                ("msg".into(), s("hello \"world\" \\n")),
                ("debug".into(), Value::Bool(true)),
                ("empty".into(), s("")),
                ("path".into(), s("/x=y")),
            ]
        );
        assert_eq!(logfmt(b"a=1 bare", true), Err(ParseFailure::NoMatch));
        assert_eq!(logfmt(b"   ", false), Err(ParseFailure::NoMatch));
        assert_eq!(logfmt(b"k=\"unterminated", false).unwrap()[0].1, s("unterminated"));
    }
}
