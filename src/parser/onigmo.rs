//! Translation of Onigmo (Ruby syntax) patterns, as users write them in
//! Fluent Bit's `Regex` key, into the `regex` crate's syntax.
//!
//! Output invariants: every capturing group in the translated pattern is a
//! named group of the source, in source order (unnamed groups become
//! non-capturing, since only named groups become fields), so capture index
//! `i + 1` is `names[i]`. The pattern runs in multi-line mode because Ruby's
//! `^`/`$` are line anchors. Constructs the `regex` crate cannot express
//! (lookaround, backreferences, atomic groups, possessive quantifiers,
//! conditionals) are refused with an explanation rather than approximated.
//!
//! Differences handled: `\<` `\>` are literal `<` `>` in Onigmo (word
//! boundaries in Rust); `\h`/`\H` are hex digits; `\d \w \s` are ASCII-only
//! in Ruby; `\Z`; `\e`, `\0oo` octal; `/…/imx` wrapping with Ruby's `m`
//! meaning Rust's `s`; `{` that does not start a valid interval is literal.

/// A translated pattern and the field names of its capture groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Translated {
    pub pattern: String,
    pub names: Vec<String>,
}

const HEX: &str = "0-9a-fA-F";
const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = r"\t\n\x0B\x0C\r ";

/// Translate `src`; the error is a sentence for the `Regex` line.
pub(crate) fn translate(src: &str) -> Result<Translated, String> {
    translate_with(src, false)
}

/// Translate a pattern whose groups are read by number (rewrite_tag's
/// `$1`): as in Onigmo, unnamed groups capture when the pattern has no
/// named group.
pub(crate) fn translate_numbered(src: &str) -> Result<String, String> {
    let t = translate_with(src, true)?;
    if t.names.is_empty() {
        Ok(t.pattern)
    } else {
        translate(src).map(|t| t.pattern)
    }
}

fn translate_with(src: &str, plain_groups_capture: bool) -> Result<Translated, String> {
    let (body, flags) = strip_slashes(src.trim());
    let mut t = Translator {
        chars: body.chars().collect(),
        pos: 0,
        out: String::with_capacity(body.len() + 16),
        names: Vec::new(),
        extended: flags.contains('x'),
        plain_groups_capture,
    };
    t.out.push_str("(?m");
    for f in flags.chars() {
        t.out.push(match f {
            'i' => 'i',
            'm' => 's',
            'x' => 'x',
            other => return Err(format!("unknown regex flag '{other}' after the closing '/'")),
        });
    }
    t.out.push(')');
    t.run()?;
    Ok(Translated { pattern: t.out, names: t.names })
}

/// `/pattern/imx` → (`pattern`, `imx`); anything else is returned as is.
fn strip_slashes(s: &str) -> (&str, &str) {
    if let Some(rest) = s.strip_prefix('/') {
        if let Some(end) = rest.rfind('/') {
            let flags = &rest[end + 1..];
            if flags.chars().all(|c| matches!(c, 'i' | 'm' | 'x')) {
                return (&rest[..end], flags);
            }
        }
    }
    (s, "")
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
    names: Vec<String>,
    extended: bool,
    plain_groups_capture: bool,
}

/// Characters the `regex` crate treats as meta somewhere (escaping them is
/// always allowed and always means the literal).
fn is_rust_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '#' | '&' | '-' | '~'
    )
}

