//! Straight-line script functions run by gatelog itself, without entering
//! the VM.
//!
//! Many `lua` filters are a few lines without a branch: set a field from
//! `os.date` and a constant, copy one, return `1, timestamp, record`. For
//! such a function every record still cost a Lua table of all its fields,
//! one string per changed value, the call, the way back and the garbage:
//! ~15,000 instructions a record in the sidecar pipeline, for a script
//! whose own work is ~15 bytecodes. When the script's `call` function is in
//! the subset below, gatelog reads its bytecode once (LuaJIT's `jit.util`)
//! and runs it on the record's fields directly; anything it cannot do
//! exactly as LuaJIT would sends that record through the VM as before
//! (nothing of the direct run is kept), so the subset decides the cost,
//! never the result.
//!
//! The subset: no branch, loop, upvalue, vararg or closure, at most
//! [`MAX_FRAME`] stack slots; locals (`MOV`); string, number and
//! `nil`/`true`/`false` constants; reading a global; writing a global;
//! reading and setting the record's fields with constant keys (at most
//! [`MAX_SETS`] set); `..`; calling `os.date` read from a global table;
//! `return`. The bytecode is also typed along its straight line ([`typed`]):
//! a field is set only on the record and with a plain value (no table a
//! script made), `..` and `os.date` take plain values, and a field is read
//! only from the record, or as the `date` of a global. At run time a value
//! outside what the direct run models (a field holding a null, a number in
//! `..`, `os.date` with other than a string and a time, a table for a
//! time, an unusual return code, no record returned, an empty result)
//! gives up on that record.
//!
//! Why the result is the VM's:
//! - Fields: the record is read as the VM's table would hold it (a
//!   duplicated key's last value), and the result is built by the rules of
//!   the shaped way back (`fill` in `crossing.rs`): unchanged values as Lua
//!   gives them back, changed ones converted, added keys sorted. A record
//!   qualifies once its shape is compiled (`super::shapes`, after two
//!   records in the VM), which also says where its duplicates are.
//! - `os.date`: its answer comes from gatelog's `os.date` itself (a call
//!   into the VM when the second or the format changes, remembered like
//!   the VM's memo does, and forgotten on `os.setlocale` in any VM).
//! - Globals read are resolved once, by a guard that runs when the filter
//!   is built (after the script's top level): the function's environment
//!   without a metatable, each global a string, number, boolean or nil, or
//!   a table used only for its `date`, which must be gatelog's `os.date`
//!   (any other `date` would be the script's code).
//!   Nothing can change them later: only script code could, and the typing
//!   above means the VM's own runs of this function write nothing but its
//!   globals, the record and `os.date`'s memo, and call no metamethod.
//! - Globals written are not written: the script's `new_record = record`
//!   would need the record's table. Nothing can see the difference: the
//!   function reads such a global only after writing it (checked in the
//!   bytecode), and no other Lua code runs in the VM between two calls
//!   unless a script made it run there, so the guard refuses a VM where
//!   `newproxy` was ever called or the file handles' `__gc` was replaced
//!   (a `__gc` finalizer: the only ways to make one here, without `debug`
//!   and `ffi`); `jit.attach`, whose handlers would run when gatelog
//!   compiles its own Lua code, raises an error for scripts (`vm.rs`).
//! - Limits: the direct run executes a few dozen bytecodes' worth, makes
//!   at most [`MAX_JOINED`] bytes with `..` (beyond, the VM runs the
//!   record) and allocates in the VM only when `os.date` misses its memo
//!   (the format and the answer). It is used only when the instruction
//!   limit is off or at least [`MIN_INSTRUCTION_LIMIT`] and the memory
//!   limit off or at least [`MIN_MEMORY_LIMIT`] with the heap the script
//!   kept at its top level within a quarter of it, and for records within
//!   an eighth of the memory limit ([`MAX_RECORD_SHARE`]; measured only
//!   when an input's messages could make a larger one): there the VM's
//!   run of the same function could not trip them either (the collector
//!   keeps heap and garbage within half the limit, see `crossing.rs`).
//! - Opcodes: LuaJIT 2.1's numbering, checked against the VM at load by
//!   compiling one example of each; on any difference the direct run is off.
//!
//! Such a function also tells which fields it can observe ([`Typed::reads`]):
//! the plan then lets the JSON and rfc3164 parsers build only those (see
//! `record/reads.rs`), as for a pipeline without Lua, unless records could
//! be large enough for the VM's memory error, which depends on every field.
//!
//! Differential tests run scripts in and out of the subset over the same
//! records both ways (`tests.rs`), and the sidecar job narrowed and whole
//! (`engine/plan.rs`). Measured with `examples/bench/instructions.sh`,
//! a-sidecar 31,788 → 17,225 instructions a record.

use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, Lua, Table};

use super::crossing::{code_of_number, code_of_string, parse_number};
use super::reuse::{lua_number, unchanged, Plan, Unchanged};
use super::shapes::Shape;
use super::vm::{DIRECT_GUARD_KEY, JIT_UTIL_KEY};
use super::Outcome;
use crate::record::{lossy_text, Text, Timestamp, Value};

/// Below this instruction limit the VM's run of a straight-line script
/// could trip it where the direct run does not.
pub(crate) const MIN_INSTRUCTION_LIMIT: u64 = 10_000;
/// Below this memory limit a record's table could trip it.
pub(crate) const MIN_MEMORY_LIMIT: u64 = 8 << 20;
/// Bytecodes of the longest function run directly.
const MAX_OPS: usize = 256;
/// Stack slots of the largest function run directly.
const MAX_FRAME: usize = 16;
/// Fields a function run directly sets, globals it writes.
const MAX_SETS: usize = 8;
/// Bytes a direct run may make with `..`; beyond, the VM runs the record
/// (a string doubled again and again is its memory limit's to stop).
const MAX_JOINED: usize = 256 << 10;

