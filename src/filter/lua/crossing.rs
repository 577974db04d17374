//! One call of the script, record in and result out, in a single protected
//! call ([`Entry`]) on the raw C API: mlua's typed handles cost a registry
//! reference, a protected call or a type dispatch per value, which was most
//! of the filter's time.
//!
//! Inside the call, the stack holds: 1 the anchor table (a registry table
//! holding the trampoline, the `call` function, the `sec`/`nsec` strings,
//! the last tag, the interned keys, see [`super::push`], and the compiled
//! shapes); for a record of a compiled shape ([`super::shapes`]) the table
//! its constructor built, then the checker's call laid out in advance (the
//! checker, the table, the values); then the function and its three
//! arguments, which `lua_pcall` replaces by its three results. The memory
//! limit and the instruction hook are on only around that `lua_pcall` (see
//! [`super::limits`]), so conversion never fails on the limit and gatelog's
//! own Lua code does not pay the hook. No message handler
//! is installed: only an error's first line is reported, so a traceback
//! would be built for nothing.
//!
//! Garbage: every record leaves a table and its new strings behind, and
//! LuaJIT's collector re-marks the whole live heap once per cycle; a cycle
//! starts when the heap reaches `pause`% of the live size after the last
//! one. With the default 200 the marking of a small heap ran every few dozen
//! records. [`GcTuning`] sets the pause so that [`GARBAGE_BUDGET`] of
//! garbage gathers between two cycles (a small heap is marked rarely, a
//! large one keeps at least the default), within [`MAX_PAUSE`] and never
//! letting heap and garbage pass half of `memory_limit` (Lua 5.1 has no
//! emergency collection, so garbage could otherwise push a script over its
//! limit), and leaves a pause the script set itself alone.
//!
//! The way back reads the results with non-allocating calls only (the
//! shape checker aside: it is gatelog's own code and allocates nothing), so
//! no Lua error (a `__gc` finalizer run by an allocation) can interrupt it.
//! A record of a compiled shape returned as the same table is read through
//! its checker; another flat record returned as a map by [`super::reuse`]; anything else (a
//! nested table, a non-string key, an array of records) is parked in the
//! anchor table and converted by [`super::convert`] with mlua.

use std::sync::Arc;

use mlua::{Lua, RegistryKey, Table};

use super::convert::Converter;
use super::keys::{KeyCache, Origins};
use super::limits::Limits;
use super::push::{self, key_index, Pusher, FUNC, NSEC, PARKED, SEC, SETTLE, TAG};
use super::reuse::{self, Plan, Scalar, Unchanged, Walked};
use super::shapes::{Shape, Shapes, MAX_EXTRAS};
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

/// Garbage a VM may gather between two collections: the memory it costs
/// (per `lua` filter) for marking its live heap less often.
pub(crate) const GARBAGE_BUDGET: usize = 4 << 20;
/// The largest pause set (20× the live heap: a VM of 200 KiB).
pub(crate) const MAX_PAUSE: i32 = 2000;
/// Lua's default pause.
const DEFAULT_PAUSE: i32 = 200;

/// The pause for a heap of `heap` bytes (live, plus garbage not yet
/// collected: it errs on the low side) under `memory_limit` (0: none).
pub(crate) fn pause_for(heap: usize, memory_limit: usize) -> i32 {
    let mut garbage = GARBAGE_BUDGET;
    if memory_limit > 0 {
        garbage = garbage.min((memory_limit / 2).saturating_sub(heap));
    }
    let pause = 100 + garbage.saturating_mul(100) / heap.max(1);
    pause.clamp(DEFAULT_PAUSE as usize, MAX_PAUSE as usize) as i32
}
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
        let wanted = pause_for(st.gc_count_kib().saturating_mul(1024), memory_limit);
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
    pub(crate) shapes: Shapes,
    /// Key slots of the record pushed the general way.
    seen: Vec<u32>,
}

