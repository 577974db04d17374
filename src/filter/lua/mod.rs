//! The `lua` filter: runs a Fluent Bit Lua script, unmodified, on each
//! record (reference §5).
//!
//! Contract: `f(tag, timestamp, record)` returns `code, timestamp, record`;
//! `-1` drops the record, `0` keeps it unchanged, `1` replaces record and
//! timestamp, `2` replaces the record and keeps the timestamp; an array of
//! tables with code 1/2 splits into one record per element (same
//! timestamp); any other code keeps the original with a warning. The
//! timestamp is a double (`seconds.fraction`), or `{sec=, nsec=}` with
//! `time_as_table` (either form is accepted back).
//!
//! Invariants: `apply` never panics and never loses a record by accident:
//! a script error, a limit hit ([`limits`]), an invalid returned table or an
//! unexpected code passes the original record, counts
//! `FilterCounters::errors` and logs a rate-limited line naming
//! `script:line`. With `protected_mode off`, Fluent Bit would abort the
//! process on a script error; gatelog still passes the record and logs at
//! `error` level instead of `warn`.
//!
//! Deliberate differences from Fluent Bit 1.8: the script's top level must
//! run without error (as in 2.x); a returned timestamp that is neither a
//! number nor a table keeps the record's time (Fluent Bit sets 0);
//! `type_int_key` matches whole key names (1.8 compared prefixes) and
//! truncates to 64 bits (1.8 to 32); record key order is kept (see
//! [`convert`]); a script error affects only its own record (Fluent Bit
//! passes the whole chunk, which in 1.8 is one datagram anyway).
//!
//! Speed: each record crosses into Lua and back in one protected call on
//! the raw C API ([`crossing`], with [`push`] the way in and [`reuse`] the
//! way back for a flat record; [`stack`] holds the `unsafe`). Records of a
//! repeated key shape cross through Lua code compiled for that shape
//! ([`shapes`]): a template table copied in one step, and a checker that
//! tells which values the script changed, so only those are read back.
//! A `call` function without branches or loops, in the subset of
//! [`native`], does not cross at all: gatelog runs its bytecode on the
//! record's fields itself, with the VM's result, and the record goes
//! through the VM only where the direct run gives up. Such a filter also
//! reads only the fields its function reads and sets ([`LuaFilter::reads`]),
//! so the parsers before it build no others.
//!
//! `LuaFilter` is `Send` by an `unsafe impl` (see the SAFETY note below)
//! because mlua is built without its `send` feature; enabling that feature
//! would make the impl unnecessary.

mod convert;
mod crossing;
mod keys;
mod limits;
mod native;
mod options;
mod push;
mod reuse;
mod shapes;
mod stack;
mod vm;

use std::path::Path;
use std::sync::Arc;

use mlua::{Lua, Table};

use crate::config::{ConfigError, Section};
use crate::ratelimit::RateLimiter;
use crate::record::reads::Reads;
use crate::record::{Map, Record, Text, Timestamp, Value};
use crate::stats::FilterCounters;

pub use options::{DEFAULT_INSTRUCTION_LIMIT, DEFAULT_MEMORY_LIMIT};

use convert::{Converter, Shape};
use crossing::{Crossing, Input, Step, Vm};
use limits::Limits;
use native::Native;
use options::Settings;

/// One `[FILTER] Name lua` instance with its own VM.
pub struct LuaFilter {
    lua: Lua,
    limits: Limits,
    conv: Converter,
    crossing: Crossing,
    /// The function run without the VM, when it is straight-line code.
    native: Option<Native>,
    protected_mode: bool,
    instance: String,
    /// `script` path or `<instance>.code`, for log lines.
    script: String,
    errors: RateLimiter,
    /// `os.setlocale` calls seen (see `vm::forget_dates_if_locale_changed`).
    locale_changes: u64,
}

// SAFETY: mlua without its `send` feature marks `Lua` and its handles `!Send`
// because they share reference counts, and the crossing's key cache holds
// raw addresses of strings inside the VM. Every handle into this VM (`lua`,
// the anchor table's registry key and interned strings in `crossing`, the
// hook's budget, the direct runner's `os.date`) is owned by this struct and
// never handed out, and so are the direct runner's `Rc` strings, so the
// whole VM moves between threads as one unit and is only used through
// `&mut self`. mlua keeps no thread-local state, and a LuaJIT state is not
// tied to a thread.
unsafe impl Send for LuaFilter {}

