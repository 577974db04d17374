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
//! `LuaFilter` is `Send` by an `unsafe impl` (see the SAFETY note below)
//! because mlua is built without its `send` feature; enabling that feature
//! would make the impl unnecessary.

mod convert;
mod limits;
mod options;
mod reuse;
mod vm;

use std::path::Path;
use std::sync::Arc;

use mlua::{Function, Lua, Table};

use crate::config::{ConfigError, Section};
use crate::ratelimit::RateLimiter;
use crate::record::{Map, Record, Timestamp};
use crate::stats::FilterCounters;

pub use options::{DEFAULT_INSTRUCTION_LIMIT, DEFAULT_MEMORY_LIMIT};

use convert::{Converter, Shape};
use limits::{Limits, Tripped};
use options::Settings;

/// One `[FILTER] Name lua` instance with its own VM.
pub struct LuaFilter {
    lua: Lua,
    func: Function,
    limits: Limits,
    conv: Converter,
    /// The last tag passed to Lua (records of one input share one tag).
    tag: Option<(Arc<str>, mlua::String)>,
    time_as_table: bool,
    protected_mode: bool,
    instance: String,
    /// `script` path or `<instance>.code`, for log lines.
    script: String,
    errors: RateLimiter,
}

// SAFETY: mlua without its `send` feature marks `Lua` and its handles `!Send`
// because they share reference counts. Every handle into this VM (`lua`,
// `func`, the interned strings in `conv` and `tag`, the hook's budget) is
// owned by this struct and never handed out, so the whole VM moves between
// threads as one unit and is only used through `&mut self`. mlua keeps no
// thread-local state, and a LuaJIT state is not tied to a thread.
unsafe impl Send for LuaFilter {}

