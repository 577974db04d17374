//! The fast path of `printf("%.16g", v)` (the JSON writer's float format,
//! see `print::push_g16`). Exact formatting through `core::fmt` cost ~3,700
//! instructions a value, a seventh of the default pipeline's record.
//!
//! ryu gives the shortest decimal `S` that reads back as `v`. When `S` has
//! at most 16 significant digits, `%.16g` prints `S` exactly when `v` lies
//! within half a 16-digit step of it: `|v − S| < q/2` with `q = 10^(X−15)`
//! (`X` the decimal exponent of `S`; a tenth of that step when `S` is a
//! power of ten and `v` below it, where the steps are those of the decade
//! below). That is not always so (an ulp of a double is up to 2.2 such
//! steps near 9.99…·10^X: `1e-11` prints `9.999999999999999e-12`), so it is checked in
//! integers: with `v = M·2^E` (`E < 0`: `v` is not a large integer) and
//! `S = T·q` (`T` the 16-digit integer of `S`), the condition is
//! `|2·M·10^m − 2·T·2^−E| < 2^−E`, `m = 15 − X`. Values where that does not
//! fit in a `u128` (below ~1e-7), 17-digit shortest forms and exact ties
//! are left to the exact path.

/// Append `%.16g` of `v` if the fast path applies; `false` leaves `out`
/// untouched.
pub(crate) fn push_g16_short(out: &mut Vec<u8>, v: f64) -> bool {
    // Zero, subnormals, infinities and NaN take the exact path.
    let Some((mantissa, neg_e2)) = super::print::binary(v).filter(|&(_, k)| (1..=126).contains(&k)) else {
        return false;
    };
    let mut buf = ryu::Buffer::new();
    let Some(s) = Shortest::read(buf.format_finite(v).as_bytes()) else {
        return false;
    };
    let m = 15 - s.exp;
    if !(0..=38).contains(&m) {
        return false;
    }
    let t = s.digits_u128() * 10u128.pow(16 - s.n as u32);
    let half_step = 1u128 << neg_e2;
    let v_scaled = 10u128.checked_pow(m as u32).and_then(|p| (2 * mantissa).checked_mul(p));
    let s_scaled = (2 * t).checked_mul(half_step);
    let (Some(a), Some(b)) = (v_scaled, s_scaled) else {
        return false;
    };
    let off = a.abs_diff(b);
    // Just below a power of ten the 16-digit step is a tenth of `q`.
    let power_of_ten_from_below = s.n == 1 && s.digits[0] == 1 && a < b;
    let within =
        if power_of_ten_from_below { off.checked_mul(10).is_some_and(|o| o < half_step) } else { off < half_step };
    if !within {
        return false;
    }
    s.write(out);
    true
}

/// ryu's output as significant digits and a decimal exponent.
struct Shortest {
    negative: bool,
    digits: [u8; 17],
    /// Significant digits, without leading or trailing zeros (1..=16).
    n: usize,
    /// The decimal exponent of the first digit (`1.2e-3`: -3).
    exp: i32,
}

