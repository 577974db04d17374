//! Fluent Bit's two stock syslog regexes (`syslog-rfc3164` and
//! `syslog-rfc3164-local` of its parsers.conf, which the Istio sidecar
//! config uses verbatim) matched by hand instead of by the regex engine.
//!
//! The regex engine spent ~12,000 instructions a record on the ~60-byte
//! header (a bounded backtracker for the captures); this matcher follows
//! the same leftmost-first semantics in one pass. Every `[^ ]*` of the
//! pattern is followed by a mandatory space, so only its longest run can
//! match; the one real choice is ` {1,2}` (two spaces first, then one);
//! everything after the last mandatory space always matches. The pattern
//! runs in multi-line mode (`^` at any line start), so each line start is
//! tried in turn. The tests compare it with the regex engine on random and
//! mutated headers.

/// Fluent Bit's stock patterns, as written in its parsers.conf.
pub(crate) const RFC3164: &str = r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$";
pub(crate) const RFC3164_LOCAL: &str = r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$";

/// Which of the two stock patterns: they differ only by the `host` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StockSyslog {
    pub host: bool,
}

/// Byte ranges of the groups of one match; `end` is where the message
/// (the rest of the line) starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Groups {
    pub pri: (usize, usize),
    pub time: (usize, usize),
    pub host: Option<(usize, usize)>,
    pub ident: (usize, usize),
    pub pid: Option<(usize, usize)>,
    pub end: usize,
}

fn run(s: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    s.get(from..).map_or(0, |rest| rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len()))
}

/// The bytes of the patterns' ident class `[a-zA-Z0-9_\/\.\-]`, by byte
/// value: a table read instead of four comparisons and a range test a
/// byte (a sidecar ident is ~30 bytes).
static IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'/' || c == b'.' || c == b'-';
        b += 1;
    }
    t
};

fn non_space(s: &[u8], from: usize) -> usize {
    from + run(s, from, |b| b != b' ')
}

fn is(s: &[u8], at: usize, c: u8) -> bool {
    s.get(at) == Some(&c)
}

/// `<digits>` at `p`: the digits' range.
fn pri_at(s: &[u8], p: usize) -> Option<(usize, usize)> {
    if !is(s, p, b'<') {
        return None;
    }
    let digits = run(s, p + 1, |b| b.is_ascii_digit());
    let gt = p + 1 + digits;
    (digits > 0 && is(s, gt, b'>')).then_some((p + 1, gt))
}

impl StockSyslog {
    /// The first match in `s`, trying each line start. Linear: an attempt
    /// that gets past `<pri>` and fails ran out of spaces before the end of
    /// the input, and every later line start would need as many after a
    /// later position, so the search stops there (trying on would scan the
    /// same tail again from each line: quadratic on a datagram of short
    /// lines without spaces).
    pub fn find(self, s: &[u8]) -> Option<Groups> {
        let mut start = 0;
        loop {
            if let Some(pri) = pri_at(s, start) {
                return self.after_pri(s, pri);
            }
            start += memchr::memchr(b'\n', s.get(start..)?)? + 1;
        }
    }