/// What the script asked for.
enum Outcome {
    Drop,
    Keep,
    /// One record, built by moving the original's unchanged strings.
    ReplaceOne {
        time: Timestamp,
        plan: reuse::Plan,
    },
    /// A split: one record per element.
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
        let script = match &settings.source {
            options::Source::File(p) => p.display().to_string(),
            options::Source::Inline(_) => format!("{instance}.code"),
        };
        Ok(LuaFilter {
            conv: Converter::new(settings.type_int_keys, settings.type_array_keys, settings.enable_flb_null),
            lua,
            func,
            limits,
            tag: None,
            time_as_table: settings.time_as_table,
            protected_mode: settings.protected_mode,
            instance: instance.to_owned(),
            script,
            errors: RateLimiter::default(),
        })
    }

    /// Apply to one record, pushing 0..n resulting records to `out` (a split
    /// emits several, `-1` none). Errors pass the record unchanged and count
    /// `errors`; drops count `drop_records`, extra split records `add_records`.
    pub fn apply(&mut self, rec: Record, out: &mut Vec<Record>, counters: &FilterCounters) {
        match self.run(&rec) {
            Ok(Outcome::Keep) => out.push(rec),
            Ok(Outcome::Drop) => counters.drop_records.inc(),
            Ok(Outcome::ReplaceOne { time, plan }) => {
                let fields = reuse::materialize(plan, rec.fields);
                out.push(Record::new(rec.tag, time, fields));
            }
            Ok(Outcome::Replace { time, records }) => {
                counters.add_records.add(records.len().saturating_sub(1) as u64);
                out.extend(records.into_iter().map(|fields| Record::new(rec.tag.clone(), time, fields)));
            }
            Err(message) => {
                counters.errors.inc();
                self.report(&message);
                out.push(rec);
            }
        }
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

    fn run(&mut self, rec: &Record) -> Result<Outcome, String> {
        let lua = &self.lua;
        let conversion = |e: mlua::Error| format!("record conversion failed: {}", vm::first_line(&e));
        let record = self.conv.to_table(lua, &rec.fields).map_err(conversion)?;
        let time = timestamp_in(lua, rec.time, self.time_as_table).map_err(conversion)?;
        let tag = match &self.tag {
            Some((t, s)) if Arc::ptr_eq(t, &rec.tag) || **t == *rec.tag => s.clone(),
            _ => {
                let s = lua.create_string(&*rec.tag).map_err(conversion)?;
                self.tag = Some((rec.tag.clone(), s.clone()));
                s
            }
        };

        self.limits.arm(lua);
        let result = self.func.call::<(mlua::Value, mlua::Value, mlua::Value)>((tag, time, record));
        self.limits.disarm(lua);
        let (code, time, table) = match result {
            Ok(r) => r,
            Err(e) => {
                let tripped = self.limits.tripped(&e);
                if tripped.is_some() {
                    self.limits.recover(lua);
                }
                return Err(match tripped {
                    Some(Tripped::Memory) => format!("{} (memory_limit reached)", vm::first_line(&e)),
                    _ => vm::first_line(&e),
                });
            }
        };

        match return_code(&code) {
            -1 => Ok(Outcome::Drop),
            0 => Ok(Outcome::Keep),
            c @ (1 | 2) => {
                let time = if c == 1 { timestamp_out(&time).unwrap_or(rec.time) } else { rec.time };
                let mlua::Value::Table(table) = table else {
                    return Err(format!("code {c} returned with a {} instead of a table", table.type_name()));
                };
                self.records(&table, &rec.fields, time).map_err(conversion)?
            }
            c => Err(format!("unexpected return code {c}, original record kept")),
        }
    }

    /// The returned table as one record, or one per element of an array of
    /// tables. Inner `Err`: the table is not a valid record (Fluent Bit 1.8:
    /// "invalid table returned"), e.g. empty or an array holding a non-table.
    fn records(&self, table: &Table, original: &Map, time: Timestamp) -> mlua::Result<Result<Outcome, String>> {
        let elements = match convert::shape(table)? {
            Shape::Array(items) if items.iter().all(|v| matches!(v, mlua::Value::Table(_))) => items,
            Shape::Array(_) => return Ok(Err("returned array holds something other than record tables".into())),
            Shape::Map(pairs) => {
                let plan = reuse::plan(&self.conv, table, pairs, original)?;
                if plan.is_empty() {
                    return Ok(Err("returned record is empty".into()));
                }
                return Ok(Ok(Outcome::ReplaceOne { time, plan }));
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
}

/// The record's time as Lua sees it.
fn timestamp_in(lua: &Lua, t: Timestamp, as_table: bool) -> mlua::Result<mlua::Value> {
    if !as_table {
        return Ok(mlua::Value::Number(t.as_f64()));
    }
    let table = lua.create_table_with_capacity(0, 2)?;
    table.raw_set("sec", t.secs as f64)?;
    table.raw_set("nsec", f64::from(t.nanos))?;
    Ok(mlua::Value::Table(table))
}

/// The script's returned time: a number, or a `{sec=, nsec=}` table.
fn timestamp_out(v: &mlua::Value) -> Option<Timestamp> {
    match v {
        mlua::Value::Integer(i) => Some(Timestamp::new(*i, 0)),
        mlua::Value::Number(f) => Some(Timestamp::from_f64(*f)),
        mlua::Value::Table(t) => {
            let sec: f64 = t.raw_get("sec").ok()?;
            let nsec: f64 = t.raw_get::<Option<f64>>("nsec").ok()?.unwrap_or(0.0);
            if !sec.is_finite() || !(0.0..1e9).contains(&nsec) {
                return None;
            }
            Some(Timestamp::new(sec as i64, nsec as u32))
        }
        mlua::Value::String(s) => s.to_str().ok()?.trim().parse::<f64>().ok().map(Timestamp::from_f64),
        _ => None,
    }
}

/// `lua_tointeger` of the first result: numbers truncate, numeric strings
/// convert, anything else (including no result) is 0 = keep.
fn return_code(v: &mlua::Value) -> i64 {
    match v {
        mlua::Value::Integer(i) => *i,
        mlua::Value::Number(f) if f.is_finite() => *f as i64,
        mlua::Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()).map_or(0, |f| f as i64),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
