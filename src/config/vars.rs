//! `${VAR}` expansion for configuration values: variables set with `@SET`
//! first, then the process environment, as Fluent Bit's `flb_env` does.
//!
//! Invariants: expansion is a single left-to-right pass (no nesting, no
//! re-expansion of substituted text); an unset variable expands to the empty
//! string; `${VAR:-default}` (Fluent Bit ≥ 5.0.6) gives `default` when `VAR`
//! is unset or empty; a `$` not followed by `{`, and a `${` with no closing
//! `}`, are kept literally. Variable names are case-sensitive.

use std::collections::HashMap;

use super::Location;

/// Where variables not set with `@SET` come from.
#[derive(Debug, Clone, Default)]
enum Env {
    /// The process environment (`getenv`), read at expansion time.
    #[default]
    Process,
    /// A fixed table instead of the process environment (tests, embedding).
    Fixed(HashMap<String, String>),
}

/// The variables of one configuration load.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    set: HashMap<String, String>,
    env: Env,
}

impl Vars {
    /// `@SET` variables over the process environment.
    pub fn new() -> Self {
        Vars::default()
    }

    /// `@SET` variables over `env` only; the process environment is never read.
    pub fn with_env<I, K, V>(env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Vars { set: HashMap::new(), env: Env::Fixed(env) }
    }

    /// `@SET key=value`: a later set of the same name replaces the earlier.
    pub fn set(&mut self, key: &str, value: &str) {
        self.set.insert(key.to_owned(), value.to_owned());
    }

    /// The value of `name`: `@SET` first, then the environment.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.set.get(name) {
            return Some(v.clone());
        }
        match &self.env {
            Env::Process => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
            Env::Fixed(map) => map.get(name).cloned(),
        }
    }

    /// `s` with every `${VAR}` / `${VAR:-default}` replaced.
    pub fn expand(&self, s: &str) -> String {
        self.expand_with(s, |_| {})
    }

    /// As [`Vars::expand`], warning (naming the variable and `loc`) for each
    /// variable that is unset and has no default.
    pub fn expand_at(&self, s: &str, loc: &Location) -> String {
        self.expand_with(s, |name| {
            tracing::warn!(variable = name, location = %loc, "configuration variable is not set; it expands to an empty string");
        })
    }

    fn expand_with(&self, s: &str, mut on_unset: impl FnMut(&str)) -> String {
        if !s.contains("${") {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            // No nesting: the first `}` closes, so `${A:-${B}}` has the
            // default `${B` followed by a literal `}` (as Fluent Bit).
            let Some(end) = after.find('}') else { break };
            out.push_str(&rest[..start]);
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            match (self.get(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => on_unset(name),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::with_env([("HOST", "web-1"), ("EMPTY", ""), ("BOTH", "from-env")]);
        v.set("BOTH", "from-set");
        v.set("DIR", "/var/log");
        v
    }

    #[test]
    fn set_variables_win_over_environment() {
        assert_eq!(vars().expand("${BOTH}"), "from-set");
        assert_eq!(vars().expand("${HOST}:${DIR}/x"), "web-1:/var/log/x");
    }

    #[test]
    fn unset_expands_to_empty_and_is_reported() {
        let mut unset = Vec::new();
        let out = vars().expand_with("a${NOPE}b${ALSO_NOPE}c", |n| unset.push(n.to_owned()));
        assert_eq!(out, "abc");
        assert_eq!(unset, ["NOPE", "ALSO_NOPE"]);
    }

    #[test]
    fn default_applies_when_unset_or_empty() {
        assert_eq!(vars().expand("${NOPE:-/tmp}"), "/tmp");
        assert_eq!(vars().expand("${EMPTY:-fallback}"), "fallback");
        assert_eq!(vars().expand("${HOST:-other}"), "web-1");
        assert_eq!(vars().expand("${NOPE:-}"), "");
    }

    #[test]
    fn literal_dollars_and_unclosed_braces_are_kept() {
        assert_eq!(vars().expand("^(.*)$ /out/$log_file_path true"), "^(.*)$ /out/$log_file_path true");
        assert_eq!(vars().expand("cost $5 ${HOST"), "cost $5 ${HOST");
        assert_eq!(vars().expand("${HOST}${"), "web-1${");
        assert_eq!(vars().expand("$${HOST}"), "$web-1");
    }

    #[test]
    fn no_nesting_and_no_reexpansion() {
        let mut v = vars();
        v.set("REF", "${HOST}");
        assert_eq!(v.expand("${REF}"), "${HOST}");
        assert_eq!(v.expand("${NOPE:-${HOST}}"), "${HOST}");
    }

    #[test]
    fn process_environment_is_read_by_default() {
        let expected = std::env::var("PATH").unwrap_or_default();
        assert_eq!(Vars::new().expand("${PATH}"), expected);
    }
}
