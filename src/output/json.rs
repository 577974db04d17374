//! The JSON writer of the `out_file`/`plain` formats and of `stdout`: the
//! shape of Fluent Bit's msgpack→JSON conversion (`flb_msgpack_to_json`),
//! keys in record order with duplicates kept, no whitespace.
//!
//! Numbers follow Fluent Bit exactly: integers in decimal; a float whose
//! value is a whole number in the `i64` range as `%.1f` (`3.0`), any other
//! float as `%.16g` (`0.005`, `1e+20`). Deliberate differences, all to keep
//! the output valid JSON: NaN and infinities are written `null` (1.8.13
//! writes `nan`/`inf`); BEL and VT are written `\u0007`/`\u000b` (1.8.13
//! writes the invalid escapes `\a`/`\v`); non-ASCII text is written as raw
//! UTF-8 (1.8.13 writes `\uXXXX`, and a broken `\u1f600` above U+FFFF).
//! Other control bytes and DEL are `\u00XX` with lower-case hex, as in 1.8.13.

use super::print::{push_fixed, push_g16, push_int};
use crate::record::{Map, Value};
use crate::swar;

/// Append `v` as JSON.
pub(crate) fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_int(out, *i),
        Value::Float(f) => push_float(out, *f),
        Value::Str(s) => push_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
        Value::Map(m) => push_map(out, m),
    }
}

/// Append a map as a JSON object, pairs in order, duplicates kept.
pub(crate) fn push_map(out: &mut Vec<u8>, m: &Map) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_value(out, v);
    }
    out.push(b'}');
}

/// Fluent Bit's float rule (see the module doc).
pub(crate) fn push_float(out: &mut Vec<u8>, f: f64) {
    // 2^63: the C cast `(long long)f` only round-trips strictly below it.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !f.is_finite() {
        out.extend_from_slice(b"null");
    } else if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        push_fixed(out, f, 1);
    } else {
        push_g16(out, f);
    }
}

/// Whether `b` is written escaped: control bytes, DEL, `"` and `\\`.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// The bytes of `w` that need escaping (see [`crate::swar`]).
#[inline]
fn escape_mask(w: u64) -> u64 {
    swar::below(w, 0x20) | swar::eq(w, b'"') | swar::eq(w, b'\\') | swar::eq(w, 0x7f)
}

/// The first byte of `bytes[i..]` that needs escaping, 8 bytes at a time.
/// The last partial word is the string's last 8 bytes shifted down past
/// what was already checked, topped up with `a`s.
#[inline]
fn next_escape(bytes: &[u8], mut i: usize) -> Option<usize> {
    const PAD: u64 = u64::from_le_bytes([b'a'; 8]);
    let first = |m: u64, at: usize| (m != 0).then(|| at + swar::first(m));
    while let Some(w) = swar::load(bytes, i) {
        if let Some(at) = first(escape_mask(w), i) {
            return Some(at);
        }
        i += 8;
    }
    if i >= bytes.len() {
        return None;
    }
    match bytes.len().checked_sub(8) {
        Some(last) => {
            // 1..=7 bytes of the last word were checked before.
            let skip = 8 * (i - last) as u32;
            first(escape_mask(swar::load(bytes, last)? >> skip | PAD << (64 - skip)), i)
        }
        None => bytes.get(i..)?.iter().position(|&b| needs_escape(b)).map(|n| i + n),
    }
}

/// Append `s` as a quoted, escaped JSON string: the runs between escapes
/// are copied whole (most access-log strings are one run).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => &[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]],
        };
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        let mut out = Vec::new();
        push_value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_follow_fluent_bit() {
        assert_eq!(json(&Value::Float(3.0)), "3.0");
        assert_eq!(json(&Value::Float(-0.0)), "-0.0");
        assert_eq!(json(&Value::Float(0.005)), "0.005");
        assert_eq!(json(&Value::Float(1732379400.5)), "1732379400.5");
        assert_eq!(json(&Value::Float(1e15)), "1000000000000000.0");
        assert_eq!(json(&Value::Float(1e20)), "1e+20");
        assert_eq!(json(&Value::Float(f64::NAN)), "null");
    }

    #[test]
    fn strings_are_escaped_and_utf8_kept() {
        let v = Value::from("q\"b\\n\nt\tr\rb\u{8}f\u{c}a\u{7}v\u{b}z\u{0}d\u{7f}é日😀");
        assert_eq!(json(&v), "\"q\\\"b\\\\n\\nt\\tr\\rb\\bf\\fa\\u0007v\\u000bz\\u0000d\\u007fé日😀\"");
    }

    #[test]
    fn escaping_agrees_with_a_byte_by_byte_writer() {
        fn reference(s: &str) -> Vec<u8> {
            let mut out = vec![b'"'];
            for &b in s.as_bytes() {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                    _ => out.push(b),
                }
            }
            out.push(b'"');
            out
        }
        let mut next = crate::testing::xorshift(0x0123_4567_89AB_CDEF);
        let pieces = [
            "a", "Z", " ", "~", "\"", "\\", "\n", "\u{0}", "\u{1f}", "\u{7f}", "!", "#", "[", "]", "é", "日", "😀",
            "\u{80}",
        ];
        for len in 0..40 {
            for _ in 0..300 {
                let mut s = String::new();
                for _ in 0..len {
                    let x = next();
                    // Mostly plain text, sometimes a byte to escape or a neighbour of one.
                    if x % 4 == 0 {
                        s.push_str(pieces[(x >> 8) as usize % pieces.len()]);
                    } else {
                        s.push((b'a' + (x >> 8) as u8 % 26) as char);
                    }
                }
                let mut out = Vec::new();
                push_str(&mut out, &s);
                assert_eq!(out, reference(&s), "{s:?}");
            }
        }
        // Every byte value next to plain text, at every offset within a word.
        for b in 0u8..0x80 {
            for at in 0..16 {
                let mut s = "x".repeat(16);
                s.insert(at, b as char);
                let mut out = Vec::new();
                push_str(&mut out, &s);
                assert_eq!(out, reference(&s), "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn nested_and_duplicates() {
        let mut inner = Map::new();
        inner.push("a", Value::Array(vec![Value::Int(1), Value::Null, Value::Bool(false)]));
        let mut m = Map::new();
        m.push("k", Value::from("1"));
        m.push("k", Value::Map(inner));
        m.push("e", Value::Map(Map::new()));
        assert_eq!(json(&Value::Map(m)), r#"{"k":"1","k":{"a":[1,null,false]},"e":{}}"#);
    }
}
