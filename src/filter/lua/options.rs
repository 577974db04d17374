//! The `lua` filter's options: the declarative table and the resolved
//! settings built from a `[FILTER] Name lua` section. Every mistake (missing
//! `script`/`code`, missing `call`, bad boolean or size, unknown key) is
//! collected as a [`ConfigError`] at the property's location; nothing here
//! touches a Lua VM.

use std::path::{Path, PathBuf};

use crate::config::schema::{check_keys, OptionSpec, COMMON_FILTER};
use crate::config::units::{prop_bool, prop_size, prop_u64};
use crate::config::{resolve_path, ConfigError, Location, Section};

/// Default instruction budget of one call (and of the script's top level).
pub const DEFAULT_INSTRUCTION_LIMIT: u64 = 10_000_000;
/// Default memory budget of one filter's VM, in bytes (`64M`, decimal like
/// every gatelog size).
pub const DEFAULT_MEMORY_LIMIT: u64 = 64_000_000;

pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "script",
        default: None,
        desc: "Lua file to load (relative: as given, then next to the main config)",
    },
    OptionSpec { name: "call", default: None, desc: "global function called for each record" },
    OptionSpec { name: "code", default: None, desc: "inline Lua source instead of 'script'" },
    OptionSpec {
        name: "protected_mode",
        default: Some("on"),
        desc: "log script errors as warnings (off: as errors; the record passes either way)",
    },
    OptionSpec { name: "time_as_table", default: Some("off"), desc: "pass and accept the timestamp as {sec=, nsec=}" },
    OptionSpec {
        name: "type_int_key",
        default: None,
        desc: "space-separated keys whose numbers are written back as integers",
    },
    OptionSpec {
        name: "type_array_key",
        default: None,
        desc: "space-separated keys whose tables are written back as arrays",
    },
    OptionSpec {
        name: "enable_flb_null",
        default: Some("off"),
        desc: "pass JSON null as the flb_null sentinel instead of nil",
    },
    OptionSpec {
        name: "instruction_limit",
        default: Some("10000000"),
        desc: "gatelog: VM instructions allowed per call (0: unlimited)",
    },
    OptionSpec {
        name: "memory_limit",
        default: Some("64M"),
        desc: "gatelog: memory allowed to the filter's VM (0: unlimited)",
    },
];

/// Where the Lua source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Inline(String),
}

/// Resolved settings of one `lua` filter instance.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub source: Source,
    /// Where `script` or `code` was written, for load errors.
    pub source_loc: Location,
    pub call: String,
    pub call_loc: Location,
    pub protected_mode: bool,
    pub time_as_table: bool,
    pub type_int_keys: Vec<String>,
    pub type_array_keys: Vec<String>,
    pub enable_flb_null: bool,
    pub instruction_limit: u64,
    pub memory_limit: u64,
}