/// Values by key (a field's key constant, a global's index), in the order
/// first set: at most [`MAX_SETS`], on the stack.
struct Few<'r> {
    items: [(u16, V<'r>); MAX_SETS],
    len: usize,
}

impl<'r> Few<'r> {
    fn new() -> Self {
        Few { items: std::array::from_fn(|_| (0, V::Nil)), len: 0 }
    }

    fn as_slice(&self) -> &[(u16, V<'r>)] {
        self.items.get(..self.len).unwrap_or_default()
    }

    fn get(&self, k: u16) -> Option<&V<'r>> {
        self.as_slice().iter().find(|(key, _)| *key == k).map(|(_, v)| v)
    }

    /// `None` when full.
    fn set(&mut self, k: u16, v: V<'r>) -> Option<()> {
        let at = self.as_slice().iter().position(|(key, _)| *key == k).unwrap_or(self.len);
        *self.items.get_mut(at)? = (k, v);
        self.len = self.len.max(at + 1);
        Some(())
    }
}

/// LuaJIT 2.1's opcodes (`lj_bc.h`) the subset uses; checked at load.
mod bc {
    pub const MOV: u8 = 18;
    pub const CAT: u8 = 38;
    pub const KSTR: u8 = 39;
    pub const KSHORT: u8 = 41;
    pub const KNUM: u8 = 42;
    pub const KPRI: u8 = 43;
    pub const GGET: u8 = 54;
    pub const GSET: u8 = 55;
    pub const TGETS: u8 = 57;
    pub const TSETS: u8 = 61;
    pub const CALL: u8 = 66;
    pub const RET: u8 = 74;
    pub const RET0: u8 = 75;
    pub const RET1: u8 = 76;
    pub const FUNCF: u8 = 89;
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Mov {
        dst: u8,
        src: u8,
    },
    Str {
        dst: u8,
        k: u16,
    },
    Num {
        dst: u8,
        n: f64,
    },
    Pri {
        dst: u8,
        p: u8,
    },
    /// Global `g` (an index into `Program::globals`).
    GetGlobal {
        dst: u8,
        g: u16,
    },
    SetGlobal {
        src: u8,
        g: u16,
    },
    Field {
        dst: u8,
        table: u8,
        k: u16,
    },
    SetField {
        src: u8,
        table: u8,
        k: u16,
    },
    Call {
        base: u8,
        nargs: u8,
        nresults: u8,
    },
    Cat {
        dst: u8,
        from: u8,
        to: u8,
    },
    Ret {
        from: u8,
        n: u8,
    },
}

/// A function in the subset.
#[derive(Debug)]
struct Program {
    ops: Vec<Op>,
    /// String constants (`Op::Str`, field keys).
    strs: Vec<Box<[u8]>>,
    /// The same as record keys (`None`: not UTF-8, never added).
    keys: Vec<Option<Text>>,
    /// Globals read or written, by name; `written[g]`: the function writes it.
    globals: Vec<Box<str>>,
    written: Vec<bool>,
    params: u8,
    frame: usize,
    /// LuaJIT's two-slot call frames (GC64): arguments start at `base + 2`.
    fr2: bool,
    /// Globals used as plain values: the guard must not find a table.
    plain_globals: Vec<u16>,
    /// Globals whose `date` is read: the guard must find gatelog's `os.date` there.
    date_globals: Vec<u16>,
    /// The record fields it can observe (see [`Typed::reads`]).
    reads: Option<Vec<String>>,
}

type Positions = [Option<usize>; MAX_SETS];

/// A value in the direct run.
#[derive(Clone, Debug)]
enum V<'a> {
    Nil,
    Bool(bool),
    Num(f64),
    Str(Bytes<'a>),
    /// The record's table.
    Record,
    /// A global table; `true` when its `date` is gatelog's `os.date`.
    Table(bool),
    /// gatelog's `os.date`.
    Date,
}

/// A string of the direct run: borrowed (from the record, the tag or the
/// program) or shared (a `..` result, an `os.date` answer, a global), so
/// that copying it between slots never copies its bytes.
#[derive(Clone, Debug)]
enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Shared(Rc<[u8]>),
}

impl Deref for Bytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Shared(b) => b,
        }
    }
}

