//! One call of the script, record in and result out, in a single protected
//! call ([`Entry`]) on the raw C API: mlua's typed handles cost a registry
//! reference, a protected call or a type dispatch per value, which was most
//! of the filter's time.
//!
//! Inside the call, the stack holds: 1 the anchor table (a registry table
//! holding the trampoline, the `call` function, the `sec`/`nsec` strings,
//! the last tag and the interned keys, see [`super::push`]), then the
//! function and its three arguments, which `lua_pcall` replaces by its three
//! results. The memory limit is armed only around that `lua_pcall` (see
//! [`super::limits`]), so conversion never fails on it. No message handler
//! is installed: only an error's first line is reported, so a traceback
//! would be built for nothing.
//!
//! Garbage: every record leaves a table and its new strings behind, and
//! LuaJIT's collector re-marks the whole live heap once per cycle; a cycle
//! starts when the heap reaches `pause`% of the live size after the last
//! one. With the default 200 the marking of a small heap ran every few dozen
//! records. [`GcTuning`] raises the pause to [`LARGE_PAUSE`] while the heap
//! is small next to `memory_limit` (Lua 5.1 has no emergency collection, so
//! garbage could otherwise push a script over its limit), and leaves a pause
//! the script set itself alone.
//!
//! The way back reads the results with non-allocating calls only, so no Lua
//! error (a `__gc` finalizer run by an allocation) can interrupt it. A flat
//! record returned as a map is read by [`super::reuse`]; anything else (a
//! nested table, a non-string key, an array of records) is parked in the
//! anchor table and converted by [`super::convert`] with mlua.

use std::sync::Arc;

use mlua::{Lua, RegistryKey, Table};

use super::convert::Converter;
use super::keys::{KeyCache, Origins};
use super::limits::Limits;
use super::push::{self, Pusher, FUNC, NSEC, PARKED, SEC, TAG};
use super::reuse::{self, Plan, Walked};
use super::stack::{Entry, Kind, Stack, ERRMEM};
use crate::record::{lossy_string, Text, Timestamp, Value};

/// What one call produced.
pub(crate) enum Step {
    Drop,
    Keep,
    /// Code 1/2 with a flat map: the fields are in [`Crossing::plan`].
    Replace(Timestamp),
    /// Code 1/2 with a table the fast path does not read (returned as the
    /// `Table` beside this step).
    Convert(Timestamp),
    /// The script raised an error (`out_of_memory`: the memory limit).
    ScriptError {
        message: String,
        out_of_memory: bool,
    },
    /// The record could not be passed, or the result is not a record.
    Invalid(String),
}

/// The pause used while the heap is small.
pub(crate) const LARGE_PAUSE: i32 = 400;
/// Lua's default pause.
const DEFAULT_PAUSE: i32 = 200;
/// Calls between two looks at the heap size.
const GC_CHECK_EVERY: u32 = 256;

/// See the module doc.
struct GcTuning {
    /// The pause gatelog set last; `None` once the script set its own.
    pause: Option<i32>,
    countdown: u32,
}

impl GcTuning {
    fn check(&mut self, st: &mut Stack, memory_limit: usize) {
        let Some(current) = self.pause else { return };
        if self.countdown > 0 {
            self.countdown -= 1;
            return;
        }
        self.countdown = GC_CHECK_EVERY;
        // Garbage may reach (pause - 100)% of the live heap: stay under an
        // eighth of the limit so that even then the heap is at half of it.
        let small = memory_limit == 0 || st.gc_count_kib().saturating_mul(1024 * 8) < memory_limit;
        let wanted = if small { LARGE_PAUSE } else { DEFAULT_PAUSE };
        if wanted == current {
            return;
        }
        let previous = st.gc_set_pause(wanted);
        if previous != current {
            // The script changed the pause: its choice wins from now on.
            st.gc_set_pause(previous);
            self.pause = None;
        } else {
            self.pause = Some(wanted);
        }
    }
}

