//! Byte comparisons 16 at a time: SSE2 on x86-64 (every x86-64 target has
//! it), a byte loop elsewhere. The result is a bit mask, bit `i` for byte
//! `i`, exact in every bit (unlike [`crate::swar`]'s, which is exact up to
//! its lowest match).

/// Bytes of `chunk` equal to `a` or to `b`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn eq2(chunk: &[u8; 16], a: u8, b: u8) -> u16 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: SSE2 is enabled for this build (the cfg above), and the load
    // reads the 16 bytes of `chunk`, unaligned.
    let bits = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let a = _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8));
        let b = _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        _mm_movemask_epi8(_mm_or_si128(a, b))
    };
    bits as u16
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) use eq2_bytes as eq2;

/// [`eq2`] a byte at a time: other targets, and the reference for tests.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline]
pub(crate) fn eq2_bytes(chunk: &[u8; 16], a: u8, b: u8) -> u16 {
    chunk.iter().enumerate().fold(0, |m, (i, &c)| m | (u16::from(c == a || c == b) << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_byte_loop() {
        let mut next = crate::testing::xorshift(0x0BAD_CAFE_0000_0001);
        for _ in 0..50_000 {
            let pick = |x: u64| [b'"', b'\\', b'a', 0x80 | b'"', 0xDC, 0, 0xFF, 7][(x % 8) as usize];
            let mut chunk = [0u8; 16];
            chunk.iter_mut().for_each(|c| *c = pick(next()));
            let (a, b) = (pick(next()), pick(next()));
            assert_eq!(eq2(&chunk, a, b), eq2_bytes(&chunk, a, b), "{chunk:?} {a} {b}");
        }
    }
}
