//! Option tables: every plugin declares its keys with defaults and a one-line
//! description, and a section is checked against them so that a typo is
//! refused with the list of valid keys instead of silently changing
//! behaviour (Fluent Bit 1.8 ignores unknown keys on `syslog` and `parser`).

use super::{ConfigError, Section};

#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub desc: &'static str,
}

const fn opt(name: &'static str, default: Option<&'static str>, desc: &'static str) -> OptionSpec {
    OptionSpec { name, default, desc }
}

/// Keys the core handles for every input.
pub const COMMON_INPUT: &[OptionSpec] = &[
    opt("Name", None, "plugin name"),
    opt("Tag", None, "tag given to records (used literally)"),
    opt("Alias", None, "instance name in metrics and logs"),
    opt("Log_Level", None, "log level of this instance"),
    opt("Mem_Buf_Limit", None, "memory budget for records in flight from this input"),
    opt("Threaded", None, "accepted for compatibility; inputs always have their own receiver"),
    opt("storage.type", None, "accepted for compatibility (memory only)"),
];

/// Keys the core handles for every filter.
pub const COMMON_FILTER: &[OptionSpec] = &[
    opt("Name", None, "plugin name"),
    opt("Match", None, "tag glob this filter applies to (* matches anything)"),
    opt("Match_Regex", None, "regex on the tag, anchored at the start"),
    opt("Alias", None, "instance name in metrics and logs"),
    opt("Log_Level", None, "log level of this instance"),
];

/// Keys the core handles for every output.
pub const COMMON_OUTPUT: &[OptionSpec] = &[
    opt("Name", None, "plugin name"),
    opt("Match", None, "tag glob routed to this output (* matches anything)"),
    opt("Match_Regex", None, "regex on the tag, anchored at the start"),
    opt("Alias", None, "instance name in metrics and logs"),
    opt("Log_Level", None, "log level of this instance"),
    opt("Retry_Limit", None, "accepted for compatibility"),
    opt("Workers", None, "accepted for compatibility"),
];

pub const SERVICE: &[OptionSpec] = &[
    opt("Flush", Some("1"), "seconds between flushes of buffered output"),
    opt("Grace", Some("5"), "seconds allowed to drain on SIGTERM"),
    opt("Daemon", Some("off"), "accepted for compatibility; gatelog never forks"),
    opt("Log_Level", Some("info"), "error, warn, info, debug or trace"),
    opt("Log_File", None, "write gatelog's own log here instead of stderr"),
    opt("Parsers_File", None, "parsers file to load (may repeat)"),
    opt("Plugins_File", None, "accepted for compatibility (no external plugins)"),
    opt("Streams_File", None, "accepted for compatibility (no stream processor)"),
    opt("HTTP_Server", Some("off"), "serve health and metrics endpoints"),
    opt("HTTP_Listen", Some("0.0.0.0"), "address of the HTTP server"),
    opt("HTTP_Port", Some("2020"), "port of the HTTP server"),
    opt("Health_Check", Some("off"), "enable /api/v1/health"),
    opt("HC_Errors_Count", Some("5"), "output errors in HC_Period that make health fail"),
    opt("HC_Retry_Failure_Count", Some("5"), "retry failures in HC_Period that make health fail"),
    opt("HC_Period", Some("60"), "health check window in seconds"),
    opt("Hot_Reload", Some("off"), "reload the config on SIGHUP"),
    opt("Coro_Stack_Size", None, "accepted for compatibility"),
    opt("storage.path", None, "accepted for compatibility (memory only)"),
    opt("storage.sync", None, "accepted for compatibility"),
    opt("storage.checksum", None, "accepted for compatibility"),
    opt("storage.metrics", None, "accepted for compatibility"),
    opt("storage.backlog.mem_limit", None, "accepted for compatibility"),
    opt("Buffer_Limit", Some("4M"), "gatelog: memory budget for records in flight, all inputs"),
    opt("Time_Zone", None, "gatelog: zone for zone-less times (default: TZ)"),
];

/// Refuse every key of `section` that no table lists, naming the closest
/// valid key and all of them.
pub fn check_keys(section: &Section, plugin: &str, tables: &[&[OptionSpec]]) -> Vec<ConfigError> {
    let known = || tables.iter().flat_map(|t| t.iter());
    let mut errors = Vec::new();
    for p in &section.props {
        if known().any(|o| o.name.eq_ignore_ascii_case(&p.key)) {
            continue;
        }
        let mut names: Vec<&str> = known().map(|o| o.name).collect();
        names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
        names.dedup();
        let close = names
            .iter()
            .map(|n| (edit_distance(&n.to_ascii_lowercase(), &p.key.to_ascii_lowercase()), *n))
            .filter(|(d, _)| *d <= 2)
            .min();
        let hint = match close {
            Some((_, n)) => format!("did you mean '{n}'? valid keys: {}", names.join(", ")),
            None => format!("valid keys: {}", names.join(", ")),
        };
        errors.push(
            ConfigError::at(
                &p.loc,
                format!("unknown key '{}' for {} '{plugin}'", p.key, section.name.to_ascii_lowercase()),
            )
            .with_hint(hint),
        );
    }
    errors
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, Property};
    use std::path::PathBuf;
    use std::sync::Arc;

    fn section(keys: &[&str]) -> Section {
        let loc = Location { file: Arc::new(PathBuf::from("t.conf")), line: 1 };
        Section {
            name: "OUTPUT".into(),
            loc: loc.clone(),
            props: keys
                .iter()
                .enumerate()
                .map(|(i, k)| Property {
                    key: k.to_string(),
                    value: "x".into(),
                    loc: Location { line: i as u32 + 2, ..loc.clone() },
                })
                .collect(),
        }
    }

    #[test]
    fn typo_is_refused_with_suggestion_and_location() {
        let errs = check_keys(&section(&["name", "Mtach"]), "file", &[COMMON_OUTPUT]);
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(text.starts_with("t.conf:3: unknown key 'Mtach' for output 'file'"), "{text}");
        assert!(text.contains("did you mean 'Match'?"), "{text}");
    }
}
