//! Where the next `"` or `\` is: the only bytes a JSON string's scan stops
//! at. The input is classified 64 bytes at a time into a bit mask ([`crate::simd`]),
//! and the decoder, which only moves forward, asks for the next one from
//! its position. An nginx record (~650 bytes, ~40 strings) is classified
//! once, in 11 blocks, instead of searched string by string: finding the
//! end of a string is then a shift and a trailing-zero count. (Measured
//! and dropped: a 1 KiB window classified up front, b-native +170
//! instructions a record; 128-byte blocks in a `u128`, +150.)

/// The `"` and `\` bytes of one input, a 64-byte block at a time.
pub(super) struct Specials {
    /// Start of the classified block (a multiple of 64); `usize::MAX`
    /// before the first.
    base: usize,
    /// Bit `i`: the byte at `base + i` is `"` or `\`.
    mask: u64,
}

impl Specials {
    pub(super) fn new() -> Specials {
        Specials { base: usize::MAX, mask: 0 }
    }

    /// The first `"` or `\` of `b` at or after `from`.
    #[inline(always)]
    pub(super) fn next(&mut self, b: &[u8], from: usize) -> Option<usize> {
        if from & !63 == self.base {
            let m = self.mask & (!0u64 << (from & 63));
            if m != 0 {
                return Some(self.base + m.trailing_zeros() as usize);
            }
        }
        self.next_in_later_blocks(b, from)
    }

    /// [`Specials::next`] when the classified block has no answer.
    #[inline(never)]
    fn next_in_later_blocks(&mut self, b: &[u8], from: usize) -> Option<usize> {
        let mut base = from & !63;
        if base != self.base {
            self.classify(b, base)?;
        }
        let mut m = self.mask & (!0u64 << (from & 63));
        while m == 0 {
            base += 64;
            self.classify(b, base)?;
            m = self.mask;
        }
        Some(base + m.trailing_zeros() as usize)
    }

    /// Classify the block at `base`; `None` past the end of `b`.
    #[inline]
    fn classify(&mut self, b: &[u8], base: usize) -> Option<()> {
        let rest = b.get(base..).filter(|r| !r.is_empty())?;
        self.mask = match rest.first_chunk::<64>() {
            Some(block) => block_mask(block),
            None => {
                // The last, partial block: zero bytes are neither.
                let mut block = [0u8; 64];
                block[..rest.len()].copy_from_slice(rest);
                block_mask(&block)
            }
        };
        self.base = base;
        Some(())
    }
}

#[inline]
fn block_mask(block: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for i in 0..4 {
        if let Ok(part) = <&[u8; 16]>::try_from(&block[16 * i..16 * i + 16]) {
            mask |= u64::from(crate::simd::eq2(part, b'"', b'\\')) << (16 * i);
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use memchr::memchr2;

    #[test]
    fn agrees_with_memchr_from_every_position() {
        let mut next = crate::testing::xorshift(0xDEAD_BEEF_CAFE_F00D);
        for len in 0..200 {
            for _ in 0..40 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        let x = next();
                        // Mostly ordinary bytes (including 0x80.. and the
                        // neighbours of the targets), sometimes a target.
                        match x % 40 {
                            0 => b'"',
                            1 => b'\\',
                            2 => b'"' + 1,
                            3 => b'\\' - 1,
                            4 => 0x80 | (x >> 8) as u8,
                            5 => 0,
                            _ => b' ' + (x >> 16) as u8 % 90,
                        }
                    })
                    .collect();
                // Forward, as the decoder asks, with jumps of any length.
                let mut sp = Specials::new();
                let mut from = 0;
                while from <= len + 1 {
                    let want = s.get(from..).and_then(|r| memchr2(b'"', b'\\', r)).map(|n| from + n);
                    assert_eq!(sp.next(&s, from), want, "{s:?} from {from}");
                    from += 1 + (next() % 70) as usize;
                }
                // And from any position with a fresh cache.
                let from = (next() as usize) % (len + 2);
                let want = s.get(from..).and_then(|r| memchr2(b'"', b'\\', r)).map(|n| from + n);
                assert_eq!(Specials::new().next(&s, from), want);
            }
        }
    }
}
