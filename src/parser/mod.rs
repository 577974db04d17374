//! Parsers: bytes in, ordered fields and an optional event time out. Built
//! once from `[PARSER]` sections (`build.rs` checks every key against the
//! [`PARSER_OPTIONS`] table), shared behind `Arc`, pure at run time: the
//! clock and the default zone come in through [`ParseContext`], so results
//! are deterministic in tests.
//!
//! Formats: `regex` (Onigmo syntax translated, `onigmo.rs` + `regex.rs`),
//! `json` (`json.rs`), `ltsv` and `logfmt` (`kv.rs`), and gatelog's native
//! `rfc3164` syslog header decoder (`rfc3164.rs`). Common post-processing,
//! in order: time (`time.rs`, `strptime.rs`), `Types` (`types.rs`),
//! `Decode_Field*` (`decode.rs`).
//!
//! Invariants: parsing never panics and never drops input bytes (invalid
//! UTF-8 becomes U+FFFD); a time that does not parse leaves the record
//! intact with `time: None` and its time field in place (Fluent Bit's regex
//! parser drops that field; gatelog keeps the data, as its JSON parser does).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{ConfigError, Section};
use crate::ratelimit::RateLimiter;
use crate::record::reads::KeySet;
use crate::record::{Map, Text, Timestamp, Value};
use crate::zone::Zone;

mod build;
mod decode;
mod json;
mod kv;
pub(crate) mod onigmo;
mod regex;
mod rfc3164;
mod stock_syslog;
mod strptime;
mod time;
mod types;

pub use build::PARSER_OPTIONS;
pub use json::KeyOrder;
pub use json::MAX_DEPTH as JSON_MAX_DEPTH;

/// What a parse needs from the outside world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParseContext {
    /// Reception time: the reference for year inference and time-only formats.
    pub now: Timestamp,
    /// The process default zone (TZ) for zone-less times.
    pub zone: Zone,
}

/// A successful parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub fields: Map,
    /// The event time, when the parser has a time rule and it matched.
    pub time: Option<Timestamp>,
}

/// Why an input was not parsed (the record is then kept unparsed by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseFailure {
    /// regex / rfc3164 / ltsv / logfmt: the input does not have the shape.
    NoMatch,
    /// json: not valid JSON, trailing data, or nested too deep.
    InvalidJson,
    /// json: valid JSON but not an object (array, string, number …).
    NotAnObject,
}

impl ParseFailure {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseFailure::NoMatch => "no_match",
            ParseFailure::InvalidJson => "invalid_json",
            ParseFailure::NotAnObject => "not_an_object",
        }
    }
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

#[derive(Debug)]
enum Format {
    Regex(regex::RegexParser),
    Json,
    Ltsv,
    Logfmt {
        no_bare_keys: bool,
    },
    Rfc3164,
    /// gatelog: the whole line as `message`, no parsing (raw lines to a file).
    Raw,
}

/// One configured parser.
#[derive(Debug)]
pub struct Parser {
    name: String,
    format: Format,
    time: time::TimeRule,
    types: Vec<(String, types::Cast)>,
    decoders: Vec<decode::DecodeRule>,
    time_warn: RateLimiter,
}

