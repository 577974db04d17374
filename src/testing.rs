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

/// Run `check` on `n` near misses of `seeds` (cycled, each [`mutate`]d
/// with bytes of `alphabet`, numbers from `xorshift(seed)`). `check`
/// asserts what it holds and says whether the reference accepted the
/// input; the counts of refused and accepted inputs come back, so a test
/// can require both kinds.
pub(crate) fn near_misses(
    seeds: &[&[u8]],
    alphabet: &[u8],
    seed: u64,
    n: usize,
    mut check: impl FnMut(&[u8]) -> bool,
) -> [usize; 2] {
    let mut next = xorshift(seed);
    let mut counts = [0usize; 2];
    for i in 0..n {
        let mut input = seeds[i % seeds.len()].to_vec();
        mutate(&mut input, alphabet, &mut next);
        counts[usize::from(check(&input))] += 1;
    }
    counts
}

/// Assert that a fast path and its reference both refuse `input` or both
/// give the same value; whether the reference accepted it.
pub(crate) fn same_outcome<T: PartialEq + std::fmt::Debug, E>(
    got: Result<T, E>,
    want: Result<T, E>,
    input: &[u8],
) -> bool {
    let shown = String::from_utf8_lossy(input);
    assert_eq!(got.is_ok(), want.is_ok(), "{shown}");
    let accepted = want.is_ok();
    if let (Ok(g), Ok(w)) = (got, want) {
        assert_eq!(g, w, "{shown}");
    }
    accepted
}