/// What a call needs of the filter.
pub(crate) struct Vm<'a> {
    pub lua: &'a Lua,
    pub limits: &'a Limits,
    pub conv: &'a Converter,
}

/// The record going in.
pub(crate) struct Input<'a> {
    pub tag: &'a Arc<str>,
    pub time: Timestamp,
    pub fields: &'a [(Text, Value)],
}

/// The per-VM state of the crossing; scratch buffers are reused.
pub(crate) struct Crossing {
    /// The anchor table, by registry reference (for the raw side) and as a
    /// handle (to take a parked result).
    anchors: Table,
    _anchors_ref: RegistryKey,
    entry: Entry,
    keys: KeyCache,
    origins: Origins,
    tag: Option<Arc<str>>,
    flb_null: bool,
    time_as_table: bool,
    gc: GcTuning,
    pub(crate) plan: Plan,
}

impl Crossing {
    /// Set up the anchor table holding `func`.
    pub(crate) fn new(lua: &Lua, func: mlua::Function, flb_null: bool, time_as_table: bool) -> mlua::Result<Self> {
        let anchors = lua.create_table()?;
        anchors.raw_set(FUNC, func)?;
        anchors.raw_set(SEC, "sec")?;
        anchors.raw_set(NSEC, "nsec")?;
        let anchors_ref = lua.create_registry_value(&anchors)?;
        Ok(Crossing {
            entry: Entry::new(lua, &anchors_ref)?,
            anchors,
            _anchors_ref: anchors_ref,
            keys: KeyCache::default(),
            origins: Origins::default(),
            tag: None,
            flb_null,
            time_as_table,
            gc: GcTuning { pause: Some(DEFAULT_PAUSE), countdown: 0 },
            plan: Plan::default(),
        })
    }

    /// Call the script on one record. `Err`: a Lua error outside the
    /// script's own call (e.g. raised by a `__gc` finalizer while the record
    /// was built).
    pub(crate) fn call(&mut self, vm: &Vm<'_>, input: &Input<'_>) -> mlua::Result<(Step, Option<Table>)> {
        let mut step = Step::Keep;
        vm.limits.reset(vm.lua);
        let entry = self.entry;
        let called = entry.call(&mut |st| {
            step = self.cross(st, vm, input);
            if matches!(step, Step::Convert(_)) {
                st.push_copy(RESULT_SLOT);
                st.raw_seti(ANCHORS, PARKED);
            }
            st.set_top(0);
        });
        vm.limits.memory_off(vm.lua);
        if let Err(message) = called {
            return Err(mlua::Error::runtime(message));
        }
        let table = match step {
            Step::Convert(_) => {
                let t = self.anchors.raw_get::<Option<Table>>(PARKED)?;
                self.anchors.raw_set(PARKED, mlua::Value::Nil)?;
                t
            }
            _ => None,
        };
        Ok((step, table))
    }

    fn cross(&mut self, st: &mut Stack, vm: &Vm<'_>, input: &Input<'_>) -> Step {
        let (lua, limits) = (vm.lua, vm.limits);
        let (tag, time, fields) = (input.tag, input.time, input.fields);
        // Slot 1: the anchor table.
        if !st.reserve(8) {
            return Step::Invalid("Lua stack exhausted".into());
        }
        self.gc.check(st, limits.memory_limit());
        st.raw_geti(ANCHORS, FUNC); // 2
        self.push_tag(st, tag); // 3
        push::time(st, ANCHORS, time, self.time_as_table); // 4
        let mut pusher =
            Pusher { anchors: ANCHORS, keys: &mut self.keys, origins: &mut self.origins, flb_null: self.flb_null };
        if let Err(e) = pusher.record(st, fields) {
            return Step::Invalid(format!("record conversion failed: {e}"));
        }

        limits.memory_on(lua);
        let status = st.pcall(3, 3);
        limits.memory_off(lua);
        if status != 0 {
            return Step::ScriptError { message: error_message(st, -1), out_of_memory: status == ERRMEM };
        }

        match return_code(st, CODE) {
            -1 => Step::Drop,
            0 => Step::Keep,
            c @ (1 | 2) => {
                let time = if c == 1 { timestamp_out(st, TIME).unwrap_or(time) } else { time };
                if st.kind(RESULT_SLOT) != Kind::Table {
                    return Step::Invalid(format!(
                        "code {c} returned with a {} instead of a table",
                        st.type_name(RESULT_SLOT)
                    ));
                }
                match reuse::walk(st, RESULT_SLOT, &self.origins, fields, vm.conv.int_keys(), &mut self.plan) {
                    Walked::Record => Step::Replace(time),
                    Walked::Empty => Step::Invalid("returned record is empty".into()),
                    Walked::Other => Step::Convert(time),
                }
            }
            c => Step::Invalid(format!("unexpected return code {c}, original record kept")),
        }
    }

