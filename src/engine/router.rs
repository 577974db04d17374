//! Tag routing: `Match` globs (`*` matches any bytes, `.` and `/` included;
//! everything else literally; the whole tag must match) and `Match_Regex`
//! (anchored at the start only, as Fluent Bit's `onig_match`). With both set
//! either may match.

use regex::Regex;

use crate::config::{ConfigError, Section};

#[derive(Debug, Clone)]
pub struct Matcher {
    glob: Option<String>,
    regex: Option<Regex>,
}

impl Matcher {
    /// `None` when the section has neither `Match` nor `Match_Regex`.
    pub fn from_section(s: &Section) -> Result<Option<Matcher>, ConfigError> {
        let glob = s.value("match").map(str::to_owned);
        let regex = match s.get("match_regex") {
            None => None,
            Some(p) => {
                let bad = |e: String| ConfigError::at(&p.loc, format!("invalid Match_Regex: {e}"));
                let pattern = crate::parser::onigmo::translate_numbered(&p.value).map_err(bad)?;
                Some(Regex::new(&format!("\\A(?:{pattern})")).map_err(|e| bad(e.to_string()))?)
            }
        };
        if glob.is_none() && regex.is_none() {
            return Ok(None);
        }
        Ok(Some(Matcher { glob, regex }))
    }

    pub fn all() -> Matcher {
        Matcher { glob: Some("*".into()), regex: None }
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.glob.as_deref().is_some_and(|g| glob_match(g.as_bytes(), tag.as_bytes()))
            || self.regex.as_ref().is_some_and(|r| r.find(tag).is_some_and(|m| !m.is_empty()))
    }

    pub fn describe(&self) -> String {
        match (&self.glob, &self.regex) {
            (Some(g), None) => g.clone(),
            (None, Some(r)) => format!("regex {}", r.as_str()),
            (Some(g), Some(r)) => format!("{g} or regex {}", r.as_str()),
            (None, None) => String::new(),
        }
    }
}

/// Glob with `*` only, linear-time with single backtrack point.
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_fluent_bit() {
        assert!(glob_match(b"kube.*", b"kube.*"));
        assert!(glob_match(b"kube.*", b"kube."));
        assert!(glob_match(b"kube.*", b"kube.a.b"));
        assert!(!glob_match(b"kube.*", b"kube"));
        assert!(glob_match(b"*", b"/log/output/path/2024-1123/x.log"));
        assert!(glob_match(b"*.log", b"/a/b.log"));
        assert!(!glob_match(b"*.log", b"/a/b.log2"));
        assert!(glob_match(b"a**b*c", b"axxbyyc"));
        assert!(!glob_match(b"Kube.*", b"kube.x"));
    }

    #[test]
    fn regex_anchored_at_start_only() {
        let m = Matcher { glob: None, regex: Some(Regex::new("\\A(?:kube\\.)").unwrap()) };
        assert!(m.matches("kube.anything"));
        assert!(!m.matches("x.kube.y"));
    }
}