fn push_literal(out: &mut String, c: char) {
    if is_rust_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

impl Translator {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek(i) == Some(c))
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                '\\' => self.escape(false)?,
                '[' => self.class()?,
                '(' => self.group()?,
                '*' | '+' | '?' => {
                    self.out.push(c);
                    self.quantifier_suffix(true)?;
                }
                '{' => self.interval()?,
                '}' | ']' => push_literal(&mut self.out, c),
                '#' if self.extended => {
                    while let Some(c) = self.peek(0) {
                        self.pos += 1;
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => self.out.push(c),
            }
        }
        Ok(())
    }

    /// After a quantifier: `?` makes it lazy; `+` makes it possessive, which
    /// the `regex` crate cannot do.
    fn quantifier_suffix(&mut self, possessive_possible: bool) -> Result<(), String> {
        match self.peek(0) {
            Some('?') => {
                self.pos += 1;
                self.out.push('?');
            }
            Some('+') if possessive_possible => {
                return Err("possessive quantifiers ('*+', '++', '?+') are not supported; \
                            use the greedy form ('*', '+', '?')"
                    .into())
            }
            _ => {}
        }
        Ok(())
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}` are intervals; any other `{` is literal.
    fn interval(&mut self) -> Result<(), String> {
        let mut j = self.pos;
        let mut lo = String::new();
        let mut hi = String::new();
        let mut comma = false;
        while let Some(&c) = self.chars.get(j) {
            match c {
                '0'..='9' if !comma => lo.push(c),
                '0'..='9' => hi.push(c),
                ',' if !comma => comma = true,
                '}' => break,
                _ => {
                    lo.clear();
                    hi.clear();
                    comma = false;
                    j = usize::MAX - 1;
                    break;
                }
            }
            j += 1;
        }
        let valid = self.chars.get(j) == Some(&'}') && (!lo.is_empty() || !hi.is_empty());
        if !valid {
            self.out.push_str("\\{");
            return Ok(());
        }
        self.pos = j + 1;
        self.out.push('{');
        self.out.push_str(if lo.is_empty() { "0" } else { &lo });
        if comma {
            self.out.push(',');
            self.out.push_str(&hi);
        }
        self.out.push('}');
        self.quantifier_suffix(false)
    }

    fn group(&mut self) -> Result<(), String> {
        if self.peek(0) != Some('?') {
            self.out.push_str(if self.plain_groups_capture { "(" } else { "(?:" });
            return Ok(());
        }
        if self.starts_with("?#") {
            while let Some(c) = self.peek(0) {
                self.pos += 1;
                if c == ')' {
                    return Ok(());
                }
            }
            return Err("unterminated comment group '(?#'".into());
        }
        for (prefix, what) in [
            ("?<=", "lookbehind '(?<=…)'"),
            ("?<!", "negative lookbehind '(?<!…)'"),
            ("?=", "lookahead '(?=…)'"),
            ("?!", "negative lookahead '(?!…)'"),
            ("?>", "atomic group '(?>…)'"),
            ("?~", "absent operator '(?~…)'"),
            ("?(", "conditional '(?(cond)…)'"),
        ] {
            if self.starts_with(prefix) {
                return Err(format!(
                    "{what} is not supported (gatelog compiles patterns with the linear-time `regex` \
                     engine); rewrite it without lookaround, e.g. with a negated class [^…]"
                ));
            }
        }
        let named = if self.starts_with("?P<") {
            Some(('>', 3))
        } else if self.starts_with("?<") {
            Some(('>', 2))
        } else if self.starts_with("?'") {
            Some(('\'', 2))
        } else {
            None
        };
        if let Some((close, skip)) = named {
            self.pos += skip;
            let mut name = String::new();
            loop {
                match self.peek(0) {
                    Some(c) if c == close => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(c);
                        self.pos += 1;
                    }
                    None => return Err("unterminated group name '(?<'".into()),
                }
            }
            if name.is_empty() {
                return Err("empty group name '(?<>'".into());
            }
            self.names.push(name);
            self.out.push('(');
            return Ok(());
        }
        // Option groups: (?imx-imx) and (?imx-imx:…).
        self.pos += 1;
        self.out.push_str("(?");
        loop {
            match self.peek(0) {
                Some(c @ ('i' | 'x' | '-')) => self.out.push(c),
                Some('m') => self.out.push('s'),
                Some(c @ (':' | ')')) => {
                    self.out.push(c);
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) => return Err(format!("unsupported group option '(?{c}'")),
                None => return Err("unterminated group '(?'".into()),
            }
            self.pos += 1;
        }
    }

    /// After a backslash (the backslash is consumed).
    fn escape(&mut self, in_class: bool) -> Result<(), String> {
        let Some(c) = self.peek(0) else {
            return Err("pattern ends with a lone backslash".into());
        };
        self.pos += 1;
        let class = |out: &mut String, set: &str, negated: bool| match (in_class, negated) {
            (true, false) => out.push_str(set),
            (_, true) => {
                out.push_str("[^");
                out.push_str(set);
                out.push(']');
            }
            (false, false) => {
                out.push('[');
                out.push_str(set);
                out.push(']');
            }
        };
        match c {
            'h' | 'H' => class(&mut self.out, HEX, c == 'H'),
            'd' | 'D' => class(&mut self.out, DIGIT, c == 'D'),
            'w' | 'W' => class(&mut self.out, WORD, c == 'W'),
            's' | 'S' => class(&mut self.out, SPACE, c == 'S'),
            'A' | 'z' | 'B' if !in_class => {
                self.out.push('\\');
                self.out.push(c);
            }
            'b' if in_class => self.out.push_str(r"\x08"),
            'b' => self.out.push_str(r"\b"),
            'Z' if !in_class => self.out.push_str(r"(?:\n?\z)"),
            'R' if !in_class => self.out.push_str(r"(?:\r\n|[\n\x0B\x0C\r\x{85}\x{2028}\x{2029}])"),
            'n' | 't' | 'r' | 'f' | 'v' => {
                self.out.push('\\');
                self.out.push(c);
            }
            'e' => self.out.push_str(r"\x1B"),
            'a' => self.out.push_str(r"\x07"),
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek(0) {
                        Some(d @ '0'..='7') => {
                            v = v * 8 + (d as u32 - '0' as u32);
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                self.out.push_str(&format!(r"\x{{{v:X}}}"));
            }
            '1'..='9' | 'k' => {
                return Err("backreferences ('\\1', '\\k<name>') are not supported by gatelog's regex engine".into())
            }
            'g' => return Err("subexpression calls ('\\g<name>') are not supported".into()),
            'G' | 'K' | 'X' | 'c' | 'C' | 'M' | 'y' | 'Y' | 'O' | 'N' => {
                return Err(format!("the escape '\\{c}' is not supported"))
            }
            'x' => self.hex_escape(2)?,
            'u' => self.hex_escape(4)?,
            'p' | 'P' => {
                self.out.push('\\');
                self.out.push(c);
                if self.peek(0) == Some('{') {
                    let mut negate = false;
                    self.pos += 1;
                    if self.peek(0) == Some('^') {
                        negate = true;
                        self.pos += 1;
                    }
                    if negate {
                        // Ruby's \p{^X} is \P{X}.
                        self.out.pop();
                        self.out.push(if c == 'p' { 'P' } else { 'p' });
                    }
                    self.out.push('{');
                    loop {
                        match self.peek(0) {
                            Some(ch) => {
                                self.pos += 1;
                                self.out.push(ch);
                                if ch == '}' {
                                    break;
                                }
                            }
                            None => return Err("unterminated '\\p{'".into()),
                        }
                    }
                } else if let Some(ch) = self.peek(0) {
                    self.pos += 1;
                    self.out.push(ch);
                }
            }
            // `\<`, `\>`, `\/`, `\"`, `\:` and every other escaped symbol
            // (and Ruby's unknown letter escapes) mean the character itself.
            other => push_literal(&mut self.out, other),
        }
        Ok(())
    }

    /// `\xH`, `\xHH`, `\x{H…}`, `\uHHHH`, `\u{H…}` → `\x{H…}`.
    fn hex_escape(&mut self, max: usize) -> Result<(), String> {
        let mut digits = String::new();
        if self.peek(0) == Some('{') {
            self.pos += 1;
            loop {
                match self.peek(0) {
                    Some('}') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) if c.is_ascii_hexdigit() => {
                        digits.push(c);
                        self.pos += 1;
                    }
                    _ => return Err("malformed '\\x{…}' or '\\u{…}' escape".into()),
                }
            }
        } else {
            while digits.len() < max {
                match self.peek(0) {
                    Some(c) if c.is_ascii_hexdigit() => {
                        digits.push(c);
                        self.pos += 1;
                    }
                    _ => break,
                }
            }
        }
        if digits.is_empty() || digits.len() > 8 {
            return Err("malformed hexadecimal escape".into());
        }
        self.out.push_str(r"\x{");
        self.out.push_str(&digits);
        self.out.push('}');
        Ok(())
    }

    /// After `[` (consumed): copy a bracket class, translating escapes.
    fn class(&mut self) -> Result<(), String> {
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        if self.peek(0) == Some(']') {
            // A leading ']' is literal in Ruby.
            self.pos += 1;
            self.out.push_str("\\]");
        }
        loop {
            let Some(c) = self.peek(0) else {
                return Err("unterminated character class '['".into());
            };
            self.pos += 1;
            match c {
                ']' => {
                    self.out.push(']');
                    return Ok(());
                }
                '\\' => self.escape(true)?,
                '[' if self.peek(0) == Some(':') => {
                    // POSIX bracket [:alpha:] / [:^alpha:]: same syntax in Rust.
                    let rest: String = self.chars[self.pos..].iter().take(16).collect();
                    match rest.find(":]") {
                        Some(end) => {
                            self.out.push('[');
                            self.out.push_str(&rest[..end + 2]);
                            self.pos += rest[..end + 2].chars().count();
                        }
                        None => self.out.push_str("\\["),
                    }
                }
                '[' => self.class()?,
                '&' if self.peek(0) == Some('&') => {
                    self.pos += 1;
                    self.out.push_str("&&");
                }
                '-' => self.out.push('-'),
                _ => push_literal(&mut self.out, c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(s: &str) -> String {
        translate(s).unwrap().pattern
    }

    #[test]
    fn angle_escapes_are_literal_and_named_groups_are_indexed() {
        let t = translate(r"^\<(?<pri>[0-9]+)\>(?<time>x)(y)").unwrap();
        assert_eq!(t.pattern, r"(?m)^<([0-9]+)>(x)(?:y)");
        assert_eq!(t.names, vec!["pri", "time"]);
        let re = regex::Regex::new(&t.pattern).unwrap();
        assert_eq!(&re.captures("<190>xy").unwrap()[1], "190");
    }

    #[test]
    fn slashes_flags_and_ruby_classes() {
        assert_eq!(tr(r"/^a.b$/im"), r"(?mis)^a.b$");
        assert_eq!(tr(r"/var/log"), r"(?m)/var/log");
        assert_eq!(tr(r"\h+[\h_]\d\s\w"), r"(?m)[0-9a-fA-F]+[0-9a-fA-F_][0-9][\t\n\x0B\x0C\r ][0-9A-Za-z_]");
        assert_eq!(tr(r"[^\:\]]"), r"(?m)[^:\]]");
        assert_eq!(tr(r"[a-zA-Z0-9_\/\.\-]"), r"(?m)[a-zA-Z0-9_/\.\-]");
        assert_eq!(tr(r"[\H]"), r"(?m)[[^0-9a-fA-F]]");
        assert_eq!(tr(r"x{1,2}y{,3}z{foo}"), r"(?m)x{1,2}y{0,3}z\{foo\}");
        assert_eq!(tr(r"\Aab\Z"), r"(?m)\Aab(?:\n?\z)");
        assert_eq!(tr(r"(?i:ab)(?m)\e\012"), r"(?m)(?i:ab)(?s)\x1B\x{A}");
        assert_eq!(tr(r"[[:alpha:]&&[^a]]"), r"(?m)[[:alpha:]&&[^a]]");
        for p in [r"\h+[\h_]\d\s\w", r"[^\:\]]", r"[\H]", r"x{1,2}y{,3}z{foo}", r"\Aab\Z", r"[[:alpha:]&&[^a]]"] {
            assert!(regex::Regex::new(&tr(p)).is_ok(), "{p}");
        }
    }

    #[test]
    fn unsupported_constructs_are_refused() {
        for p in [r"a(?=b)", r"(?<!a)b", r"(?>a)", r"a++", r"(a)\1", r"\k<x>", r"[a", r"a\"] {
            assert!(translate(p).is_err(), "{p}");
        }
        assert!(translate(r"(?<=a)b").unwrap_err().contains("lookbehind"));
        assert!(translate("a*+").unwrap_err().contains("possessive"));
    }

    #[test]
    fn extended_mode_comments_are_dropped() {
        let t = translate("/a # (?=not a lookahead)\nb/x").unwrap();
        assert_eq!(t.pattern, "(?mx)a b");
    }
}