impl Shortest {
    /// Parse `-?digits[.digits][e-?digits]`; `None` for more than 16
    /// significant digits.
    fn read(s: &[u8]) -> Option<Shortest> {
        let (negative, s) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, s),
        };
        let (mant, e) = match s.iter().position(|&b| b == b'e') {
            Some(i) => (&s[..i], std::str::from_utf8(&s[i + 1..]).ok()?.parse::<i32>().ok()?),
            None => (s, 0),
        };
        let mut r = Shortest { negative, digits: [0; 17], n: 0, exp: 0 };
        // Position of the last digit kept, relative to the decimal point.
        let (mut int_digits, mut dot) = (0i32, false);
        let mut leading_fraction_zeros = 0i32;
        for &b in mant {
            match b {
                b'.' => dot = true,
                b'0' if r.n == 0 => {
                    if dot {
                        leading_fraction_zeros += 1;
                    }
                }
                b'0'..=b'9' => {
                    *r.digits.get_mut(r.n)? = b - b'0';
                    r.n += 1;
                    if !dot {
                        int_digits += 1;
                    }
                }
                _ => return None,
            }
        }
        while r.n > 0 && r.digits[r.n - 1] == 0 {
            r.n -= 1;
        }
        if r.n == 0 || r.n > 16 {
            return None;
        }
        r.exp = e + if int_digits > 0 { int_digits - 1 } else { -leading_fraction_zeros - 1 };
        Some(r)
    }

    fn digits_u128(&self) -> u128 {
        self.digits[..self.n].iter().fold(0u128, |acc, &d| acc * 10 + u128::from(d))
    }

    /// `%.16g` of this value (already known to be the 16-digit rounding).
    fn write(&self, out: &mut Vec<u8>) {
        let digits = &self.digits[..self.n];
        let ascii = |d: &u8| b'0' + d;
        if self.negative {
            out.push(b'-');
        }
        if !(-4..16).contains(&self.exp) {
            out.push(ascii(&digits[0]));
            if digits.len() > 1 {
                out.push(b'.');
                out.extend(digits[1..].iter().map(ascii));
            }
            let e = self.exp.unsigned_abs();
            out.extend_from_slice(if self.exp < 0 { b"e-" } else { b"e+" });
            if e < 10 {
                out.push(b'0');
            }
            let mut b = itoa::Buffer::new();
            out.extend_from_slice(b.format(e).as_bytes());
        } else if self.exp >= 0 {
            let int = self.exp as usize + 1;
            out.extend(digits.iter().take(int).map(ascii));
            out.resize(out.len() + int.saturating_sub(digits.len()), b'0');
            if digits.len() > int {
                out.push(b'.');
                out.extend(digits[int..].iter().map(ascii));
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-self.exp - 1) as usize, b'0');
            out.extend(digits.iter().map(ascii));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::print::push_g16_exact;
    use super::*;

    fn check(v: f64) -> bool {
        let mut fast = Vec::new();
        let taken = push_g16_short(&mut fast, v);
        if taken {
            let mut exact = Vec::new();
            push_g16_exact(&mut exact, v);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(exact).unwrap(),
                "{v:e} ({:#x})",
                v.to_bits()
            );
        }
        taken
    }

    #[test]
    fn the_fast_path_prints_what_printf_prints() {
        // Access-log figures: every millisecond and microsecond up to 200 s.
        let mut exact = Vec::new();
        for i in 1..200_000u32 {
            let ms = f64::from(i) / 1000.0;
            if !check(ms) {
                exact.push(ms);
            }
            check(f64::from(i) / 1_000_000.0);
            check(-f64::from(i) * 1.7);
        }
        // Left to the exact path: only those whose 16-digit rounding is not
        // the shortest form (`99.999` prints `99.99900000000001`): ~6%.
        for v in &exact {
            let mut out = Vec::new();
            push_g16_exact(&mut out, *v);
            assert_ne!(String::from_utf8(out).unwrap(), format!("{v}"), "{v} could have been fast");
        }
        assert!(exact.len() < 20_000, "{} of 200,000 milliseconds took the exact path", exact.len());
        // Random doubles (mostly outside the fast path's range), and random
        // decimals of 1 to 17 digits at exponents -12..20.
        let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut taken = 0;
        for _ in 0..300_000 {
            let v = f64::from_bits(next());
            check(v);
            let digits = next() % 10u64.pow(1 + (next() % 17) as u32);
            let v: f64 = format!("{digits}e{}", (next() % 33) as i64 - 12 - 17).parse().unwrap();
            taken += usize::from(check(v));
        }
        assert!(taken > 100_000, "the fast path should take most decimals ({taken})");
        // Values where an ulp is more than a 16-digit step, and 17-digit ones.
        for v in [9.999999999999999, 0.30000000000000004, 9.87654321098765, 99.99999999999997, 0.1 + 0.2] {
            check(v);
        }
        // Powers of ten and their neighbours: below one, the steps are the
        // decade below's (`1e-11` prints `9.999999999999999e-12`).
        for x in -25..20 {
            let p: f64 = format!("1e{x}").parse().unwrap();
            let mut v = p;
            for _ in 0..8 {
                v = v.next_down();
            }
            for _ in 0..17 {
                check(v);
                check(-v);
                v = v.next_up();
            }
        }
    }
}
