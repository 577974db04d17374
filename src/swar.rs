//! Byte searches 8 bytes at a time in a `u64` ("SIMD within a register"),
//! for the short strings of access logs where a vector search costs more to
//! set up than it saves. Masks have the high bit set in each matching byte;
//! a borrow only runs upwards from a true match, so bits above the lowest
//! may be false but the lowest set bit is always exact: [`first`] is.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes at `at`, little-endian (byte `at` lowest).
#[inline]
pub(crate) fn load(bytes: &[u8], at: usize) -> Option<u64> {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes.get(at..at + 8)?);
    Some(u64::from_le_bytes(word))
}

/// Bytes of `w` equal to `b`.
#[inline]
pub(crate) fn eq(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Bytes of `w` below `n` (`n <= 0x80`).
#[inline]
pub(crate) fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH
}

/// Index of the first matching byte of a non-zero mask.
#[inline]
pub(crate) fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// `a == b`, inline: for short keys, where a `memcmp` call costs more than
/// the comparison (two overlapping loads of up to 16 bytes each side cover
/// 4..=32 bytes).
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        s.get(at..at + N).and_then(|w| w.try_into().ok()).unwrap_or([0; N])
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a == b,
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        17..=32 => word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_agrees_with_slice_equality_at_every_length_and_position() {
        let a: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=a.len() {
            let x = &a[..n];
            assert!(same(x, &a[..n]), "{n}");
            for at in 0..n {
                let mut y = x.to_vec();
                y[at] ^= 0x20;
                assert!(!same(x, &y), "{n} differs at {at}");
            }
            if n > 0 {
                assert!(!same(x, &a[..n - 1]), "{n} against a shorter one");
            }
        }
    }
}
