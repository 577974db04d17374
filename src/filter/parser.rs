//! The `parser` filter: parses one field of the record (`Key_Name`) with the
//! first of its parsers that matches and merges the result, exactly as
//! Fluent Bit does (reference §4): with `Reserve_Data` the parsed fields come
//! first and every original field follows in its original order (so the
//! sidecar pipeline carries two `time` keys); the key itself stays only with
//! `Preserve_Key`. A value no parser matches leaves the record untouched.
//!
//! Difference: `Preserve_Key` is honoured without `Reserve_Data` too (as in
//! current Fluent Bit); 1.8 ignored it there.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::schema::{check_keys, OptionSpec, COMMON_FILTER};
use crate::config::units::prop_bool;
use crate::config::{ConfigError, Section};
use crate::parser::{KeyOrder, ParseContext, Parser, ParserRegistry};
use crate::ratelimit::RateLimiter;
use crate::record::reads::{KeySet, Reads};
use crate::record::{Record, Value};
use crate::stats::FilterCounters;
use crate::warn_limited;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "Key_Name", default: None, desc: "field to parse" },
    OptionSpec { name: "Parser", default: None, desc: "parser name; repeat to try several in order" },
    OptionSpec { name: "Preserve_Key", default: Some("off"), desc: "keep the parsed field in the record" },
    OptionSpec { name: "Reserve_Data", default: Some("off"), desc: "keep the record's other fields" },
    OptionSpec { name: "Unescape_Key", default: Some("off"), desc: "accepted for compatibility (no effect)" },
];

pub struct ParserFilter {
    key: String,
    parsers: Vec<Arc<Parser>>,
    /// Per parser, the only keys it builds (see `record::reads`).
    keep: Vec<Option<KeySet>>,
    /// Each parser's JSON key order, learned with its `keep`.
    orders: Vec<KeyOrder>,
    preserve_key: bool,
    reserve_data: bool,
    failures: RateLimiter,
}

impl ParserFilter {
    pub fn from_section(s: &Section, registry: &ParserRegistry) -> Result<Self, Vec<ConfigError>> {
        let mut errors = check_keys(s, "parser", &[COMMON_FILTER, OPTIONS]);
        let key = s.value("key_name").map(str::to_owned);
        if key.is_none() {
            errors.push(ConfigError::at(&s.loc, "filter parser needs Key_Name").with_hint("add 'Key_Name message'"));
        }
        let mut parsers = Vec::new();
        for p in s.get_all("parser") {
            match registry.get(p.value.trim()) {
                Some(parser) => parsers.push(parser),
                None => {
                    let mut known = registry.names();
                    known.sort();
                    errors.push(
                        ConfigError::at(&p.loc, format!("unknown parser '{}'", p.value))
                            .with_hint(format!("define it in a Parsers_File; known parsers: {}", known.join(", "))),
                    );
                }
            }
        }
        if s.get("parser").is_none() {
            errors.push(
                ConfigError::at(&s.loc, "filter parser needs at least one Parser").with_hint("add 'Parser json'"),
            );
        }
        let mut flag = |k: &str| match s.get(k) {
            None => false,
            Some(p) => prop_bool(p).unwrap_or_else(|e| {
                errors.push(e);
                false
            }),
        };
        let preserve_key = flag("preserve_key");
        let reserve_data = flag("reserve_data");
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ParserFilter {
            key: key.unwrap_or_default(),
            keep: vec![None; parsers.len()],
            orders: parsers.iter().map(|_| KeyOrder::default()).collect(),
            parsers,
            preserve_key,
            reserve_data,
            failures: RateLimiter::default(),
        })
    }

    /// It reads its `Key_Name`.
    pub fn reads(&self) -> Reads {
        Reads::keys([self.key.as_str()])
    }

    /// Build only the fields the pipeline's stages read; returns, for each
    /// parser that can, its name and the fields it builds.
    pub fn project(&mut self, reads: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
        self.keep = self.parsers.iter().map(|p| p.projection(reads)).collect();
        self.orders = self.parsers.iter().map(|_| KeyOrder::default()).collect();
        self.parsers
            .iter()
            .zip(&self.keep)
            .filter_map(|(p, k)| Some((p.name().to_owned(), k.as_ref()?.names())))
            .collect()
    }

    pub fn apply(&mut self, mut rec: Record, out: &mut Vec<Record>, counters: &FilterCounters, ctx: &ParseContext) {
        let parsed = match rec.fields.get_last(&self.key) {
            Some(Value::Str(text)) => {
                let mut tries = self.parsers.iter().zip(&self.keep).zip(&mut self.orders);
                tries.find_map(|((p, k), o)| p.parse_text(text, ctx, k.as_ref(), Some(o)).ok())
            }
            _ => {
                out.push(rec);
                return;
            }
        };
        let Some(parsed) = parsed else {
            counters.parse_failures.inc();
            warn_limited!(self.failures, key = %self.key, tag = %rec.tag, "no parser matched the field; record kept unchanged");
            out.push(rec);
            return;
        };
        let mut fields = parsed.fields;
        if self.reserve_data {
            let original = std::mem::take(&mut rec.fields).into_pairs();
            fields.reserve(original.len());
            for (k, v) in original {
                if self.preserve_key || k != self.key {
                    fields.push(k, v);
                }
            }
        } else if self.preserve_key {
            if let Some(v) = rec.fields.remove(&self.key) {
                fields.push(self.key.as_str(), v);
            }
        }
        rec.fields = fields;
        if let Some(t) = parsed.time {
            rec.time = t;
        }
        out.push(rec);
    }
}