impl Settings {
    pub(crate) fn from_section(s: &Section, base_dir: &Path) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = check_keys(s, "lua", &[COMMON_FILTER, OPTIONS]);
        let source = match (s.get("script"), s.get("code")) {
            (Some(p), None) => {
                let path = resolve_path(p.value.trim(), base_dir);
                if !path.is_file() {
                    errors.push(
                        ConfigError::at(&p.loc, format!("lua script '{}' not found", p.value.trim())).with_hint(
                            format!("give a path that exists as written or relative to {}", base_dir.display()),
                        ),
                    );
                }
                Some((Source::File(path), p.loc.clone()))
            }
            (None, Some(p)) => Some((Source::Inline(p.value.clone()), p.loc.clone())),
            (Some(_), Some(c)) => {
                errors.push(
                    ConfigError::at(&c.loc, "filter lua takes either 'script' or 'code', not both")
                        .with_hint("remove one of them"),
                );
                None
            }
            (None, None) => {
                errors.push(
                    ConfigError::at(&s.loc, "filter lua needs 'script' (or 'code')")
                        .with_hint("add 'script create-log-file-path.lua'"),
                );
                None
            }
        };
        let call = s.get("call").map(|p| (p.value.trim().to_owned(), p.loc.clone()));
        if call.is_none() {
            errors.push(
                ConfigError::at(&s.loc, "filter lua needs 'call'")
                    .with_hint("name the script's function, e.g. 'call create_log_file_path'"),
            );
        }
        let mut flag = |k: &str, default: bool| match s.get(k) {
            None => default,
            Some(p) => prop_bool(p).unwrap_or_else(|e| {
                errors.push(e);
                default
            }),
        };
        let protected_mode = flag("protected_mode", true);
        let time_as_table = flag("time_as_table", false);
        let enable_flb_null = flag("enable_flb_null", false);
        let instruction_limit = match s.get("instruction_limit") {
            None => DEFAULT_INSTRUCTION_LIMIT,
            Some(p) => prop_u64(p).unwrap_or_else(|e| {
                errors.push(e.with_hint("write a number of VM instructions, e.g. 10000000, or 0 for no limit"));
                DEFAULT_INSTRUCTION_LIMIT
            }),
        };
        let memory_limit = match s.get("memory_limit") {
            None => DEFAULT_MEMORY_LIMIT,
            Some(p) => prop_size(p).unwrap_or_else(|e| {
                errors.push(e);
                DEFAULT_MEMORY_LIMIT
            }),
        };
        let keys = |k: &str| -> Vec<String> {
            s.get_all(k).flat_map(|p| p.value.split_whitespace().map(str::to_owned)).collect()
        };
        let type_int_keys = keys("type_int_key");
        let type_array_keys = keys("type_array_key");
        match (source, call) {
            (Some((source, source_loc)), Some((call, call_loc))) if errors.is_empty() => Ok(Settings {
                source,
                source_loc,
                call,
                call_loc,
                protected_mode,
                time_as_table,
                type_int_keys,
                type_array_keys,
                enable_flb_null,
                instruction_limit,
                memory_limit,
            }),
            _ => Err(errors),
        }
    }

    /// The script's name in Lua error messages (`file.lua:3: …`).
    pub(crate) fn chunk_name(&self, instance: &str) -> String {
        match &self.source {
            Source::File(p) => format!("@{}", p.display()),
            Source::Inline(_) => format!("={instance}.code"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Property;
    use std::sync::Arc;

    /// A `[FILTER]` section with `Name lua` and the given properties, one per line.
    pub(crate) fn section(props: &[(&str, &str)]) -> Section {
        let file = Arc::new(PathBuf::from("gatelog.conf"));
        let loc = |line| Location { file: file.clone(), line };
        let mut all = vec![Property { key: "Name".into(), value: "lua".into(), loc: loc(2) }];
        for (i, (k, v)) in props.iter().enumerate() {
            all.push(Property { key: (*k).into(), value: (*v).into(), loc: loc(i as u32 + 3) });
        }
        Section { name: "FILTER".into(), loc: loc(1), props: all }
    }

    fn errors_of(props: &[(&str, &str)]) -> Vec<String> {
        match Settings::from_section(&section(props), Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_and_lists() {
        let s = Settings::from_section(
            &section(&[
                ("code", "function f() end"),
                ("call", "f"),
                ("type_int_key", "status  body_bytes_sent"),
                ("type_array_key", "tags"),
            ]),
            Path::new("."),
        )
        .unwrap();
        assert!(s.protected_mode && !s.time_as_table && !s.enable_flb_null);
        assert_eq!(s.instruction_limit, DEFAULT_INSTRUCTION_LIMIT);
        assert_eq!(s.memory_limit, 64_000_000);
        assert_eq!(s.type_int_keys, ["status", "body_bytes_sent"]);
        assert_eq!(s.type_array_keys, ["tags"]);
        assert_eq!(s.source, Source::Inline("function f() end".into()));
        assert_eq!(s.chunk_name("lua.1"), "=lua.1.code");
    }

    #[test]
    fn missing_and_bad_options_are_reported_with_lines() {
        let errs = errors_of(&[("protected_mode", "maybe"), ("memory_limit", "lots")]);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("gatelog.conf:1: filter lua needs 'script'"), "{errs:?}");
        assert!(errs[1].starts_with("gatelog.conf:1: filter lua needs 'call'"), "{errs:?}");
        assert!(errs[2].starts_with("gatelog.conf:3: 'protected_mode' must be a boolean"), "{errs:?}");
        assert!(errs[3].starts_with("gatelog.conf:4: 'memory_limit' must be a size"), "{errs:?}");
    }

    #[test]
    fn missing_script_file_and_typo() {
        let errs = errors_of(&[("script", "nope.lua"), ("call", "f"), ("cal", "g")]);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("unknown key 'cal'") && errs[0].contains("did you mean 'call'?"), "{errs:?}");
        assert!(errs[1].starts_with("gatelog.conf:3: lua script 'nope.lua' not found"), "{errs:?}");
    }
}
