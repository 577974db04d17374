//! Tag routing: `Match` globs (`*` matches any bytes, `.` and `/` included;
//! everything else literally; the whole tag must match) and `Match_Regex`
//! (anchored at the start only, as Fluent Bit's `onig_match`). With both set
//! either may match.

use std::sync::Arc;

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

/// What was worked out for the last two tags seen (a filter's Match
/// verdict, an output's routes), found by pointer: records of one input
/// share their tag's allocation, `rewrite_tag` shares the last tag it
/// built, and with `KEEP true` the original's tag and the copies' alternate
/// by generation. Holding the `Arc` keeps its address from being reused.
pub struct RecentTags<V> {
    slots: [(Option<Arc<str>>, V); 2],
}

impl<V: Default> Default for RecentTags<V> {
    fn default() -> Self {
        RecentTags { slots: [(None, V::default()), (None, V::default())] }
    }
}

impl<V> RecentTags<V> {
    /// The value for `tag`, worked out by `work` when it is not one of the
    /// last two.
    #[inline]
    pub fn get_or(&mut self, tag: &Arc<str>, work: impl FnOnce() -> V) -> &V {
        let hit = self.slots.iter().position(|(t, _)| t.as_ref().is_some_and(|t| Arc::ptr_eq(t, tag)));
        let i = match hit {
            Some(i) => i,
            None => {
                self.slots.swap(0, 1);
                self.slots[0] = (Some(tag.clone()), work());
                0
            }
        };
        &self.slots[i].1
    }

    /// Forget both (what they were worked out from changed).
    pub fn clear(&mut self)
    where
        V: Default,
    {
        *self = RecentTags::default();
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
    fn recent_tags_are_found_by_pointer_and_the_oldest_goes() {
        let mut r: RecentTags<usize> = RecentTags::default();
        let mut works = 0;
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let a_again: Arc<str> = "a".into();
        let mut get = |r: &mut RecentTags<usize>, t: &Arc<str>| {
            *r.get_or(t, || {
                works += 1;
                t.len() * 10 + works
            })
        };
        assert_eq!([get(&mut r, &a), get(&mut r, &b), get(&mut r, &a), get(&mut r, &b)], [11, 12, 11, 12]);
        // Equal text in another allocation is another tag; it evicts the
        // older one (a), and b is still known.
        assert_eq!(get(&mut r, &a_again), 13);
        assert_eq!(get(&mut r, &b), 12);
        assert_eq!(get(&mut r, &c), 14);
        assert_eq!(get(&mut r, &a_again), 13);
        assert_eq!(get(&mut r, &b), 15);
        r.clear();
        assert_eq!(get(&mut r, &c), 16);
    }

    #[test]
    fn regex_anchored_at_start_only() {
        let m = Matcher { glob: None, regex: Some(Regex::new("\\A(?:kube\\.)").unwrap()) };
        assert!(m.matches("kube.anything"));
        assert!(!m.matches("x.kube.y"));
    }
}