/// A global read, as the guard last found it.
enum Global {
    Value(V<'static>),
    /// Written by the function before it reads it: never looked up.
    Written,
}

/// `os.date`'s last answer (the VM's memo, mirrored).
#[derive(Default)]
struct LastDate {
    format: Vec<u8>,
    lo: f64,
    hi: f64,
    text: Rc<[u8]>,
    locale: u64,
}

/// The direct runner of one filter.
pub(crate) struct Native {
    program: Program,
    /// gatelog's `os.date`, as the guard found it.
    date: Option<Function>,
    /// The globals read, as the guard found them.
    globals: Vec<Global>,
    last_date: LastDate,
    flb_null: bool,
    /// Where `..` joins its operands (kept between records).
    cat: Vec<u8>,
    /// Where the set fields are in the last shape (see [`Native::positions`]).
    positions: Option<(u32, Positions)>,
    /// Records run directly.
    pub(crate) runs: u64,
    /// `memory_limit` (0: none).
    memory_limit: u64,
    /// Whether a record could be large enough to reach the memory limit
    /// in the VM: then each is measured (see [`MAX_RECORD_SHARE`]).
    check_size: bool,
}

/// A record the direct run takes is at most this share of the memory
/// limit: the VM's run of it (its table and strings, at most ~2× its
/// bytes, and 256 KiB of `..`) then fits in the half of the limit the
/// collector keeps free (`crossing.rs`).
const MAX_RECORD_SHARE: u64 = 8;
/// A record is at most this many times its message (the message kept
/// whole, the fields parsed from it, a header's).
const RECORD_PER_MESSAGE: u64 = 3;

impl Native {
    /// The direct runner for `func`, if it is in the subset and the
    /// filter's settings allow it.
    pub(crate) fn new(
        lua: &Lua,
        func: &Function,
        time_as_table: bool,
        instruction_limit: u64,
        memory_limit: u64,
        flb_null: bool,
    ) -> Option<Native> {
        // The heap the script keeps after its top level stays (the function
        // can keep nothing but the globals it writes), so the VM's run has
        // the headroom the direct run assumes.
        let heap = lua.used_memory() as u64;
        let limits_allow = (instruction_limit == 0 || instruction_limit >= MIN_INSTRUCTION_LIMIT)
            && (memory_limit == 0 || (memory_limit >= MIN_MEMORY_LIMIT && heap <= memory_limit / 4));
        if time_as_table || !limits_allow {
            return None;
        }
        let util: Table = lua.named_registry_value(JIT_UTIL_KEY).ok()?;
        let fr2 = opcodes_match(lua, &util)?;
        let program = read(&util, func, fr2)?;
        let globals = program.written.iter().map(|_| Global::Value(V::Nil)).collect();
        let mut native = Native {
            program,
            date: None,
            globals,
            last_date: LastDate::default(),
            flb_null,
            cat: Vec::new(),
            positions: None,
            runs: 0,
            memory_limit,
            check_size: memory_limit > 0,
        };
        // After the script's top level ran; what it checks cannot change
        // later (see `typed`).
        let guard: Function = lua.named_registry_value(DIRECT_GUARD_KEY).ok()?;
        native.ask_guard(lua, &guard, func).ok()?.then_some(native)
    }

    /// Records come from messages of at most `max_message` bytes.
    pub(crate) fn bound_records(&mut self, max_message: usize) {
        let record = (max_message as u64).saturating_mul(RECORD_PER_MESSAGE);
        self.check_size = self.memory_limit > 0 && record > self.memory_limit / MAX_RECORD_SHARE;
    }

    /// Whether records are measured before a direct run (see
    /// [`Native::bound_records`]).
    pub(crate) fn checks_size(&self) -> bool {
        self.check_size
    }

    /// The record fields the function can observe (see [`Typed::reads`]).
    pub(crate) fn reads(&self) -> Option<Vec<String>> {
        self.program.reads.clone()
    }

    /// Run the function on a record of shape `sh` (`fields`); `None`: the
    /// VM must run it. `locale`: `os.setlocale` calls so far.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &mut self,
        lua: &Lua,
        tag: &Arc<str>,
        time: Timestamp,
        fields: &[(Text, Value)],
        sh: &Shape,
        int_keys: &[String],
        locale: u64,
        plan: &mut Plan,
    ) -> Option<Outcome> {
        if self.check_size {
            let bytes: u64 = fields.iter().map(|(k, v)| (k.len() + v.as_str().map_or(8, str::len)) as u64).sum();
            if bytes > self.memory_limit / MAX_RECORD_SHARE {
                return None;
            }
        }
        let cat = std::mem::take(&mut self.cat);
        let mut run = Run {
            lua,
            p: &self.program,
            globals: &self.globals,
            date: self.date.as_ref()?,
            last_date: &mut self.last_date,
            locale,
            fields,
            sh,
            slots: std::array::from_fn(|_| V::Nil),
            sets: Few::new(),
            written: Few::new(),
            cat,
            joined: 0,
        };
        let done = run.exec(tag, time).and_then(|(code, out_time, result)| match code {
            -1 => Some(Outcome::Drop),
            0 => Some(Outcome::Keep),
            1 | 2 if matches!(result, V::Record) => {
                let time = if code == 1 { time_out(&out_time)?.unwrap_or(time) } else { time };
                let sets = run.sets.as_slice();
                let at = positions(&mut self.positions, &self.program.strs, sets, fields, sh)?;
                fill(sets, &at, &self.program.keys, fields, sh, int_keys, self.flb_null, plan)?;
                Some(Outcome::ReplaceOne(time))
            }
            _ => None,
        });
        self.cat = run.cat;
        if self.cat.capacity() > MAX_JOINED / 4 {
            self.cat = Vec::new();
        }
        self.runs += u64::from(done.is_some());
        done
    }

