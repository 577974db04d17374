//! Filters, applied in config order to the records whose tag they match:
//! `parser` (parse a field), `lua` (run a Fluent Bit Lua script),
//! `rewrite_tag` (re-tag a copy, which re-enters the chain). Each takes one
//! record and pushes zero or more records to `out`, and re-tagged ones to
//! `emitted`.

pub mod lua;
pub mod parser;
pub mod rewrite_tag;

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::{ConfigError, Section};
use crate::parser::{ParseContext, ParserRegistry};
use crate::record::reads::Reads;
use crate::record::Record;
use crate::stats::FilterCounters;

/// Filter plugin names gatelog knows.
pub const KNOWN: &[&str] = &["parser", "lua", "rewrite_tag"];

pub enum Filter {
    Parser(parser::ParserFilter),
    Lua(Box<lua::LuaFilter>),
    RewriteTag(rewrite_tag::RewriteTag),
}

/// What building a filter may need.
pub struct BuildContext<'a> {
    pub parsers: &'a ParserRegistry,
    pub base_dir: &'a Path,
    pub instance: &'a str,
}

impl Filter {
    pub fn from_section(s: &Section, ctx: &BuildContext) -> Result<Filter, Vec<ConfigError>> {
        match s.plugin_name().as_deref() {
            Some("parser") => parser::ParserFilter::from_section(s, ctx.parsers).map(Filter::Parser),
            Some("rewrite_tag") => rewrite_tag::RewriteTag::from_section(s).map(Filter::RewriteTag),
            Some("lua") => {
                lua::LuaFilter::from_section(s, ctx.base_dir, ctx.instance).map(|f| Filter::Lua(Box::new(f)))
            }
            Some(other) => Err(vec![ConfigError::at(
                s.get("name").map(|p| &p.loc).unwrap_or(&s.loc),
                format!("unknown filter '{other}'"),
            )
            .with_hint(format!("gatelog's filters: {}", KNOWN.join(", ")))]),
            None => Err(vec![ConfigError::at(&s.loc, "[FILTER] without Name").with_hint("add 'Name parser' (or lua)")]),
        }
    }

    pub fn plugin(&self) -> &'static str {
        match self {
            Filter::Parser(_) => "parser",
            Filter::Lua(_) => "lua",
            Filter::RewriteTag(_) => "rewrite_tag",
        }
    }

    /// The top-level fields this filter reads (see `record::reads`).
    pub fn reads(&self) -> Reads {
        match self {
            Filter::Parser(f) => f.reads(),
            Filter::Lua(f) => f.reads(),
            Filter::RewriteTag(f) => f.reads(),
        }
    }

    /// The largest message an input takes (a Lua filter's direct run and
    /// its reads depend on it, see `lua::native`).
    pub fn bound_records(&mut self, max_message: usize) {
        if let Filter::Lua(f) = self {
            f.bound_records(max_message);
        }
    }

    /// Let the parsers of this filter build only `reads`; the name of each
    /// parser that does and the fields it builds.
    pub fn project(&mut self, reads: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
        match self {
            Filter::Parser(f) => f.project(reads),
            _ => Vec::new(),
        }
    }

    /// Apply to one record: results that keep going to `out`, re-tagged
    /// copies that re-enter the chain to `emitted`.
    pub fn apply(
        &mut self,
        rec: Record,
        out: &mut Vec<Record>,
        emitted: &mut Vec<Record>,
        counters: &FilterCounters,
        ctx: &ParseContext,
    ) {
        match self {
            Filter::Parser(f) => f.apply(rec, out, counters, ctx),
            Filter::Lua(f) => f.apply(rec, out, counters),
            Filter::RewriteTag(f) => f.apply(rec, out, emitted, counters),
        }
    }
}