impl Parser {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `regex`, `json`, `ltsv`, `logfmt` or `rfc3164`.
    pub fn format_name(&self) -> &'static str {
        match self.format {
            Format::Regex(_) => "regex",
            Format::Json => "json",
            Format::Ltsv => "ltsv",
            Format::Logfmt { .. } => "logfmt",
            Format::Rfc3164 => "rfc3164",
            Format::Raw => "raw",
        }
    }

    /// Build from a `[PARSER]` section; checks keys with `config::schema::check_keys`.
    pub fn from_section(section: &Section) -> Result<Parser, Vec<ConfigError>> {
        build::from_section(section)
    }

    /// The native RFC3164 decoder (gatelog's `Format rfc3164`), used by the
    /// embedded default: header time kept under `time`, zone-less times in
    /// the caller's zone.
    pub fn rfc3164(name: &str) -> Parser {
        Parser {
            name: name.to_owned(),
            format: Format::Rfc3164,
            time: time::TimeRule { key: "time".to_owned(), format: None, keep: true, strict: true, zone: None },
            types: Vec::new(),
            decoders: Vec::new(),
            time_warn: RateLimiter::default(),
        }
    }

    pub fn parse(&self, input: &[u8], ctx: &ParseContext) -> Result<Parsed, ParseFailure> {
        self.parse_checked(input, None, ctx, None, None)
    }

    /// [`Parser::parse`] that builds only the fields `keep` holds (a
    /// [`Parser::projection`] of this parser). `order`, the caller's
    /// memory of the JSON key order (one per caller and `keep`), makes
    /// decoding records that share their keys' order cheaper.
    pub fn parse_keeping(
        &self,
        input: &[u8],
        ctx: &ParseContext,
        keep: Option<&KeySet>,
        order: Option<&mut KeyOrder>,
    ) -> Result<Parsed, ParseFailure> {
        self.parse_checked(input, None, ctx, keep, order)
    }

    /// Parse a value that is already a string (the `parser` filter's field):
    /// the JSON and regex parsers then skip their UTF-8 check of the input.
    pub fn parse_text(
        &self,
        text: &str,
        ctx: &ParseContext,
        keep: Option<&KeySet>,
        order: Option<&mut KeyOrder>,
    ) -> Result<Parsed, ParseFailure> {
        self.parse_checked(text.as_bytes(), Some(text), ctx, keep, order)
    }

    /// The keys this parser must build for a pipeline whose stages read only
    /// `reads` (see `record::reads`): `None` when it builds everything anyway
    /// (only the JSON and rfc3164 formats skip fields, and not when
    /// `Decode_Field` rules rewrite them). The `Time_Key` is always built
    /// when a `Time_Format` reads it.
    pub fn projection(&self, reads: &BTreeSet<String>) -> Option<KeySet> {
        if !matches!(self.format, Format::Json | Format::Rfc3164) || !self.decoders.is_empty() {
            return None;
        }
        let time_key = self.time.format.is_some().then_some(self.time.key.as_str());
        Some(KeySet::new(reads.iter().map(String::as_str).chain(time_key)))
    }

    /// `text`, when given, is `input` known to be valid UTF-8; `keep`, when
    /// given, the only top-level fields to build (JSON and rfc3164).
    fn parse_checked(
        &self,
        input: &[u8],
        text: Option<&str>,
        ctx: &ParseContext,
        keep: Option<&KeySet>,
        order: Option<&mut KeyOrder>,
    ) -> Result<Parsed, ParseFailure> {
        let (mut fields, time) = match &self.format {
            Format::Rfc3164 => {
                let key = self.time.keep.then_some(self.time.key.as_str());
                let (fields, tm) = rfc3164::fields(input, key, keep)?;
                let t = time::resolve(&tm, ctx.now, self.time.zone(&ctx.zone));
                (fields, t)
            }
            other => {
                let mut fields = match other {
                    Format::Regex(r) => match text {
                        Some(t) => r.fields_str(t)?,
                        None => r.fields(input)?,
                    },
                    Format::Json => match text {
                        Some(t) => json::parse_object_str(t, keep, order)?,
                        None => json::parse_object(input, keep, order)?,
                    },
                    Format::Ltsv => kv::ltsv(input)?,
                    Format::Logfmt { no_bare_keys } => kv::logfmt(input, *no_bare_keys)?,
                    Format::Raw => {
                        let line = input.strip_suffix(b"\n").unwrap_or(input);
                        vec![(Text::const_new("message"), Value::Str(crate::record::lossy_text(line)))]
                    }
                    Format::Rfc3164 => Vec::new(),
                };
                let t = self.apply_time(&mut fields, ctx);
                (fields, t)
            }
        };
        types::apply(&mut fields, &self.types);
        decode::apply(&mut fields, &self.decoders);
        Ok(Parsed { fields: Map::from_pairs(fields), time })
    }

    /// Fluent Bit's time handling: the first `Time_Key` field holding a
    /// string is parsed with `Time_Format` and removed unless `Time_Keep`.
    fn apply_time(&self, fields: &mut Vec<(Text, Value)>, ctx: &ParseContext) -> Option<Timestamp> {
        self.time.format.as_ref()?;
        let idx = fields.iter().position(|(k, v)| *k == self.time.key && matches!(v, Value::Str(_)))?;
        let value = fields.get(idx)?.1.as_str()?;
        match self.time.parse(value, ctx.now, &ctx.zone) {
            Some(t) => {
                if !self.time.keep {
                    fields.remove(idx);
                }
                Some(t)
            }
            None => {
                crate::warn_limited!(
                    self.time_warn,
                    parser = %self.name,
                    value = %value,
                    format = self.time.format.as_ref().map(|f| f.source()).unwrap_or(""),
                    "time does not match Time_Format; record kept without event time"
                );
                None
            }
        }
    }
}

/// Every `[PARSER]` by name, as loaded from parsers files.
#[derive(Debug, Default)]
pub struct ParserRegistry {
    parsers: Vec<Arc<Parser>>,
}

impl ParserRegistry {
    /// Empty: Fluent Bit loads no parser by default.
    pub fn new() -> Self {
        ParserRegistry::default()
    }

    /// Add `[PARSER]` sections in order; a duplicate name logs a warning and
    /// keeps the first. `[MULTILINE_PARSER]` sections are accepted with a
    /// warning that they are not supported. Other sections are ignored.
    pub fn load_sections(&mut self, sections: &[Section]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for s in sections {
            match s.name.as_str() {
                "PARSER" => match Parser::from_section(s) {
                    Ok(p) => {
                        if self.get(p.name()).is_some() {
                            tracing::warn!(parser = p.name(), at = %s.loc, "duplicate parser name; the first definition is kept");
                        } else {
                            self.parsers.push(Arc::new(p));
                        }
                    }
                    Err(e) => errors.extend(e),
                },
                "MULTILINE_PARSER" => {
                    tracing::warn!(
                        at = %s.loc,
                        name = s.value("name").unwrap_or(""),
                        "[MULTILINE_PARSER] is not supported by gatelog and is ignored"
                    );
                }
                _ => {}
            }
        }
        errors
    }

    /// Exact (case-sensitive) name lookup, like Fluent Bit's `flb_parser_get`.
    pub fn get(&self, name: &str) -> Option<Arc<Parser>> {
        self.parsers.iter().find(|p| p.name == name).cloned()
    }

    /// Names in load order.
    pub fn names(&self) -> Vec<String> {
        self.parsers.iter().map(|p| p.name.clone()).collect()
    }

    /// Register an already built parser (e.g. the embedded rfc3164 default);
    /// returns false, keeping the existing one, when the name is taken.
    pub fn insert(&mut self, parser: Parser) -> bool {
        if self.get(parser.name()).is_some() {
            return false;
        }
        self.parsers.push(Arc::new(parser));
        true
    }
}

#[cfg(test)]
mod tests;