    /// Ask the guard about the VM and resolve the globals read.
    fn ask_guard(&mut self, lua: &Lua, guard: &Function, func: &Function) -> mlua::Result<bool> {
        let names: Vec<&str> =
            self.program.globals.iter().zip(&self.program.written).filter(|(_, w)| !**w).map(|(n, _)| &**n).collect();
        let mut args = vec![mlua::Value::Function(func.clone())];
        for n in &names {
            args.push(mlua::Value::String(lua.create_string(n)?));
        }
        let (ok, answers, date): (bool, Option<Table>, Option<Function>) =
            guard.call(mlua::MultiValue::from_iter(args))?;
        let (true, Some(answers), Some(date)) = (ok, answers, date) else {
            return Ok(false);
        };
        let mut i = 0;
        for (g, w) in self.globals.iter_mut().zip(&self.program.written) {
            if *w {
                *g = Global::Written;
                continue;
            }
            i += 1;
            *g = Global::Value(match answers.raw_get::<mlua::Value>(i)? {
                mlua::Value::Boolean(has_date) => V::Table(has_date),
                mlua::Value::Table(t) => match t.raw_get::<mlua::Value>(1)? {
                    mlua::Value::Nil => V::Nil,
                    mlua::Value::Boolean(b) => V::Bool(b),
                    // As `f64`, not through `Value` (see `number` in `read`).
                    mlua::Value::Integer(_) | mlua::Value::Number(_) => V::Num(t.raw_get::<f64>(1)?),
                    mlua::Value::String(s) => V::Str(Bytes::Shared(Rc::from(&*s.as_bytes()))),
                    _ => return Ok(false),
                },
                _ => return Ok(false),
            });
        }
        let table_used_plain = self
            .program
            .plain_globals
            .iter()
            .any(|&g| matches!(self.globals.get(g as usize), Some(Global::Value(V::Table(_)))));
        // A `date` read from anything but a table holding gatelog's
        // `os.date` would run other code in the VM (a function of the
        // script's, an `__index`).
        let other_date = self
            .program
            .date_globals
            .iter()
            .any(|&g| !matches!(self.globals.get(g as usize), Some(Global::Value(V::Table(true)))));
        if table_used_plain || other_date {
            return Ok(false);
        }
        self.date = Some(date);
        Ok(true)
    }
}

/// One direct run.
struct Run<'a, 'r> {
    lua: &'a Lua,
    p: &'a Program,
    globals: &'a [Global],
    date: &'a Function,
    last_date: &'a mut LastDate,
    locale: u64,
    fields: &'r [(Text, Value)],
    sh: &'r Shape,
    slots: [V<'r>; MAX_FRAME],
    /// Fields set, by key constant, in order.
    sets: Few<'r>,
    /// Globals written (by index), with their values.
    written: Few<'r>,
    /// Where `..` joins its operands.
    cat: Vec<u8>,
    /// Bytes `..` made so far.
    joined: usize,
}

impl<'a: 'r, 'r> Run<'a, 'r> {
    /// The function's results: code, time and record (as the VM's
    /// `lua_pcall(…, 3)` keeps them).
    fn exec(&mut self, tag: &'r str, time: Timestamp) -> Option<(i64, V<'r>, V<'r>)> {
        let p = self.p;
        let args = [V::Str(Bytes::Borrowed(tag.as_bytes())), V::Num(time.as_f64()), V::Record];
        for (slot, v) in self.slots.iter_mut().zip(args).take(p.params as usize) {
            *slot = v;
        }
        for op in &p.ops {
            match *op {
                Op::Mov { dst, src } => {
                    let v = self.get(src)?.clone();
                    self.set(dst, v)?;
                }
                Op::Str { dst, k } => {
                    let s: &'a [u8] = p.strs.get(k as usize)?;
                    self.set(dst, V::Str(Bytes::Borrowed(s)))?;
                }
                Op::Num { dst, n } => self.set(dst, V::Num(n))?,
                Op::Pri { dst, p } => {
                    self.set(dst, [V::Nil, V::Bool(false), V::Bool(true)].get(p as usize)?.clone())?
                }
                Op::GetGlobal { dst, g } => {
                    let v = match self.globals.get(g as usize)? {
                        Global::Value(v) => v.clone(),
                        Global::Written => self.written.get(g)?.clone(),
                    };
                    self.set(dst, v)?;
                }
                Op::SetGlobal { src, g } => {
                    let v = self.get(src)?.clone();
                    self.written.set(g, v)?;
                }
                Op::Field { dst, table, k } => {
                    let v = match self.get(table)? {
                        V::Record => self.field(k)?,
                        V::Table(true) if **p.strs.get(k as usize)? == *b"date" => V::Date,
                        _ => return None,
                    };
                    self.set(dst, v)?;
                }
                Op::SetField { src, table, k } => {
                    if !matches!(self.get(table)?, V::Record) {
                        return None;
                    }
                    let v = match self.get(src)? {
                        v @ (V::Nil | V::Bool(_) | V::Num(_) | V::Str(_)) => v.clone(),
                        _ => return None,
                    };
                    self.sets.set(k, v)?;
                }
                Op::Call { base, nargs, nresults } => {
                    let first = base as usize + 1 + usize::from(p.fr2);
                    let answer = match (self.get(base)?, nargs, self.slots.get(first), self.slots.get(first + 1)) {
                        (V::Date, 2, Some(V::Str(f)), Some(V::Num(t))) => {
                            let (f, t) = (f.clone(), *t);
                            self.os_date(&f, t)?
                        }
                        _ => return None,
                    };
                    if nresults >= 1 {
                        self.set(base, V::Str(Bytes::Shared(answer)))?;
                        for r in 1..nresults {
                            self.set(base.checked_add(r)?, V::Nil)?;
                        }
                    }
                }
                Op::Cat { dst, from, to } => {
                    let mut s = std::mem::take(&mut self.cat);
                    s.clear();
                    for i in from..=to {
                        match self.get(i)? {
                            V::Str(b) => s.extend_from_slice(b),
                            _ => return None,
                        }
                    }
                    self.joined += s.len();
                    if self.joined > MAX_JOINED {
                        // Strings growing by `..` are the VM's (its memory limit).
                        return None;
                    }
                    let joined = Rc::from(s.as_slice());
                    self.cat = s;
                    self.set(dst, V::Str(Bytes::Shared(joined)))?;
                }
                Op::Ret { from, n } => {
                    let at = |i: u8| if i < n { self.get(from.checked_add(i)?).cloned() } else { Some(V::Nil) };
                    let code = return_code(&at(0)?);
                    return Some((code, at(1)?, at(2)?));
                }
            }
        }
        None
    }

