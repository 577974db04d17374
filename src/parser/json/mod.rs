//! `Format json`: exactly one JSON object per input, decoded straight from
//! the byte slice into ordered fields.
//!
//! Invariants and deliberate differences from Fluent Bit:
//! - duplicate keys are kept, in order (as Fluent Bit keeps them);
//! - `\uXXXX` surrogate pairs become one 4-byte character (Fluent Bit emits
//!   two 3-byte sequences, which is invalid UTF-8); a lone surrogate becomes
//!   U+FFFD;
//! - raw bytes that are not valid UTF-8 (nginx `escape=json` passes bytes
//!   >= 0x80 through) become U+FFFD, never dropped;
//! - a number literal without fraction or exponent that fits in i64 is an
//!   `Int`; every other number is a `Float`, so `1e5` is 100000.0 (Fluent
//!   Bit 1.8 reads it with `atoll` as 1);
//! - nesting deeper than [`MAX_DEPTH`] is refused, bounding the recursion.
//!
//! Hot path: where strings end is read from a bit mask of the input's `"`
//! and `\` bytes ([`specials`]); a string without escapes is sliced from
//! the once-checked input (one allocation when over 24 bytes); escapes go
//! through one reused scratch buffer. Given a
//! [`KeySet`], only the top-level pairs with those keys are built: every
//! other value is checked with the same grammar and skipped, so an input is
//! accepted or refused exactly as by the full decode.

mod order;
mod specials;

pub use order::KeyOrder;
use order::{Miss, Then};
use specials::Specials;

use super::ParseFailure;
use crate::record::reads::KeySet;
use crate::record::{lossy_text, Map, Text, Value};

/// Deepest nesting accepted (the top-level object is depth 1).
pub const MAX_DEPTH: usize = 64;

/// Powers of ten exactly representable as doubles (up to 10^22; the fast
/// decimal path uses up to 10^15).
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// Decode `input` as one JSON object, surrounded by optional whitespace.
/// With `keep`, only the top-level pairs whose key it holds are returned.
/// With `order`, the caller's memory of the last object's key order
/// (learned with the same `keep`) is tried and updated.
pub(crate) fn parse_object(
    input: &[u8],
    keep: Option<&KeySet>,
    order: Option<&mut KeyOrder>,
) -> Result<Vec<(Text, Value)>, ParseFailure> {
    object(Json { keep, order, ..Json::new(input) })
}

/// [`parse_object`] of a string (no UTF-8 check needed).
pub(crate) fn parse_object_str(
    input: &str,
    keep: Option<&KeySet>,
    order: Option<&mut KeyOrder>,
) -> Result<Vec<(Text, Value)>, ParseFailure> {
    object(Json {
        b: input.as_bytes(),
        text: Some(input),
        pos: 0,
        scratch: Vec::new(),
        keep,
        order,
        specials: Specials::new(),
    })
}

fn object(mut p: Json<'_>) -> Result<Vec<(Text, Value)>, ParseFailure> {
    p.ws();
    if p.peek() != Some(b'{') {
        // Tell "valid JSON, wrong type" from garbage: the metric differs.
        return match p.value(1) {
            Ok(_) if p.at_end() => Err(ParseFailure::NotAnObject),
            _ => Err(ParseFailure::InvalidJson),
        };
    }
    p.pos += 1;
    let pairs = p.object_body(1).map_err(|_| ParseFailure::InvalidJson)?;
    if !p.at_end() {
        return Err(ParseFailure::InvalidJson);
    }
    Ok(pairs)
}

/// Decode any JSON value (used by `Decode_Field json`).
pub(crate) fn parse_value(input: &[u8]) -> Option<Value> {
    let mut p = Json::new(input);
    p.ws();
    let v = p.value(1).ok()?;
    p.at_end().then_some(v)
}

struct Json<'a> {
    b: &'a [u8],
    /// The whole input when it is valid UTF-8 (checked once, in one pass):
    /// strings are then sliced from it without a check each.
    text: Option<&'a str>,
    pos: usize,
    scratch: Vec<u8>,
    /// The top-level keys to build; `None`: all.
    keep: Option<&'a KeySet>,
    /// The top-level key order remembered from earlier objects.
    order: Option<&'a mut KeyOrder>,
    /// Where strings end (or have an escape).
    specials: Specials,
}