/// What the script asked for.
enum Outcome {
    Drop,
    Keep,
    /// One record, built in place from the original by the crossing's plan.
    ReplaceOne(Timestamp),
    /// Records converted from a table the fast path does not read (nested
    /// tables, a split into several records).
    Replace {
        time: Timestamp,
        records: Vec<Map>,
    },
}

impl LuaFilter {
    /// Build from a `[FILTER] Name lua` section. `base_dir`: a relative
    /// `script` is tried as given, then relative to it. Loads the script (a
    /// syntax error names the script's file:line and the `script` property's
    /// location), runs its top level once, and checks that `call` exists.
    pub fn from_section(section: &Section, base_dir: &Path, instance: &str) -> Result<LuaFilter, Vec<ConfigError>> {
        let settings = Settings::from_section(section, base_dir)?;
        let vm_error =
            |e: mlua::Error| vec![ConfigError::at(&settings.source_loc, format!("cannot create the Lua VM: {e}"))];
        let lua = vm::new_vm().map_err(vm_error)?;
        let limits = Limits::install(&lua, settings.instruction_limit, settings.memory_limit).map_err(vm_error)?;
        let func = vm::load(&lua, &settings, instance, &limits).map_err(|e| vec![e])?;
        let native = Native::new(
            &lua,
            &func,
            settings.time_as_table,
            settings.instruction_limit,
            settings.memory_limit,
            settings.enable_flb_null,
        );
        let crossing = Crossing::new(&lua, func, settings.enable_flb_null, settings.time_as_table).map_err(vm_error)?;
        let script = match &settings.source {
            options::Source::File(p) => p.display().to_string(),
            options::Source::Inline(_) => format!("{instance}.code"),
        };
        Ok(LuaFilter {
            conv: Converter::new(settings.type_int_keys, settings.type_array_keys),
            lua,
            limits,
            crossing,
            native,
            protected_mode: settings.protected_mode,
            instance: instance.to_owned(),
            script,
            errors: RateLimiter::default(),
            locale_changes: 0,
        })
    }

    /// Apply to one record, pushing 0..n resulting records to `out` (a split
    /// emits several, `-1` none). Errors pass the record unchanged and count
    /// `errors`; drops count `drop_records`, extra split records `add_records`.
    pub fn apply(&mut self, rec: Record, out: &mut Vec<Record>, counters: &FilterCounters) {
        vm::forget_dates_if_locale_changed(&self.lua, &mut self.locale_changes);
        let Record { tag, time, fields } = rec;
        let mut fields = fields.into_pairs();
        let outcome = match self.direct(&tag, time, &fields) {
            Some(outcome) => Ok(outcome),
            None => self.run(&tag, time, &mut fields),
        };
        match outcome {
            Ok(Outcome::Keep) => out.push(Record::new(tag, time, Map::from_pairs(fields))),
            Ok(Outcome::Drop) => counters.drop_records.inc(),
            Ok(Outcome::ReplaceOne(new_time)) => {
                reuse::materialize(&mut self.crossing.plan, &mut fields);
                out.push(Record::new(tag, new_time, Map::from_pairs(fields)));
            }
            Ok(Outcome::Replace { time, records }) => {
                counters.add_records.add(records.len().saturating_sub(1) as u64);
                out.extend(records.into_iter().map(|fields| Record::new(tag.clone(), time, fields)));
            }
            Err(message) => {
                counters.errors.inc();
                self.report(&message);
                out.push(Record::new(tag, time, Map::from_pairs(fields)));
            }
        }
    }

    /// The top-level fields this filter can observe: those its function
    /// reads and sets when it runs directly ([`native`]), else all.
    pub fn reads(&self) -> Reads {
        match self.native.as_ref().filter(|n| !n.checks_size()).and_then(|n| n.reads()) {
            Some(keys) => Reads::keys(keys),
            None => Reads::All,
        }
    }

    /// The largest message an input takes: when a record of it could
    /// come near the memory limit in the VM, each record's size is checked
    /// before a direct run, and the filter reads the whole record (the
    /// VM's memory error depends on every field).
    pub fn bound_records(&mut self, max_message: usize) {
        if let Some(n) = self.native.as_mut() {
            n.bound_records(max_message);
        }
    }

