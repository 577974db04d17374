//! Helpers shared by the unit tests.

/// Deterministic pseudo-random numbers (xorshift64) for the property tests
/// that hold a fast path against a reference on many generated inputs.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Up to three random edits of `input` (a byte removed, replaced or
/// inserted), the new bytes taken from `alphabet`: near misses of a valid
/// seed, for holding a fast path against its reference.
pub(crate) fn mutate(input: &mut Vec<u8>, alphabet: &[u8], next: &mut impl FnMut() -> u64) {
    for _ in 0..(next() % 4) {
        let at = (next() as usize) % (input.len() + 1);
        let c = alphabet[(next() as usize) % alphabet.len()];
        match next() % 3 {
            0 if at < input.len() => {
                input.remove(at);
            }
            1 if at < input.len() => input[at] = c,
            _ => input.insert(at, c),
        }
    }
}
