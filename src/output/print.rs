//! Byte-exact re-implementations of the C printers Fluent Bit 1.8.13's
//! `file` output relies on: `printf("%f")`, `printf("%.16g")` and
//! msgpack-c's `msgpack_object_print` (used by the csv, ltsv and template
//! formats for everything that is not a plain string).
//!
//! Invariant: every function appends to a `Vec<u8>` and never fails; Rust's
//! exact float formatting rounds ties to even like glibc, so `{:.6}` is
//! `%f` except for the spelling of NaN.

use crate::record::{Map, Timestamp, Value};
use std::io::Write;

/// `printf("%f", v)`: six decimals, glibc spelling of the non-finite values.
pub(crate) fn push_f(out: &mut Vec<u8>, v: f64) {
    push_fixed(out, v, 6);
}

/// An event time as Fluent Bit prints it: `printf("%f", secs + nanos / 1e9)`.
/// Whole microseconds below 2^32 seconds print from the integers (that
/// double lies within 2^-21 s of the exact time, so `%f` rounds back to it).
pub(crate) fn push_time(out: &mut Vec<u8>, t: Timestamp) {
    if (0..1 << 32).contains(&t.secs) && t.nanos % 1000 == 0 && t.nanos < 1_000_000_000 {
        let micros = t.nanos / 1000;
        out.extend_from_slice(itoa::Buffer::new().format(t.secs).as_bytes());
        out.push(b'.');
        let mut digits = [b'0'; 6];
        let mut m = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (m % 10) as u8;
            m /= 10;
        }
        out.extend_from_slice(&digits);
    } else {
        push_f(out, t.as_f64());
    }
}

/// `printf("%.{prec}f", v)`.
pub(crate) fn push_fixed(out: &mut Vec<u8>, v: f64, prec: usize) {
    if !push_non_finite(out, v) && !push_fixed_exact(out, v, prec) {
        let _ = write!(out, "{v:.prec$}");
    }
}

/// The fast path of [`push_fixed`] (formatting through `core::fmt` cost
/// ~700 instructions a value): for a normal double `v = M·2^-k` with
/// `1 <= k <= 127` (no integer part beyond 2^53, nothing below ~1e-23) and
/// up to 18 decimals, `v·10^prec` is `M·10^prec / 2^k` exactly, rounded
/// half to even (as glibc and Rust round ties) in `u128`; then printed as
/// integer and zero-padded fraction. Anything else takes the exact path.
fn push_fixed_exact(out: &mut Vec<u8>, v: f64, prec: usize) -> bool {
    let Some((mantissa, k)) = binary(v).filter(|&(_, k)| (1..=127).contains(&k) && prec <= 18) else {
        return false;
    };
    let scale = 10u64.pow(prec as u32);
    // < 2^53 · 10^18 < 2^113.
    let scaled = mantissa * u128::from(scale);
    let (q, rem, half) = (scaled >> k, scaled & ((1u128 << k) - 1), 1u128 << (k - 1));
    let rounded = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let (int, frac) = match u64::try_from(rounded) {
        Ok(r) => (u128::from(r / scale), r % scale),
        Err(_) => (rounded / u128::from(scale), (rounded % u128::from(scale)) as u64),
    };
    out.extend_from_slice(itoa::Buffer::new().format(int).as_bytes());
    if prec > 0 {
        out.push(b'.');
        let mut digits = [b'0'; 18];
        let mut f = frac;
        for d in digits[..prec].iter_mut().rev() {
            *d = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&digits[..prec]);
    }
    true
}

/// A normal double as `±M·2^-k` (`M` with its implicit leading bit);
/// `None` for zero, subnormals, infinities and NaN.
pub(crate) fn binary(v: f64) -> Option<(u128, i32)> {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 || biased == 0x7ff {
        return None;
    }
    Some((u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52)), 1075 - biased))
}

/// `printf("%.16g", v)`: 16 significant digits, trailing zeros removed,
/// exponent form when the exponent is below -4 or at least 16. Most values
/// take the fast path of `g16.rs`.
pub(crate) fn push_g16(out: &mut Vec<u8>, v: f64) {
    if !super::g16::push_g16_short(out, v) {
        push_g16_exact(out, v);
    }
}

/// [`push_g16`] by exact formatting.
pub(crate) fn push_g16_exact(out: &mut Vec<u8>, v: f64) {
    const P: i32 = 16;
    if push_non_finite(out, v) {
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // The exponent after rounding to P significant digits decides the style.
    let sci = format!("{v:.*e}", (P - 1) as usize);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    if !(-4..P).contains(&exp) {
        out.extend_from_slice(strip_zeros(mantissa).as_bytes());
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else {
        let fixed = format!("{v:.*}", (P - 1 - exp) as usize);
        out.extend_from_slice(strip_zeros(&fixed).as_bytes());
    }
}

/// Drop trailing fractional zeros and a bare trailing point (`%g` style).
fn strip_zeros(s: &str) -> &str {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.')
}

/// glibc prints `nan`, `-nan`, `inf`, `-inf`.
fn push_non_finite(out: &mut Vec<u8>, v: f64) -> bool {
    if v.is_finite() {
        return false;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    out.extend_from_slice(if v.is_nan() { b"nan" } else { b"inf" });
    true
}

pub(crate) fn push_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// msgpack-c's `msgpack_object_print`: `nil`, `true`, integers, floats as
/// `%f`, strings in double quotes with no escaping at all, arrays as
/// `[a, b]`, maps as `{k=>v, k2=>v2}`.
pub(crate) fn push_object(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"nil"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_int(out, *i),
        Value::Float(f) => push_f(out, *f),
        Value::Str(s) => push_quoted(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_object(out, item);
            }
            out.push(b']');
        }
        Value::Map(m) => push_map(out, m),
    }
}

fn push_map(out: &mut Vec<u8>, m: &Map) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        push_quoted(out, k);
        out.extend_from_slice(b"=>");
        push_object(out, v);
    }
    out.push(b'}');
}