    fn get(&self, i: u8) -> Option<&V<'r>> {
        self.slots.get(i as usize)
    }

    fn set(&mut self, i: u8, v: V<'r>) -> Option<()> {
        *self.slots.get_mut(i as usize)? = v;
        Some(())
    }

    /// The record's field `k` as the VM's table holds it.
    fn field(&self, k: u16) -> Option<V<'r>> {
        if let Some(v) = self.sets.get(k) {
            return Some(v.clone());
        }
        let key: &[u8] = self.p.strs.get(k as usize)?;
        let Some(&(_, last)) = self
            .sh
            .distinct
            .iter()
            .find(|&&(first, _)| self.fields.get(first).is_some_and(|(name, _)| name.as_bytes() == key))
        else {
            return Some(V::Nil);
        };
        Some(match &self.fields.get(last)?.1 {
            Value::Str(s) => V::Str(Bytes::Borrowed(s.as_bytes())),
            Value::Int(n) => V::Num(*n as f64),
            Value::Float(f) => V::Num(*f),
            Value::Bool(b) => V::Bool(*b),
            // A null is `nil` or `flb_null`, a table is a table: the VM runs those.
            Value::Null | Value::Array(_) | Value::Map(_) => return None,
        })
    }

    /// `os.date(format, t)` as gatelog's memo answers it (see `vm.rs`).
    fn os_date(&mut self, format: &[u8], t: f64) -> Option<Rc<[u8]>> {
        if !(0.0..9007199254740992.0).contains(&t) {
            return None;
        }
        let last = &mut *self.last_date;
        if last.locale == self.locale && last.format == format && t >= last.lo && t < last.hi {
            return Some(last.text.clone());
        }
        let f = self.lua.create_string(format).ok()?;
        let mlua::Value::String(s) = self.date.call::<mlua::Value>((f, t)).ok()? else {
            return None;
        };
        let text: Rc<[u8]> = Rc::from(&*s.as_bytes());
        let lo = t - t % 1.0;
        *last = LastDate { format: format.to_vec(), lo, hi: lo + 1.0, text: text.clone(), locale: self.locale };
        Some(text)
    }
}