    /// The record run without the VM ([`native`]), if the function and
    /// the record allow it.
    fn direct(&mut self, tag: &Arc<str>, time: Timestamp, fields: &[(Text, Value)]) -> Option<Outcome> {
        let native = self.native.as_mut()?;
        let shapes = &mut self.crossing.shapes;
        let sh = shapes.find(fields).and_then(|i| shapes.get(i))?;
        // Up to date: `apply` just compared it (`forget_dates_if_locale_changed`).
        let locale = self.locale_changes;
        native.run(&self.lua, tag, time, fields, sh, self.conv.int_keys(), locale, &mut self.crossing.plan)
    }

    fn report(&self, message: &str) {
        if let Some(suppressed) = self.errors.check() {
            if self.protected_mode {
                tracing::warn!(filter = %self.instance, script = %self.script, suppressed, "lua: {message}; record passed unchanged");
            } else {
                tracing::error!(filter = %self.instance, script = %self.script, suppressed, "lua: {message}; record passed unchanged (protected_mode off would abort Fluent Bit)");
            }
        }
    }

    /// Run the script on a record's `fields` (left intact unless the outcome
    /// is `ReplaceOne`, whose plan then applies to them).
    fn run(&mut self, tag: &Arc<str>, time: Timestamp, fields: &mut Vec<(Text, Value)>) -> Result<Outcome, String> {
        let conversion = |e: mlua::Error| format!("record conversion failed: {}", vm::first_line(&e));
        let vm = Vm { lua: &self.lua, limits: &self.limits, conv: &self.conv };
        let called = self.crossing.call(&vm, &Input { tag, time, fields });
        let (step, table) = match called {
            Ok(r) => r,
            Err(e) => {
                if self.limits.instructions_tripped() {
                    self.limits.recover(&self.lua);
                }
                return Err(conversion(e));
            }
        };
        match step {
            Step::Drop => Ok(Outcome::Drop),
            Step::Keep => Ok(Outcome::Keep),
            Step::Replace(time) => Ok(Outcome::ReplaceOne(time)),
            Step::Convert(time) => {
                let Some(table) = table else {
                    return Err("record conversion failed: the returned table was lost".into());
                };
                let original = Map::from_pairs(std::mem::take(fields));
                let result = self.records(&table, &original, time);
                *fields = original.into_pairs();
                result.map_err(conversion)?
            }
            Step::ScriptError { message, out_of_memory } => {
                let instructions = self.limits.instructions_tripped();
                if instructions || out_of_memory {
                    self.limits.recover(&self.lua);
                }
                Err(if out_of_memory && !instructions { format!("{message} (memory_limit reached)") } else { message })
            }
            Step::Invalid(message) => Err(message),
        }
    }

    /// A returned table the fast path left: one record, or one per element
    /// of an array of tables. Inner `Err`: the table is not a valid record
    /// (Fluent Bit 1.8: "invalid table returned"), e.g. empty or an array
    /// holding a non-table.
    fn records(&self, table: &Table, original: &Map, time: Timestamp) -> mlua::Result<Result<Outcome, String>> {
        let elements = match convert::shape(table)? {
            Shape::Array(items) if items.iter().all(|v| matches!(v, mlua::Value::Table(_))) => items,
            Shape::Array(_) => return Ok(Err("returned array holds something other than record tables".into())),
            Shape::Map(pairs) => {
                let map = self.conv.map_from_pairs(table, pairs, Some(original))?;
                if map.is_empty() {
                    return Ok(Err("returned record is empty".into()));
                }
                return Ok(Ok(Outcome::Replace { time, records: vec![map] }));
            }
        };
        let mut records = Vec::with_capacity(elements.len());
        for v in elements {
            if let mlua::Value::Table(t) = v {
                let map = self.conv.to_map(&t, Some(original))?;
                if map.is_empty() {
                    return Ok(Err("returned array holds an empty record".into()));
                }
                records.push(map);
            }
        }
        Ok(Ok(Outcome::Replace { time, records }))
    }

    /// The error `apply` would report for `rec`, if any.
    #[cfg(test)]
    fn error_of(&mut self, rec: &Record) -> Option<String> {
        let mut fields = rec.fields.clone().into_pairs();
        self.run(&rec.tag, rec.time, &mut fields).err()
    }
}

#[cfg(test)]
mod tests;