    /// The tag string, re-created only when it changes (records of one
    /// input share one tag).
    fn push_tag(&mut self, st: &mut Stack, tag: &Arc<str>) {
        if let Some(t) = &self.tag {
            if Arc::ptr_eq(t, tag) || **t == **tag {
                st.raw_geti(ANCHORS, TAG);
                return;
            }
        }
        st.push_bytes(tag.as_bytes());
        st.push_copy(-1);
        st.raw_seti(ANCHORS, TAG);
        self.tag = Some(tag.clone());
    }
}

/// Stack slots inside the closure.
const ANCHORS: i32 = 1;
const CODE: i32 = 2;
const TIME: i32 = 3;
const RESULT_SLOT: i32 = 4;

/// `lua_tointeger` of the first result: numbers truncate, numeric strings
/// convert, anything else (including no result) is 0 = keep.
fn return_code(st: &Stack, idx: i32) -> i64 {
    match st.kind(idx) {
        Kind::Number => {
            let f = st.number(idx);
            if f.is_finite() {
                f as i64
            } else {
                0
            }
        }
        Kind::String => parse_number(st.bytes(idx)).map_or(0, |f| f as i64),
        _ => 0,
    }
}

fn parse_number(bytes: Option<&[u8]>) -> Option<f64> {
    std::str::from_utf8(bytes?).ok()?.trim().parse::<f64>().ok()
}

/// The script's returned time: a number, a numeric string, or a
/// `{sec=, nsec=}` table; `None` keeps the record's time.
fn timestamp_out(st: &mut Stack, idx: i32) -> Option<Timestamp> {
    match st.kind(idx) {
        Kind::Number => Some(Timestamp::from_f64(st.number(idx))),
        Kind::String => parse_number(st.bytes(idx)).map(Timestamp::from_f64),
        Kind::Table => {
            let base = st.top();
            st.raw_geti(ANCHORS, SEC);
            st.raw_get(idx);
            let sec = st.coerce_number(-1);
            st.raw_geti(ANCHORS, NSEC);
            let nsec = match st.raw_get(idx) {
                Kind::Nil => Some(0.0),
                _ => st.coerce_number(-1),
            };
            st.set_top(base);
            let (sec, nsec) = (sec?, nsec?);
            if !sec.is_finite() || !(0.0..1e9).contains(&nsec) {
                return None;
            }
            Some(Timestamp::new(sec as i64, nsec as u32))
        }
        _ => None,
    }
}

/// The first line of an error value (`file.lua:3: message`).
fn error_message(st: &Stack, idx: i32) -> String {
    let text = match st.kind(idx) {
        Kind::String => st.bytes(idx).map(lossy_string).unwrap_or_default(),
        Kind::Number => match super::convert::number(st.number(idx)) {
            Value::Int(i) => i.to_string(),
            _ => st.number(idx).to_string(),
        },
        _ => format!("(error object is a {} value)", st.type_name(idx)),
    };
    text.lines().next().unwrap_or("").trim_end().to_owned()
}