    /// The rest of a match whose `<pri>` is `pri`.
    fn after_pri(self, s: &[u8], pri: (usize, usize)) -> Option<Groups> {
        let gt = pri.1;
        let t0 = gt + 1;
        let first = non_space(s, t0);
        let spaces = run(s, first, |b| b == b' ').min(2);
        // ` {1,2}` is greedy: two spaces first, one if that fails later.
        (1..=spaces).rev().find_map(|n| {
            let mut q = non_space(s, first + n);
            if !is(s, q, b' ') {
                return None;
            }
            q = non_space(s, q + 1);
            let time = (t0, q);
            if !is(s, q, b' ') {
                return None;
            }
            q += 1;
            let host = if self.host {
                let h = (q, non_space(s, q));
                if !is(s, h.1, b' ') {
                    return None;
                }
                q = h.1 + 1;
                Some(h)
            } else {
                None
            };
            // From here on every part matches (or is optional).
            let ident = (q, q + run(s, q, |b| IDENT[usize::from(b)]));
            q = ident.1;
            let mut pid = None;
            if is(s, q, b'[') {
                let d = run(s, q + 1, |b| b.is_ascii_digit());
                if d > 0 && is(s, q + 1 + d, b']') {
                    pid = Some((q + 1, q + 1 + d));
                    q += d + 2;
                }
            }
            // `(?:[^:]*:)?`: up to and including the next colon, if any
            // (across newlines: `[^:]` matches them).
            if let Some(c) = memchr::memchr(b':', s.get(q..).unwrap_or_default()) {
                q += c + 1;
            }
            q += run(s, q, |b| b == b' ');
            Some(Groups { pri, time, host, ident, pid, end: q })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::regex::RegexParser;
    use super::*;

    #[test]
    fn the_ident_table_is_the_class() {
        for b in 0..=255u8 {
            let class = b.is_ascii_alphanumeric() || b"_/.-".contains(&b);
            assert_eq!(IDENT[usize::from(b)], class, "{b}");
        }
    }

    fn parsers(pattern: &str) -> (RegexParser, RegexParser) {
        let fast = RegexParser::compile(pattern, true).unwrap();
        assert!(fast.uses_stock_syslog(), "{pattern}");
        let generic = RegexParser::compile_generic(pattern, true).unwrap();
        assert!(!generic.uses_stock_syslog());
        (fast, generic)
    }

    #[test]
    fn headers_nginx_sends() {
        let (fast, _) = parsers(RFC3164_LOCAL);
        let got = fast.fields(b"<190>Nov  3 16:30:00 nginx: {\"a\":1}").unwrap();
        let want: Vec<(crate::record::Text, crate::record::Value)> = vec![
            ("pri".into(), "190".into()),
            ("time".into(), "Nov  3 16:30:00".into()),
            ("ident".into(), "nginx".into()),
            ("message".into(), "{\"a\":1}".into()),
        ];
        assert_eq!(got, want);
        let (fast, _) = parsers(RFC3164);
        let got = fast.fields(b"<13>Nov 23 16:30:00 gw-7d9f app[42]: up").unwrap();
        assert_eq!(got[2], ("host".into(), "gw-7d9f".into()));
        assert_eq!(got[4], ("pid".into(), "42".into()));
    }

    /// The hand matcher and the regex engine give the same fields.
    fn agree(fast: &RegexParser, generic: &RegexParser, line: &[u8]) {
        assert_eq!(fast.fields(line), generic.fields(line), "{:?}", String::from_utf8_lossy(line));
    }

    #[test]
    fn many_short_lines_without_spaces_are_searched_once() {
        // Each line start has a `<pri>`; none has the spaces that follow.
        let line = "<1>abc\n".repeat(40_000);
        for pattern in [RFC3164, RFC3164_LOCAL] {
            let (fast, generic) = parsers(pattern);
            agree(&fast, &generic, line.as_bytes());
            let mut late = line.clone();
            late.push_str("<2>Nov 3 16:30:00 h a: late");
            agree(&fast, &generic, late.as_bytes());
        }
    }

    #[test]
    fn agrees_with_the_regex_engine_on_mutated_and_random_headers() {
        let mut next = crate::testing::xorshift(0x2545_F491_4F6C_DD1D);
        // Bytes the patterns care about, and some they do not.
        const ALPHABET: &[&[u8]] = &[
            b"<",
            b">",
            b"1",
            b"90",
            b" ",
            b"  ",
            b"\n",
            b":",
            b"[",
            b"]",
            b"[7]",
            b"a",
            b"Z",
            b".",
            b"-",
            b"_",
            b"/",
            b"x",
            b"\xc3\xa9",
            b"\xe3\x81\x82",
            b"\t",
            b"\r",
            b"\xff",
        ];
        const SEEDS: &[&[u8]] = &[
            b"<190>Nov 23 16:30:00 istio-gw nginx: {\"a\":1}",
            b"<190>Nov  3 16:30:00 nginx: {\"a\":1}",
            b"<13>Nov 23 16:30:00 host app[42]: msg: with: colons",
            b"<13>Nov 23 16:30:00 host app[x]: c",
            b"<13>Nov  3 16:30:00 host\n<14>Nov 3 16:30:01 h2 a: b",
            b"junk\n<13>Nov 23 16:30:00 h a:   spaced",
        ];
        for pattern in [RFC3164, RFC3164_LOCAL] {
            let (fast, generic) = parsers(pattern);
            for seed in SEEDS {
                agree(&fast, &generic, seed);
            }
            for _ in 0..20_000 {
                // A seed with a few bytes replaced, inserted or removed.
                let mut line = SEEDS[next() as usize % SEEDS.len()].to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = next() as usize % (line.len() + 1);
                    let piece = ALPHABET[next() as usize % ALPHABET.len()];
                    match next() % 3 {
                        0 if at < line.len() => {
                            line.remove(at);
                        }
                        1 if at < line.len() => {
                            line.splice(at..at + 1, piece.iter().copied());
                        }
                        _ => {
                            line.splice(at..at, piece.iter().copied());
                        }
                    }
                }
                agree(&fast, &generic, &line);
                // And a line of random pieces.
                let mut line = b"<".to_vec();
                for _ in 0..next() % 24 {
                    line.extend_from_slice(ALPHABET[next() as usize % ALPHABET.len()]);
                }
                agree(&fast, &generic, &line);
            }
        }
    }
}