impl Crossing {
    /// Set up the anchor table holding `func`.
    pub(crate) fn new(lua: &Lua, func: mlua::Function, flb_null: bool, time_as_table: bool) -> mlua::Result<Self> {
        let anchors = lua.create_table()?;
        anchors.raw_set(FUNC, func)?;
        anchors.raw_set(SEC, "sec")?;
        anchors.raw_set(NSEC, "nsec")?;
        anchors.raw_set(SETTLE, lua.load("return function() end").set_name("=gatelog").eval::<mlua::Function>()?)?;
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
            shapes: Shapes::default(),
            seen: Vec::new(),
        })
    }

    /// Call the script on one record. `Err`: a Lua error outside the
    /// script's own call (e.g. raised by a `__gc` finalizer while the record
    /// was built).
    pub(crate) fn call(&mut self, vm: &Vm<'_>, input: &Input<'_>) -> mlua::Result<(Step, Option<Table>)> {
        let mut step = Step::Keep;
        let shape = self.shapes.find(input.fields);
        vm.limits.clear_trip();
        let entry = self.entry;
        let called = entry.call(&mut |st| {
            let (s, result) = self.cross(st, vm, input, shape);
            step = s;
            if matches!(step, Step::Convert(_)) {
                st.push_copy(result);
                st.raw_seti(ANCHORS, PARKED);
            }
            st.set_top(0);
        });
        // The limits are lifted already: the script runs in its own
        // `lua_pcall`, so no error escapes between `arm` and `disarm`.
        if let Err(message) = called {
            return Err(mlua::Error::runtime(message));
        }
        // Compiling is best effort: on an error the records go the general way.
        if shape.is_none() {
            let _ = self.shapes.observe(vm.lua, &self.anchors, &self.keys, &self.seen, input.fields);
        } else {
            let _ = self.shapes.learn(vm.lua, &self.anchors);
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

    /// One call inside the protected entry; also returns the stack slot of
    /// the script's returned record.
    fn cross(&mut self, st: &mut Stack, vm: &Vm<'_>, input: &Input<'_>, shape: Option<usize>) -> (Step, i32) {
        let (lua, limits) = (vm.lua, vm.limits);
        let (tag, time, fields) = (input.tag, input.time, input.fields);
        // Slot 1: the anchor table; with a shape, slots [`T_KEEP`] to `base`
        // (see [`VALUES`]).
        let room = if shape.is_some() { 2 * fields.len() + MAX_EXTRAS + 16 } else { 8 };
        if !st.reserve(room) {
            return (Step::Invalid("Lua stack exhausted".into()), 0);
        }
        self.gc.check(st, limits.memory_limit());
        let shape = shape.filter(|&i| self.shapes.get(i).is_some());
        let warm = shape.is_some_and(|i| self.shapes.warm_ctor(i));
        let base = match shape.and_then(|i| self.shapes.get(i)) {
            Some(sh) => {
                st.push_nil(); // T_KEEP
                st.raw_geti(ANCHORS, sh.checker_anchor()); // CHECKER
                st.push_nil(); // T
                let mut pusher = Pusher {
                    anchors: ANCHORS,
                    keys: &mut self.keys,
                    origins: &mut self.origins,
                    seen: &mut self.seen,
                    flb_null: self.flb_null,
                };
                pusher.values(st, &sh.slots, fields);
                st.raw_geti(ANCHORS, sh.anchor);
                for i in 0..fields.len() {
                    st.push_copy(VALUES + i as i32);
                }
                if warm {
                    let ctor = st.top() - fields.len() as i32;
                    warm_up(st, ctor, 1);
                }
                st.call(fields.len() as i32, 1);
                st.push_copy(-1);
                st.replace(T_KEEP);
                st.replace(T);
                st.top()
            }
            None => ANCHORS,
        };
        st.raw_geti(ANCHORS, FUNC);
        self.push_tag(st, tag);
        push::time(st, ANCHORS, time, self.time_as_table);
        if shape.is_some() {
            st.push_copy(T);
        } else if let Err(e) = self.pusher().record(st, fields) {
            return (Step::Invalid(format!("record conversion failed: {e}")), 0);
        }

        limits.arm(lua);
        let status = st.pcall(3, 3);
        limits.disarm(lua);
        let (code, time_slot, result) = (base + 1, base + 2, base + 3);
        if status != 0 {
            return (Step::ScriptError { message: error_message(st, -1), out_of_memory: status == ERRMEM }, result);
        }

        let step = match return_code(st, code) {
            -1 => Step::Drop,
            0 => Step::Keep,
            c @ (1 | 2) => {
                let time = if c == 1 { timestamp_out(st, time_slot).unwrap_or(time) } else { time };
                if st.kind(result) != Kind::Table {
                    return (
                        Step::Invalid(format!("code {c} returned with a {} instead of a table", st.type_name(result))),
                        result,
                    );
                }
                let (walked, table) = match shape {
                    Some(i) => self.back_shaped(st, vm, i, base, fields),
                    None => {
                        (reuse::walk(st, result, &self.origins, fields, vm.conv.int_keys(), &mut self.plan), result)
                    }
                };
                let step = match walked {
                    Walked::Record => Step::Replace(time),
                    Walked::Empty => Step::Invalid("returned record is empty".into()),
                    Walked::Other => Step::Convert(time),
                };
                return (step, table);
            }
            c => Step::Invalid(format!("unexpected return code {c}, original record kept")),
        };
        (step, result)
    }

    fn pusher(&mut self) -> Pusher<'_> {
        Pusher {
            anchors: ANCHORS,
            keys: &mut self.keys,
            origins: &mut self.origins,
            seen: &mut self.seen,
            flb_null: self.flb_null,
        }
    }

    /// The way back for a record of shape `i` whose table is at `base`
    /// (the script's result right after it): the checker when it can
    /// vouch, else the general walk, learning the keys it finds added.
    /// Also returns the slot of the table read (for the general
    /// conversion).
    fn back_shaped(
        &mut self,
        st: &mut Stack,
        vm: &Vm<'_>,
        i: usize,
        base: i32,
        fields: &[(Text, Value)],
    ) -> (Walked, i32) {
        let mut table = base + 3;
        let int_keys = vm.conv.int_keys();
        let fast = !vm.limits.instructions_tripped() && st.raw_equal(table, T_KEEP) && !st.has_metatable(table);
        let cold = fast && self.shapes.warm_check(i);
        if let Some(sh) = self.shapes.get(i).filter(|_| fast) {
            // The script's results go; the checker's call is what is left.
            st.set_top(base);
            table = T_KEEP;
            if cold {
                warm_up(st, CHECKER, 2 + sh.extras.len() as i32);
            }
            let checked = check(st, sh, fields, int_keys, self.flb_null, &mut self.plan);
            if let Some(walked) = checked {
                self.shapes.hit(i);
                return (walked, table);
            }
        }
        // The walk finds original keys by their interned address.
        self.origins.reset(fields.len());
        if let Some(sh) = self.shapes.get(i) {
            for (pos, slot) in sh.slots.iter().enumerate() {
                self.origins.insert(self.keys.ptr(*slot), pos);
            }
        }
        let walked = reuse::walk(st, table, &self.origins, fields, int_keys, &mut self.plan);
        let added = matches!(walked, Walked::Record).then(|| self.plan.added_keys());
        self.shapes.missed(i, added.into_iter().flatten());
        (walked, table)
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
/// A shaped record: its table (kept for reading back), the checker, the
/// table again and the values from [`VALUES`] on. The checker's call is
/// there already: it needs no copies of the values the constructor took.
const T_KEEP: i32 = 2;
const CHECKER: i32 = 3;
const T: i32 = 4;
const VALUES: i32 = 5;

/// Calls of a shape's constructor, and of its checker, run back to back
/// with LuaJIT's trace compiler on when the shape is first used: enough to
/// pass LuaJIT's threshold for a hot function (`hotloop` 56 × 2 calls).
const WARM_RUNS: usize = 150;

/// Warm up gatelog's generated function whose call (the function and its
/// arguments, from `first` to the top) is laid out: run it [`WARM_RUNS`]
/// times on copies with LuaJIT's trace compiler on, so that LuaJIT compiles
/// it for the arguments it really gets, then switch the compiler off; the
/// compiled code keeps running. The layout is left as it was. Only
/// gatelog's code runs meanwhile: the calls are back to back because
/// switching the compiler on resets LuaJIT's hot counters, and script code
/// never runs with it on (see `super::shapes`). Each call must be free of
/// side effects beyond garbage.
fn warm_up(st: &mut Stack, first: i32, nresults: i32) {
    let len = st.top() - first + 1;
    if !st.reserve((len + nresults + 2) as usize) {
        return;
    }
    st.compiler(true);
    for _ in 0..WARM_RUNS {
        for j in 0..len {
            st.push_copy(first + j);
        }
        st.call(len - 1, nresults);
        st.set_top(first + len - 1);
    }
    // LuaJIT assembles a trace on the instruction after its end: a trace
    // ending at the return to C needs one more Lua instruction before the
    // compiler is switched off, which would abort it.
    st.raw_geti(ANCHORS, SETTLE);
    st.call(0, 0);
    st.compiler(false);
}

/// Run shape `sh`'s checker, whose call is the top of the stack (from
/// [`CHECKER`]), and fill `plan` from its answer as the walk would; `None`
/// when it cannot vouch for the table. Leaves the stack at [`T_KEEP`].
fn check(
    st: &mut Stack,
    sh: &Shape,
    fields: &[(Text, Value)],
    int_keys: &[String],
    flb_null: bool,
    plan: &mut Plan,
) -> Option<Walked> {
    let n = fields.len();
    st.call(n as i32 + 1, 2 + sh.extras.len() as i32);
    let mask = st.number(CHECKER) as u64;
    let count = st.number(CHECKER + 1);
    let walked = fill(st, sh, fields, mask, CHECKER + 2, int_keys, flb_null, plan)
        .and_then(|(walked, present)| (count == present as f64).then_some(walked));
    st.set_top(T_KEEP);
    walked
}

/// [`check`]'s plan: the original fields, edited as the walk would rebuild
/// them. A duplicated key's last value moves to its first position; a
/// changed value is read from the table (gone when nil or not a record
/// value); an unchanged one stays as Lua gives it back (numbers converted,
/// nulls gone unless `enable_flb_null`); learned keys are added. Also
/// returns the number of keys the table holds among them.
#[allow(clippy::too_many_arguments)]
fn fill(
    st: &mut Stack,
    sh: &Shape,
    fields: &[(Text, Value)],
    mask: u64,
    extras_at: i32,
    int_keys: &[String],
    flb_null: bool,
    plan: &mut Plan,
) -> Option<(Walked, usize)> {
    enum Edit {
        Keep,
        Set(Value),
        Drop,
    }
    plan.start_edits();
    for &i in &sh.later {
        plan.edit_drop(i);
    }
    let (mut present, mut kept) = (0, 0);
    for (bit, &(first, last)) in sh.distinct.iter().enumerate() {
        let (Some((key, _)), Some((_, v)), Some(slot)) = (fields.get(first), fields.get(last), sh.slots.get(first))
        else {
            return None;
        };
        if first != last {
            plan.edit_move(first, last);
        }
        let edit = if mask & (1 << bit) != 0 {
            st.raw_geti(ANCHORS, key_index(*slot));
            let kind = st.raw_get(T_KEEP);
            present += usize::from(kind != Kind::Nil);
            let read = reuse::scalar(st, -1, kind, key, int_keys);
            st.set_top(-2);
            match read {
                Scalar::Value(v) => Edit::Set(v),
                Scalar::Dropped => Edit::Drop,
                Scalar::Table => return None,
            }
        } else {
            let edit = match reuse::unchanged(v, key, int_keys, flb_null)? {
                Unchanged::Same => Edit::Keep,
                Unchanged::Becomes(n) => Edit::Set(n),
                Unchanged::Gone => Edit::Drop,
            };
            present += usize::from(!matches!(edit, Edit::Drop));
            edit
        };
        match edit {
            Edit::Keep => kept += 1,
            Edit::Set(n) => {
                kept += 1;
                if n != *v {
                    plan.edit_set(first, n);
                }
            }
            Edit::Drop => plan.edit_drop(first),
        }
    }
    present += add_extras(st, sh, extras_at, int_keys, plan)?;
    let walked = if kept > 0 || plan.has_added() { Walked::Record } else { Walked::Empty };
    Some((walked, present))
}

/// The learned keys' values (results of the checker from `extras_at`)
/// into `plan`; how many are present.
fn add_extras(st: &mut Stack, sh: &Shape, extras_at: i32, int_keys: &[String], plan: &mut Plan) -> Option<usize> {
    let mut present = 0;
    for (j, name) in sh.extras.iter().enumerate() {
        let at = extras_at + j as i32;
        let kind = st.kind(at);
        if kind == Kind::Nil {
            continue;
        }
        present += 1;
        match reuse::scalar(st, at, kind, name, int_keys) {
            Scalar::Value(v) => plan.add(Text::from(&**name), v),
            Scalar::Dropped => {}
            Scalar::Table => return None,
        }
    }
    Some(present)
}

/// `lua_tointeger` of the first result: numbers truncate, numeric strings
/// convert, anything else (including no result) is 0 = keep.
fn return_code(st: &Stack, idx: i32) -> i64 {
    match st.kind(idx) {
        Kind::Number => code_of_number(st.number(idx)),
        Kind::String => st.bytes(idx).map_or(0, code_of_string),
        _ => 0,
    }
}

/// A number code, truncated (0 when not finite).
pub(crate) fn code_of_number(f: f64) -> i64 {
    if f.is_finite() {
        f as i64
    } else {
        0
    }
}

/// A string code: its number, truncated; 0 when it is none.
pub(crate) fn code_of_string(b: &[u8]) -> i64 {
    parse_number(b).map_or(0, |f| f as i64)
}

/// A numeric string (a code or a time) as read back.
pub(crate) fn parse_number(b: &[u8]) -> Option<f64> {
    std::str::from_utf8(b).ok()?.trim().parse::<f64>().ok()
}

/// The script's returned time: a number, a numeric string, or a
/// `{sec=, nsec=}` table; `None` keeps the record's time.
fn timestamp_out(st: &mut Stack, idx: i32) -> Option<Timestamp> {
    match st.kind(idx) {
        Kind::Number => Some(Timestamp::from_f64(st.number(idx))),
        Kind::String => st.bytes(idx).and_then(parse_number).map(Timestamp::from_f64),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_lets_a_bounded_amount_of_garbage_gather() {
        const M: usize = 1 << 20;
        // 4 MiB over 2 MiB live: 300%; a small heap is capped, a large one
        // keeps the default.
        assert_eq!(pause_for(2 * M, 64 * M), 300);
        assert_eq!(pause_for(200 << 10, 64 * M), MAX_PAUSE);
        assert_eq!(pause_for(0, 0), MAX_PAUSE);
        assert_eq!(pause_for(40 * M, 0), DEFAULT_PAUSE);
        // Near the limit: heap and garbage stay under half of it.
        assert_eq!(pause_for(M, 4 * M), 200);
        assert_eq!(pause_for(M, 8 * M), 400);
        assert_eq!(pause_for(3 * M, 4 * M), DEFAULT_PAUSE);
    }
}