/// A string as msgpack-c prints it: quoted, not escaped.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn percent_f_matches_glibc() {
        assert_eq!(s(|o| push_f(o, 1732379400.0)), "1732379400.000000");
        assert_eq!(s(|o| push_f(o, 0.005)), "0.005000");
        assert_eq!(s(|o| push_f(o, 1.0000005)), "1.000001");
        assert_eq!(s(|o| push_f(o, -2.5)), "-2.500000");
        assert_eq!(s(|o| push_f(o, f64::NAN)), "nan");
        assert_eq!(s(|o| push_f(o, f64::NEG_INFINITY)), "-inf");
        assert_eq!(s(|o| push_fixed(o, 3.0, 1)), "3.0");
    }

    #[test]
    fn fixed_fast_path_agrees_with_exact_formatting() {
        // Values of every magnitude the fast path takes, and around its bounds.
        let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut values = vec![0.0, -0.0, 0.012, 0.5, 1.0000005, 2.675, 4294967295.5, 4294967296.25, 1e-7, 123.0];
        for _ in 0..200_000 {
            let x = next();
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let scale = 10f64.powi((x % 16) as i32 - 6);
            let v = mantissa * scale * if x & 1 == 0 { 1.0 } else { -1.0 };
            values.push(v);
            // Short decimals (request times) take the fast path.
            values.push((x % 100_000) as f64 / 1000.0);
        }
        for v in values {
            for prec in [1, 3, 6] {
                let mut fast = Vec::new();
                push_fixed(&mut fast, v, prec);
                assert_eq!(String::from_utf8(fast).unwrap(), format!("{v:.prec$}"), "{v:e} prec {prec}");
            }
        }
    }

    #[test]
    fn event_times_print_as_percent_f_of_the_float() {
        let mut next = crate::testing::xorshift(0x2545_F491_4F6C_DD1D);
        let mut times =
            vec![Timestamp::new(0, 0), Timestamp::new(1732379400, 0), Timestamp::new(4294967295, 999_999_000)];
        times.extend([Timestamp::new(-5, 0), Timestamp::new(1732379400, 123_456_789), Timestamp::new(1 << 33, 5000)]);
        for _ in 0..100_000 {
            let x = next();
            times.push(Timestamp::new((x >> 32) as i64, (x % 1_000_000) as u32 * 1000));
        }
        for t in times {
            let mut out = Vec::new();
            push_time(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{:.6}", t.as_f64()), "{t:?}");
        }
    }

    #[test]
    fn fixed_from_integers_agrees_with_exact_formatting() {
        let mut next = crate::testing::xorshift(0xD1B5_4A32_D192_ED03);
        let mut values: Vec<f64> =
            vec![0.5, 1.5, 2.5, 0.0078125, -0.0078125, 0.125, 1e-7, -1e-7, 0.0000005, 2.0f64.powi(52) + 0.5];
        for i in 0..100_000u32 {
            values.push(f64::from(i) / 1000.0);
            values.push(-f64::from(i) / 1_000_000.0);
            // Exact binary fractions: ties at every precision.
            values.push(f64::from(i) / 1024.0);
            values.push(f64::from_bits(next()));
            let digits = next() % 10u64.pow(1 + (next() % 17) as u32);
            values.push(format!("{digits}e{}", (next() % 40) as i64 - 30).parse().unwrap());
        }
        for v in values {
            for prec in [0usize, 1, 3, 6, 9, 18] {
                let mut fast = Vec::new();
                if push_fixed_exact(&mut fast, v, prec) {
                    assert_eq!(String::from_utf8(fast).unwrap(), format!("{v:.prec$}"), "{v:e} at {prec}");
                }
            }
        }
    }

    #[test]
    fn percent_g16_matches_glibc() {
        assert_eq!(s(|o| push_g16(o, 0.1)), "0.1");
        assert_eq!(s(|o| push_g16(o, 1.5)), "1.5");
        assert_eq!(s(|o| push_g16(o, 0.005)), "0.005");
        assert_eq!(s(|o| push_g16(o, 0.0001234)), "0.0001234");
        assert_eq!(s(|o| push_g16(o, 0.00001234)), "1.234e-05");
        assert_eq!(s(|o| push_g16(o, 1732379400.123456)), "1732379400.123456");
        assert_eq!(s(|o| push_g16(o, 1e20)), "1e+20");
        assert_eq!(s(|o| push_g16(o, 1.25e300)), "1.25e+300");
        assert_eq!(s(|o| push_g16(o, 2.0 / 3.0)), "0.6666666666666666");
        assert_eq!(s(|o| push_g16(o, 1234567890123456.7)), "1234567890123457");
        assert_eq!(s(|o| push_g16(o, 12345678901234567.0)), "1.234567890123457e+16");
        assert_eq!(s(|o| push_g16(o, -0.0)), "-0");
    }

    #[test]
    fn object_print_quotes_without_escaping() {
        let mut m = Map::new();
        m.push("k", Value::from("a\"b\tc"));
        m.push("n", Value::Null);
        let v = Value::Array(vec![
            Value::Int(-3),
            Value::Float(0.5),
            Value::Bool(true),
            Value::Map(m),
            Value::Array(vec![]),
            Value::Map(Map::new()),
        ]);
        assert_eq!(s(|o| push_object(o, &v)), "[-3, 0.500000, true, {\"k\"=>\"a\"b\tc\", \"n\"=>nil}, [], {}]");
    }
}