/// A number literal as [`Json::scan_number`] read it.
struct Number {
    neg: bool,
    /// The integer and fraction digits as one integer (wrapping: exact
    /// when they are 19 or fewer).
    mantissa: u64,
    int_digits: usize,
    /// Digits after the point, if there is one.
    fraction: Option<usize>,
    exponent: bool,
}

/// Internal: the reason is not needed, every syntax error is `InvalidJson`.
struct Bad;

type R<T> = Result<T, Bad>;

impl<'a> Json<'a> {
    fn new(b: &'a [u8]) -> Self {
        Json {
            b,
            text: crate::record::utf8(b),
            pos: 0,
            scratch: Vec::new(),
            keep: None,
            order: None,
            specials: Specials::new(),
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.ws();
        self.pos >= self.b.len()
    }

    /// [`Json::expect`], trying the byte at the current position first.
    #[inline]
    fn punct(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.expect(c)
        }
    }

    fn expect(&mut self, c: u8) -> R<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Bad)
        }
    }

    /// The first byte of a value at `depth`, after whitespace; a container
    /// nested deeper than [`MAX_DEPTH`] is refused.
    #[inline]
    fn value_start(&mut self, depth: usize) -> R<u8> {
        self.ws();
        let c = self.peek().ok_or(Bad)?;
        if matches!(c, b'{' | b'[') && depth > MAX_DEPTH {
            return Err(Bad);
        }
        Ok(c)
    }

    fn value(&mut self, depth: usize) -> R<Value> {
        match self.value_start(depth)? {
            b'{' => {
                self.pos += 1;
                Ok(Value::Map(Map::from_pairs(self.object_body(depth)?)))
            }
            b'[' => {
                self.pos += 1;
                self.array_body(depth)
            }
            b'"' => {
                self.pos += 1;
                Ok(Value::Str(self.string()?))
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Bad),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> R<Value> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(Bad)
        }
    }

    /// After `{`.
    fn object_body(&mut self, depth: usize) -> R<Vec<(Text, Value)>> {
        // nginx access records have ~20 fields: room for them and the
        // syslog fields a parser filter adds, without growing. When only
        // some keys are built, room for those and as many more: under 1 KiB,
        // which the allocator serves from its fast path (224 instructions
        // against ~46 measured for the 1.8 KiB of 32 pairs).
        let top = self.keep.map_or(32, |k| (2 * k.len()).clamp(8, 32));
        let mut pairs = Vec::with_capacity(if depth == 1 { top } else { 8 });
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(pairs);
        }
        let keep = if depth == 1 { self.keep } else { None };
        let mut i = 0;
        loop {
            let (key, then) = match self.remembered_key(depth, i) {
                Some(hit) => hit,
                None => {
                    let start = self.pos;
                    // Compact JSON (nginx's) has no whitespace: each structural byte
                    // is tried where it should be before whitespace is skipped.
                    self.punct(b'"')?;
                    let key = match keep {
                        None => Some(self.string()?),
                        Some(k) => self.wanted_key(k)?,
                    };
                    self.punct(b':')?;
                    if depth == 1 {
                        if let Some(order) = self.order.as_deref_mut() {
                            let then = match self.b.get(self.pos) {
                                Some(b'"') => Then::String,
                                Some(b'-' | b'0'..=b'9') => Then::Number,
                                _ => Then::Other,
                            };
                            let end = self.pos + usize::from(then == Then::String);
                            order.learn(i, self.b.get(start..end).unwrap_or_default(), key.as_ref(), then);
                        }
                    }
                    (key, Then::Other)
                }
            };
            i += 1;
            let number = then == Then::Number && matches!(self.peek(), Some(b'-' | b'0'..=b'9'));
            match (key, then) {
                // A remembered string value: the decoder is past its quote.
                (Some(key), Then::String) => {
                    let v = Value::Str(self.string()?);
                    pairs.push((key, v));
                }
                (None, Then::String) => self.skip_string()?,
                (Some(key), _) if number => {
                    let v = self.number()?;
                    pairs.push((key, v));
                }
                (None, _) if number => {
                    self.scan_number()?;
                }
                (Some(key), _) => {
                    let v = self.value(depth + 1)?;
                    pairs.push((key, v));
                }
                (None, _) => self.skip(depth + 1)?,
            }
            let c = match self.peek() {
                Some(c @ (b',' | b'}')) => c,
                _ => {
                    self.ws();
                    self.peek().ok_or(Bad)?
                }
            };
            self.pos += 1;
            match c {
                b',' => {}
                b'}' => return Ok(pairs),
                _ => return Err(Bad),
            }
        }
    }

    /// At the start of the top-level object's `i`-th pair: when the input
    /// holds the remembered `"key":` of that pair, consume it and return
    /// the key if it is built (see [`KeyOrder`]) and how its value began
    /// (a string's opening quote is consumed too); `None` to decode the
    /// pair in full.
    #[inline]
    fn remembered_key(&mut self, depth: usize, i: usize) -> Option<(Option<Text>, Then)> {
        if depth != 1 {
            return None;
        }
        let order = self.order.as_deref_mut()?;
        match order.find(i, self.b, self.pos) {
            Ok(hit) => {
                let key = hit.key.cloned();
                self.pos += hit.len;
                Some((key, hit.then))
            }
            Err(Miss::Differs) => {
                order.forget_from(i);
                None
            }
            Err(Miss::Unknown) => None,
        }
    }

    /// After a key's opening quote: the key if `keep` holds it, else `None`
    /// with the key consumed. A key without escapes in valid UTF-8 is
    /// compared where it lies, without building it.
    fn wanted_key(&mut self, keep: &KeySet) -> R<Option<Text>> {
        let start = self.pos;
        let end = self.specials.next(self.b, start).ok_or(Bad)?;
        if let (Some(_), Some(b'"')) = (self.text, self.b.get(end)) {
            self.pos = end + 1;
            let raw = self.b.get(start..end).ok_or(Bad)?;
            return Ok(keep.contains(raw).then(|| self.plain(start, raw)));
        }
        let key = self.string()?;
        Ok(keep.contains(key.as_bytes()).then_some(key))
    }

    /// Check one value with [`Json::value`]'s grammar and depth limit,
    /// building nothing.
    fn skip(&mut self, depth: usize) -> R<()> {
        let c = self.value_start(depth)?;
        match c {
            b'"' => {
                self.pos += 1;
                self.skip_string()
            }
            b'{' | b'[' => {
                self.pos += 1;
                let close = if c == b'{' { b'}' } else { b']' };
                self.ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    if c == b'{' {
                        self.expect(b'"')?;
                        self.skip_string()?;
                        self.expect(b':')?;
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(x) if x == close => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(Bad),
                    }
                }
            }
            // The decoder's own grammar: numbers scanned (their value not
            // computed), literals decoded and dropped.
            b'-' | b'0'..=b'9' => self.scan_number().map(drop),
            _ => self.value(depth).map(drop),
        }
    }

    /// After the opening quote: [`Json::string`]'s grammar (the escapes
    /// [`Json::escaped_tail`] accepts), nothing built.
    fn skip_string(&mut self) -> R<()> {
        loop {
            let at = self.specials.next(self.b, self.pos).ok_or(Bad)?;
            self.pos = at + 1;
            if self.b.get(at) == Some(&b'"') {
                return Ok(());
            }
            let c = self.peek().ok_or(Bad)?;
            self.pos += 1;
            match c {
                b'"' | b'\\' | b'/' | b'n' | b't' | b'r' | b'b' | b'f' => {}
                b'u' => {
                    self.unicode_escape()?;
                }
                _ => return Err(Bad),
            }
        }
    }

    /// After `[`.
    fn array_body(&mut self, depth: usize) -> R<Value> {
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(Bad),
            }
        }
    }

    /// A number literal. Access logs carry small integers and short
    /// decimals (`0.012`): those are computed from their digits without
    /// going through a string (an integer of up to 18 digits is exact; a
    /// decimal of up to 15 digits without exponent is `digits / 10^frac`,
    /// one correctly rounded division of two exact doubles). Anything else
    /// goes to the standard library's parser.
    fn number(&mut self) -> R<Value> {
        let start = self.pos;
        let n = self.scan_number()?;
        let digits = n.int_digits + n.fraction.unwrap_or(0);
        match (n.fraction, n.exponent) {
            (None, false) if digits <= 18 => {
                let i = n.mantissa as i64; // < 10^18 < 2^63
                return Ok(Value::Int(if n.neg { -i } else { i }));
            }
            (Some(f), false) if digits <= 15 => {
                // mantissa < 10^15 < 2^53 and 10^f (f <= 15) are exact doubles.
                let v = n.mantissa as f64 / POW10[f];
                return Ok(Value::Float(if n.neg { -v } else { v }));
            }
            _ => {}
        }
        // Only ASCII digits and signs were consumed: always valid UTF-8.
        let text = std::str::from_utf8(self.b.get(start..self.pos).ok_or(Bad)?).map_err(|_| Bad)?;
        if n.fraction.is_none() && !n.exponent {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
        }
        text.parse::<f64>().map(Value::Float).map_err(|_| Bad)
    }

    /// Consume a number literal (JSON's grammar; the standard library
    /// parses every literal it accepts). Inline, so that [`Json::skip`],
    /// which only needs the end, does not compute the digits' value.
    #[inline(always)]
    fn scan_number(&mut self) -> R<Number> {
        let b = self.b;
        let start = self.pos;
        let neg = b.get(start) == Some(&b'-');
        // All the digits, integer and fraction, are accumulated (wrapping):
        // the sum is used only when there are few enough of them to be exact.
        let mut mantissa: u64 = 0;
        let mut i = start + usize::from(neg);
        let digits = |i: &mut usize, mantissa: &mut u64| -> usize {
            let s = *i;
            while let Some(d) = b.get(*i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
                *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
                *i += 1;
            }
            *i - s
        };
        let int_digits = digits(&mut i, &mut mantissa);
        if int_digits == 0 {
            return Err(Bad);
        }
        let mut fraction = None;
        if b.get(i) == Some(&b'.') {
            i += 1;
            match digits(&mut i, &mut mantissa) {
                0 => return Err(Bad),
                f => fraction = Some(f),
            }
        }
        let mut exponent = false;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            exponent = true;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i, &mut 0) == 0 {
                return Err(Bad);
            }
        }
        self.pos = i;
        Ok(Number { neg, mantissa, int_digits, fraction, exponent })
    }

    /// A string without escapes, `raw` at `start`: sliced from the input
    /// when it is valid UTF-8 (quotes are ASCII, so a valid input splits
    /// into valid strings), else a lossy copy.
    #[inline]
    fn plain(&self, start: usize, raw: &[u8]) -> Text {
        crate::record::sliced_text(self.text, start, raw)
    }

    /// After the opening quote; consumes the closing one.
    fn string(&mut self) -> R<Text> {
        let start = self.pos;
        let at = self.specials.next(self.b, start).ok_or(Bad)?;
        let raw = self.b.get(start..at).ok_or(Bad)?;
        if self.b.get(at) == Some(&b'"') {
            self.pos = at + 1;
            return Ok(self.plain(start, raw));
        }
        // Escapes: build the bytes in the scratch buffer.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(raw);
        self.pos = at;
        let result = self.escaped_tail(&mut buf);
        let s = result.map(|()| lossy_text(&buf));
        self.scratch = buf;
        s
    }

    /// At a backslash inside a string: decode until the closing quote.
    fn escaped_tail(&mut self, buf: &mut Vec<u8>) -> R<()> {
        loop {
            match self.peek().ok_or(Bad)? {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.peek().ok_or(Bad)?;
                    self.pos += 1;
                    match c {
                        b'"' | b'\\' | b'/' => buf.push(c),
                        b'n' => buf.push(b'\n'),
                        b't' => buf.push(b'\t'),
                        b'r' => buf.push(b'\r'),
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0C),
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(Bad),
                    }
                }
                _ => {
                    let at = self.specials.next(self.b, self.pos).ok_or(Bad)?;
                    buf.extend_from_slice(self.b.get(self.pos..at).ok_or(Bad)?);
                    self.pos = at;
                }
            }
        }
    }

    fn hex4(&mut self) -> R<u32> {
        let h = self.b.get(self.pos..self.pos + 4).ok_or(Bad)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16).ok_or(Bad)?;
        }
        self.pos += 4;
        Ok(v)
    }

    /// After `\u`: one code point, combining a surrogate pair.
    fn unicode_escape(&mut self) -> R<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(self.pos..self.pos + 2) == Some(b"\\u") {
                let save = self.pos;
                self.pos += 2;
                let lo = self.hex4()?;
                if (0xDC00..0xE000).contains(&lo) {
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return Ok(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                // Not a low surrogate: it is decoded on its own next.
                self.pos = save;
            }
            return Ok(char::REPLACEMENT_CHARACTER);
        }
        Ok(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &[u8]) -> Vec<(Text, Value)> {
        parse_object(s, None, None).unwrap()
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn keys_in_order_with_duplicates() {
        let p = obj(br#" {"time":"a","vhost":"x","time":"b"} "#);
        assert_eq!(p, vec![("time".into(), s("a")), ("vhost".into(), s("x")), ("time".into(), s("b"))]);
        assert_eq!(obj(b"{}\n"), vec![]);
    }

    #[test]
    fn escapes_surrogates_and_invalid_utf8() {
        let p = obj(br#"{"a":"q\"b\\s\/n\nt\tu\u00e9\u3042","e":"\ud83d\ude00","lone":"x\ud800y","lo":"\udc00"}"#);
        assert_eq!(p[0].1, s("q\"b\\s/n\nt\tu\u{e9}\u{3042}"));
        assert_eq!(p[1].1, s("\u{1F600}"));
        assert_eq!(p[2].1, s("x\u{FFFD}y"));
        assert_eq!(p[3].1, s("\u{FFFD}"));
        let p = obj(b"{\"ua\":\"caf\xe9 \xff\",\"k\xff\":\"\\n\xe3\x81\x82\"}");
        assert_eq!(p[0].1, s("caf\u{FFFD} \u{FFFD}"));
        assert_eq!(p[1], ("k\u{FFFD}".into(), s("\n\u{3042}")));
        // A high surrogate followed by a non-low escape keeps the second char.
        assert_eq!(obj(br#"{"a":"\ud800\u0041"}"#)[0].1, s("\u{FFFD}A"));
    }

    #[test]
    fn numbers_literals_and_nesting() {
        let p = obj(br#"{"i":-42,"big":9223372036854775808,"f":0.5,"e":1e5,"E":-2.5E-1,"t":true,"f2":false,"n":null,"arr":[1,[2,{}]],"o":{"k":"v"}}"#);
        assert_eq!(p[0].1, Value::Int(-42));
        assert_eq!(p[1].1, Value::Float(9223372036854775808.0));
        assert_eq!(p[2].1, Value::Float(0.5));
        assert_eq!(p[3].1, Value::Float(100000.0));
        assert_eq!(p[4].1, Value::Float(-0.25));
        assert_eq!(p[5].1, Value::Bool(true));
        assert_eq!(p[6].1, Value::Bool(false));
        assert_eq!(p[7].1, Value::Null);
        assert_eq!(
            p[8].1,
            Value::Array(vec![Value::Int(1), Value::Array(vec![Value::Int(2), Value::Map(Map::new())])])
        );
        let mut inner = Map::new();
        inner.push("k", s("v"));
        assert_eq!(p[9].1, Value::Map(inner));
    }

    #[test]
    fn numbers_from_digits_agree_with_the_standard_parser() {
        let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300_000 {
            let int_len = 1 + next() % 20;
            let frac_len = next() % 17;
            let mut t = String::new();
            if next() % 3 == 0 {
                t.push('-');
            }
            for _ in 0..int_len {
                t.push((b'0' + (next() % 10) as u8) as char);
            }
            if frac_len > 0 {
                t.push('.');
                for _ in 0..frac_len {
                    t.push((b'0' + (next() % 10) as u8) as char);
                }
            }
            let want = match t.parse::<i64>() {
                Ok(i) if frac_len == 0 => Value::Int(i),
                _ => Value::Float(t.parse::<f64>().unwrap()),
            };
            let got = parse_value(t.as_bytes()).unwrap();
            match (&got, &want) {
                (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{t}"),
                _ => assert_eq!(got, want, "{t}"),
            }
        }
        // Short decimals of access logs, exhaustively at millisecond and microsecond precision.
        for ms in 0..200_000u32 {
            for t in [format!("{}.{:03}", ms / 1000, ms % 1000), format!("0.{ms:06}")] {
                let Value::Float(v) = parse_value(t.as_bytes()).unwrap() else { panic!("{t}") };
                assert_eq!(v.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
            }
        }
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(parse_object(b"[1,2]", None, None), Err(ParseFailure::NotAnObject));
        assert_eq!(parse_object(b" \"str\" ", None, None), Err(ParseFailure::NotAnObject));
        assert_eq!(parse_object(b"42", None, None), Err(ParseFailure::NotAnObject));
        for bad in [
            &b"{\"a\":1}{\"b\":2}"[..],
            b"",
            b"   ",
            b"garbage",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":\"unterminated}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\\u12\"}",
            b"{\"a\":-}",
            b"{\"a\":1.}",
            b"{\"a\":tru}",
            b"{a:1}",
            b"[1,2",
        ] {
            assert_eq!(
                parse_object(bad, None, None),
                Err(ParseFailure::InvalidJson),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn decoding_some_keys_accepts_and_refuses_like_decoding_all() {
        let keep = KeySet::new(["uri", "a", "k\u{e9}", ""]);
        let seeds: [&[u8]; 6] = [
            br#"{"time":"2026-11-23T16:30:00+09:00","uri":"/a?b=\"c\"","status":200,"rt":0.012,"a":[1,{"x":"y"}]}"#,
            br#"{"k\u00e9":"v\ud83d\ude00","o":{"uri":"nested"},"uri":"x","uri":"dup","n":null,"t":true,"f":false}"#,
            br#" { "" : "" , "e" : -1.5E+3 , "s" : "\\\/\b\f\n\r\t" , "a" : { } , "z" : [ ] } "#,
            b"{\"raw\":\"caf\xe9\",\"uri\":\"\xff\",\"k\xc3\xa9\":1}",
            br#"{"deep":[[[[[[[[{"a":[[[["x"]]]]}]]]]]]]],"a":"\u12ab\uD800\u0041"}"#,
            br#"{"user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0","a":1}"#,
        ];
        let alphabet = b"\"\\{}[],:0123456789-+.eEu aA\xe9\xff";
        // Remembered key orders: one per seed (near misses of the last
        // input, so mostly hits), one for all (the order changes at each).
        let mut per_seed: Vec<(KeyOrder, KeyOrder)> = seeds.iter().map(|_| Default::default()).collect();
        let mut shared = KeyOrder::default();
        let mut i = 0;
        let checked = crate::testing::near_misses(&seeds, alphabet, 0x5EED_0FC0_FFEE, 200_000, |input| {
            let full = parse_object(input, None, None);
            let part = parse_object(input, Some(&keep), None);
            let (all_order, keep_order) = &mut per_seed[i % seeds.len()];
            i += 1;
            let shown = String::from_utf8_lossy(input);
            assert_eq!(parse_object(input, None, Some(all_order)), full, "{shown}");
            assert_eq!(parse_object(input, Some(&keep), Some(keep_order)), part, "{shown}");
            assert_eq!(parse_object(input, Some(&keep), Some(&mut shared)), part, "{shown}");
            match (&full, &part) {
                (Ok(f), Ok(p)) => {
                    let want: Vec<_> = f.iter().filter(|(k, _)| keep.contains(k.as_bytes())).cloned().collect();
                    assert_eq!(*p, want, "{}", String::from_utf8_lossy(input));
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(input)),
                _ => panic!("{}: {full:?} vs {part:?}", String::from_utf8_lossy(input)),
            }
            if let Ok(text) = std::str::from_utf8(input) {
                assert_eq!(parse_object_str(text, Some(&keep), None), part);
                assert_eq!(parse_object_str(text, Some(&keep), Some(&mut shared)), part);
            }
            full.is_ok()
        });
        // Both outcomes are exercised.
        assert!(checked[0] > 20_000 && checked[1] > 20_000, "{checked:?}");
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse_object(ok.as_bytes(), None, None).is_ok());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(parse_object(deep.as_bytes(), None, None), Err(ParseFailure::InvalidJson));
        let huge = "[".repeat(100_000);
        assert_eq!(parse_object(huge.as_bytes(), None, None), Err(ParseFailure::InvalidJson));
        // The same limit when the deep value is only checked, not built.
        let keep = KeySet::new(["b"]);
        assert!(parse_object(ok.as_bytes(), Some(&keep), None).is_ok());
        assert_eq!(parse_object(deep.as_bytes(), Some(&keep), None), Err(ParseFailure::InvalidJson));
        let deep_map = format!("{{\"a\":{}1{}}}", "{\"k\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(parse_object(deep_map.as_bytes(), Some(&keep), None), Err(ParseFailure::InvalidJson));
        assert_eq!(
            parse_object(format!("{{\"a\":{huge}}}").as_bytes(), Some(&keep), None),
            Err(ParseFailure::InvalidJson)
        );
    }
}