/// Where each set field is among shape `sh`'s distinct keys (`None`:
/// added). The same for every record of a shape (a straight line sets its
/// fields in one order), so `cache` keeps them for the last shape.
fn positions(
    cache: &mut Option<(u32, Positions)>,
    strs: &[Box<[u8]>],
    sets: &[(u16, V<'_>)],
    fields: &[(Text, Value)],
    sh: &Shape,
) -> Option<Positions> {
    if let Some((id, at)) = *cache {
        if id == sh.id {
            return Some(at);
        }
    }
    let mut at = [None; MAX_SETS];
    for (slot, (k, _)) in at.iter_mut().zip(sets) {
        let key: &[u8] = strs.get(*k as usize)?;
        *slot = sh.distinct.iter().position(|&(first, _)| fields.get(first).is_some_and(|(n, _)| n.as_bytes() == key));
    }
    *cache = Some((sh.id, at));
    Some(at)
}

/// `lua_tointeger` of the code (see `return_code` in `crossing.rs`).
fn return_code(v: &V<'_>) -> i64 {
    match v {
        V::Num(f) => code_of_number(*f),
        V::Str(b) => code_of_string(b),
        _ => 0,
    }
}

/// The returned time (see `timestamp_out` in `crossing.rs`): `Some(None)`
/// keeps the record's; `None` gives up (a table).
fn time_out(v: &V<'_>) -> Option<Option<Timestamp>> {
    Some(match v {
        V::Num(f) => Some(Timestamp::from_f64(*f)),
        V::Str(b) => parse_number(b).map(Timestamp::from_f64),
        V::Record | V::Table(_) => return None,
        _ => None,
    })
}

/// The record value of a field set to `v` under `key`, as the way back
/// reads it (`reuse::scalar`); `None`: the field goes.
fn record_value(v: &V<'_>, key: &str, int_keys: &[String]) -> Option<Value> {
    match v {
        V::Str(b) => Some(Value::Str(lossy_text(b))),
        V::Num(f) => Some(lua_number(*f, key, int_keys)),
        V::Bool(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

/// The plan for the record the VM would give back (`fill` in
/// `crossing.rs`, with the set fields as the changed ones). `None` when
/// the result is empty (the VM reports that).
#[allow(clippy::too_many_arguments)]
fn fill(
    sets: &[(u16, V<'_>)],
    at: &[Option<usize>],
    keys: &[Option<Text>],
    fields: &[(Text, Value)],
    sh: &Shape,
    int_keys: &[String],
    flb_null: bool,
    plan: &mut Plan,
) -> Option<()> {
    plan.start_edits();
    for &i in &sh.later {
        plan.edit_drop(i);
    }
    let at = at.get(..sets.len())?;
    let mut kept = 0;
    for (bit, &(first, last)) in sh.distinct.iter().enumerate() {
        if first != last {
            plan.edit_move(first, last);
        }
        let ((key, _), (_, v)) = (fields.get(first)?, fields.get(last)?);
        // `key` is read only for a number Lua would change and a set field.
        let now = match at.iter().position(|&p| p == Some(bit)).and_then(|j| sets.get(j)) {
            None => unchanged(v, key, int_keys, flb_null)?,
            Some((_, sv)) => match record_value(sv, key, int_keys) {
                Some(n) if n == *v => Unchanged::Same,
                Some(n) => Unchanged::Becomes(n),
                None => Unchanged::Gone,
            },
        };
        match now {
            Unchanged::Same => kept += 1,
            Unchanged::Becomes(n) => {
                kept += 1;
                plan.edit_set(first, n);
            }
            Unchanged::Gone => plan.edit_drop(first),
        }
    }
    for ((k, v), pos) in sets.iter().zip(at.iter()) {
        if pos.is_some() {
            continue;
        }
        let key = keys.get(*k as usize)?.as_ref()?;
        if let Some(value) = record_value(v, key, int_keys) {
            plan.add(key.clone(), value);
        }
    }
    (kept > 0 || plan.has_added()).then_some(())
}

/// Read `func`'s bytecode into a program, if it is in the subset.
fn read(util: &Table, func: &Function, fr2: bool) -> Option<Program> {
    let info: Table = util.get::<Function>("funcinfo").ok()?.call(func.clone()).ok()?;
    let count: usize = info.get("bytecodes").ok()?;
    let params: u8 = info.get("params").ok()?;
    let vararg: bool = info.get("isvararg").ok()?;
    let frame: usize = info.get("stackslots").ok()?;
    if vararg || !(2..=MAX_OPS + 1).contains(&count) || frame + 2 > MAX_FRAME {
        return None;
    }
    let funcbc: Function = util.get("funcbc").ok()?;
    let funck: Function = util.get("funck").ok()?;
    let ins = |pc: usize| -> Option<u32> {
        let (i, _): (Option<i64>, mlua::Value) = funcbc.call((func.clone(), pc)).ok()?;
        // An instruction comes as a signed 32-bit number.
        Some(i? as u32)
    };
    let gc_string = |d: u32| -> Option<Vec<u8>> {
        match funck.call::<mlua::Value>((func.clone(), -(i64::from(d)) - 1)).ok()? {
            mlua::Value::String(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    };
    // As `f64`: mlua's `Value` makes a number within `f64::EPSILON` of an
    // integer that integer (1e-20 would become 0).
    let number = |d: u32| -> Option<f64> { funck.call::<f64>((func.clone(), i64::from(d))).ok() };
    if op_of(ins(0)?) != bc::FUNCF {
        return None;
    }
    let mut p = Program {
        ops: Vec::new(),
        strs: Vec::new(),
        globals: Vec::new(),
        written: Vec::new(),
        params,
        frame: frame + 2,
        fr2,
        plain_globals: Vec::new(),
        date_globals: Vec::new(),
        keys: Vec::new(),
        reads: None,
    };
    let str_index = |p: &mut Program, s: Vec<u8>| -> Option<u16> {
        if let Some(i) = p.strs.iter().position(|k| **k == *s) {
            return u16::try_from(i).ok();
        }
        p.strs.push(s.into_boxed_slice());
        u16::try_from(p.strs.len() - 1).ok()
    };
    let global_index = |p: &mut Program, s: Vec<u8>| -> Option<u16> {
        let name = String::from_utf8(s).ok()?;
        if let Some(i) = p.globals.iter().position(|g| **g == *name) {
            return u16::try_from(i).ok();
        }
        p.globals.push(name.into_boxed_str());
        p.written.push(false);
        u16::try_from(p.globals.len() - 1).ok()
    };
    // Globals written so far, to refuse a read of one before its write.
    let mut written_yet: Vec<u16> = Vec::new();
    let mut ended = false;
    for pc in 1..count {
        let i = ins(pc)?;
        let (op, a, b, c, d) = (op_of(i), ((i >> 8) & 0xff) as u8, (i >> 24) as u8, ((i >> 16) & 0xff) as u8, i >> 16);
        let next = match op {
            bc::MOV => Op::Mov { dst: a, src: d as u8 },
            bc::KSTR => Op::Str { dst: a, k: str_index(&mut p, gc_string(d)?)? },
            bc::KSHORT => Op::Num { dst: a, n: f64::from(d as u16 as i16) },
            bc::KNUM => Op::Num { dst: a, n: number(d)? },
            bc::KPRI if d <= 2 => Op::Pri { dst: a, p: d as u8 },
            bc::GGET => {
                let g = global_index(&mut p, gc_string(d)?)?;
                Op::GetGlobal { dst: a, g }
            }
            bc::GSET => {
                let g = global_index(&mut p, gc_string(d)?)?;
                written_yet.push(g);
                Op::SetGlobal { src: a, g }
            }
            bc::TGETS => Op::Field { dst: a, table: b, k: str_index(&mut p, gc_string(u32::from(c))?)? },
            bc::TSETS => Op::SetField { src: a, table: b, k: str_index(&mut p, gc_string(u32::from(c))?)? },
            bc::CALL if b >= 1 && c >= 1 => Op::Call { base: a, nargs: c - 1, nresults: b - 1 },
            bc::CAT => Op::Cat { dst: a, from: b, to: c },
            bc::RET if d >= 1 => Op::Ret { from: a, n: (d - 1) as u8 },
            bc::RET0 => Op::Ret { from: a, n: 0 },
            bc::RET1 => Op::Ret { from: a, n: 1 },
            _ => return None,
        };
        ended = matches!(next, Op::Ret { .. });
        p.ops.push(next);
        if ended {
            break;
        }
    }
    if !ended {
        return None;
    }
    // A global the function writes must not be read before its write: that
    // read would see the value an earlier record's direct run never wrote.
    let mut seen: Vec<u16> = Vec::new();
    for op in &p.ops {
        match *op {
            Op::SetGlobal { g, .. } => seen.push(g),
            Op::GetGlobal { g, .. } if written_yet.contains(&g) && !seen.contains(&g) => return None,
            _ => {}
        }
    }
    for g in written_yet {
        *p.written.get_mut(g as usize)? = true;
    }
    let Typed { plain_globals, date_globals, reads } = typed(&p)?;
    (p.plain_globals, p.date_globals, p.reads) = (plain_globals, date_globals, reads);
    // Each set field and written global takes a place in a run's `Few`.
    let distinct = |mut keys: Vec<u16>| {
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    };
    let field_sets = p.ops.iter().filter_map(|op| if let Op::SetField { k, .. } = op { Some(*k) } else { None });
    let global_sets = p.ops.iter().filter_map(|op| if let Op::SetGlobal { g, .. } = op { Some(*g) } else { None });
    if distinct(field_sets.collect()) > MAX_SETS || distinct(global_sets.collect()) > MAX_SETS {
        return None;
    }
    p.keys = p.strs.iter().map(|s| std::str::from_utf8(s).ok().map(Text::from)).collect();
    Some(p)
}

/// What a slot holds for certain at a point of the function.
#[derive(Clone, Copy, PartialEq)]
enum Is {
    /// A value without a metatable: a string, number, boolean, nil, or a
    /// table `os.date` made.
    Plain,
    Record,
    /// Global `g` as read: maybe a table (with a metatable).
    Global(u16),
    /// The `date` of a global table.
    Date,
}

/// Whether the function, when the VM runs it, can only write the globals
/// it writes, the record's fields and `os.date`'s memo, and runs no
/// metamethod: then nothing the guard checked can change after it was
/// asked (see the module doc). Each field set must be on the record with a
/// plain value, each field read on the record or a `date` of a global,
/// each call one of that `date` with plain arguments, each `..` of plain
/// values. A global read may stand for a plain value: it is returned, and
/// the guard must find it is not a table.
fn typed(p: &Program) -> Option<Typed> {
    let mut slots = vec![Is::Plain; p.frame];
    if let Some(r) = slots.get_mut(2).filter(|_| p.params >= 3) {
        *r = Is::Record;
    }
    // Surely not nil: the tag, the time and the record, constants, `..`.
    let mut sure = vec![false; p.frame];
    for s in sure.iter_mut().take((p.params as usize).min(3)) {
        *s = true;
    }
    let mut globals: Vec<Is> = (0..p.globals.len()).map(|g| Is::Global(g as u16)).collect();
    let mut plain_globals = Vec::new();
    let mut date_globals = Vec::new();
    let mut keys: Vec<u16> = Vec::new();
    // Each field set, and whether its last value is surely not nil.
    let mut last_set: Vec<(u16, bool)> = Vec::new();
    let is = |slots: &[Is], i: u8| slots.get(i as usize).copied();
    // Plain, or a global that must be.
    let mut plain = |v: Option<Is>| match v {
        Some(Is::Plain) => true,
        Some(Is::Global(g)) => {
            plain_globals.push(g);
            true
        }
        _ => false,
    };
    for op in &p.ops {
        let (dst, now, not_nil) = match *op {
            Op::Mov { dst, src } => (dst, is(&slots, src), *sure.get(src as usize)?),
            Op::Str { dst, .. } | Op::Num { dst, .. } => (dst, Some(Is::Plain), true),
            Op::Pri { dst, p } => (dst, Some(Is::Plain), p > 0),
            Op::GetGlobal { dst, g } => (dst, globals.get(g as usize).copied(), false),
            Op::SetGlobal { src, g } => {
                match (is(&slots, src), globals.get_mut(g as usize)) {
                    (Some(v), Some(slot)) => *slot = v,
                    _ => return None,
                }
                continue;
            }
            Op::Field { dst, table, k } => match is(&slots, table) {
                Some(Is::Record) => {
                    keys.push(k);
                    (dst, Some(Is::Plain), false)
                }
                Some(Is::Global(g)) if p.strs.get(k as usize).is_some_and(|s| **s == *b"date") => {
                    date_globals.push(g);
                    (dst, Some(Is::Date), false)
                }
                _ => return None,
            },
            Op::SetField { src, table, k } => {
                if is(&slots, table) != Some(Is::Record) || !plain(is(&slots, src)) {
                    return None;
                }
                keys.push(k);
                last_set.retain(|(key, _)| *key != k);
                last_set.push((k, *sure.get(src as usize)?));
                continue;
            }
            Op::Call { base, nargs, .. } => {
                let first = base as usize + 1 + usize::from(p.fr2);
                let args = slots.get(first..first + nargs as usize);
                if is(&slots, base) != Some(Is::Date) || !args.is_some_and(|a| a.iter().all(|&v| plain(Some(v)))) {
                    return None;
                }
                // Results (`os.date` answers nil for a time `localtime`
                // refuses), and whatever the call left above them.
                for (v, s) in slots.iter_mut().zip(sure.iter_mut()).skip(base as usize) {
                    (*v, *s) = (Is::Plain, false);
                }
                continue;
            }
            Op::Cat { dst, from, to } => {
                if !(from..=to).all(|i| plain(is(&slots, i))) {
                    return None;
                }
                (dst, Some(Is::Plain), true)
            }
            Op::Ret { from, n } => {
                // A record returned as the time has its `sec` and `nsec`
                // read; a record that could come back empty depends on
                // every field.
                let time_is_record = n >= 2 && is(&slots, from.checked_add(1)?) == Some(Is::Record);
                let reads = (!time_is_record && last_set.iter().any(|&(_, s)| s))
                    .then(|| {
                        keys.iter()
                            .map(|&k| p.strs.get(k as usize).and_then(|b| String::from_utf8(b.to_vec()).ok()))
                            .collect()
                    })
                    .flatten();
                return Some(Typed { plain_globals, date_globals, reads });
            }
        };
        match (now, slots.get_mut(dst as usize), sure.get_mut(dst as usize)) {
            (Some(v), Some(slot), Some(s)) => (*slot, *s) = (v, not_nil),
            _ => return None,
        }
    }
    None
}

/// What [`typed`] found.
struct Typed {
    plain_globals: Vec<u16>,
    date_globals: Vec<u16>,
    /// The record fields the function can observe, when that is all it can
    /// observe of the record: the keys it reads or sets, provided one field
    /// it sets last is surely not nil (so the record it returns is never
    /// empty, whatever other fields exist) and the record is not returned
    /// as the time. `None`: the whole record matters.
    reads: Option<Vec<String>>,
}

fn op_of(ins: u32) -> u8 {
    (ins & 0xff) as u8
}

/// Check the opcode numbers against the VM by compiling one example of
/// each; returns whether call frames take two slots (GC64).
fn opcodes_match(lua: &Lua, util: &Table) -> Option<bool> {
    use bc::*;
    let examples: [(&str, &[u8]); 12] = [
        ("return function(a) g = a end", &[GSET, RET0]),
        ("return function() return g end", &[GGET, RET1]),
        ("return function(t) return t.k end", &[TGETS, RET1]),
        ("return function(t, v) t.k = v end", &[TSETS, RET0]),
        ("return function() return 's' end", &[KSTR, RET1]),
        ("return function() return 1 end", &[KSHORT, RET1]),
        ("return function() return 1.5 end", &[KNUM, RET1]),
        ("return function() return nil end", &[KPRI, RET1]),
        ("return function(a) local b = a return b end", &[MOV, RET1]),
        ("return function(a, b) return a .. b end", &[MOV, MOV, CAT, RET1]),
        ("return function(a, b) return a, b end", &[MOV, MOV, RET]),
        ("return function(f, a) local x = f(a) return x end", &[MOV, MOV, CALL, RET1]),
    ];
    let funcbc: Function = util.get("funcbc").ok()?;
    let mut fr2 = None;
    for (code, ops) in examples {
        let f: Function = lua.load(code).set_name("=gatelog").eval().ok()?;
        let at = |pc: usize| -> Option<u32> {
            let (i, _): (Option<i64>, mlua::Value) = funcbc.call((f.clone(), pc)).ok()?;
            // An instruction comes as a signed 32-bit number.
            Some(i? as u32)
        };
        if op_of(at(0)?) != FUNCF {
            return None;
        }
        for (pc, &want) in ops.iter().enumerate() {
            if op_of(at(pc + 1)?) != want {
                return None;
            }
        }
        if ops[2..].first() == Some(&CALL) {
            // `f` moves to slot 2, `a` to 3 or (two-slot frames) 4.
            fr2 = match (at(2)? >> 8) & 0xff {
                3 => Some(false),
                4 => Some(true),
                _ => return None,
            };
        }
    }
    fr2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_script_is_in_the_subset() {
        let lua = super::super::vm::new_vm().unwrap();
        let script = std::fs::read_to_string("examples/istio-sidecar/create-log-file-path.lua").unwrap();
        lua.load(&script).exec().unwrap();
        let f: Function = lua.globals().get("create_log_file_path").unwrap();
        let n = Native::new(&lua, &f, false, 0, 0, false).expect("in the subset");
        assert_eq!(n.program.globals.iter().map(|g| &**g).collect::<Vec<_>>(), ["new_record", "os"]);
        assert_eq!(n.program.written, [true, false]);
        assert!(n.program.fr2);
    }

    #[test]
    fn functions_outside_the_subset_are_refused() {
        let lua = super::super::vm::new_vm().unwrap();
        for code in [
            "return function(t, ts, r) if r.a then r.b = 1 end return 1, ts, r end",
            "return function(t, ts, r) for i = 1, 2 do end return 1, ts, r end",
            "return function(...) return 1 end",
            "local u = 1 return function(t, ts, r) r.x = u return 1, ts, r end",
            "return function(t, ts, r) r.x = last last = r.y return 1, ts, r end",
            "return function(t, ts, r) r[1] = 'x' return 1, ts, r end",
            "return function(t, ts, r) return os.date('%Y', ts) end",
            // The VM could run other code or change what the guard checked.
            "return function(t, ts, r) os.date = 1 return 1, ts, r end",
            "return function(t, ts, r) r.x = os.date(r) return 1, ts, r end",
            "return function(t, ts, r) r.x = os.time() return 1, ts, r end",
            "return function(t, ts, r) r.x = r .. 'x' return 1, ts, r end",
            "return function(t, ts, r) r.x = r return 1, ts, r end",
            "return function(t, ts, r) local q = r.a r.x = q.y return 1, ts, r end",
            // More fields set than a run holds.
            "return function(t, ts, r) r.a, r.b, r.c, r.d, r.e, r.f, r.g, r.h, r.i = 1, 2, 3, 4, 5, 6, 7, 8, 9 return 1, ts, r end",
        ] {
            let f: Function = lua.load(code).eval().unwrap();
            assert!(Native::new(&lua, &f, false, 0, 0, false).is_none(), "{code}");
        }
        let f: Function = lua.load("return function(t, ts, r) r.x = 'y' return 1, ts, r end").eval().unwrap();
        assert!(Native::new(&lua, &f, false, 0, 0, false).is_some());
        assert!(Native::new(&lua, &f, true, 0, 0, false).is_none(), "time_as_table");
        assert!(Native::new(&lua, &f, false, 500, 0, false).is_none(), "a tiny instruction limit");
        assert!(Native::new(&lua, &f, false, 0, 1 << 20, false).is_none(), "a tiny memory limit");
    }
}
