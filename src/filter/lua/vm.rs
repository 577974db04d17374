//! One filter's Lua VM: created, loaded and checked once when the config
//! loads, then kept for the process lifetime (globals persist between calls,
//! as in Fluent Bit).
//!
//! The VM is LuaJIT (Lua 5.1 dialect, like Fluent Bit) with the safe
//! standard libraries: `debug` (which could remove the instruction hook) is
//! not loaded, and LuaJIT is built without `ffi` (which can corrupt memory,
//! and which LuaJIT would otherwise load for any `1LL` literal); `debug.traceback` alone
//! exists (returning the message) so `xpcall(f, debug.traceback)` works. The JIT compiler is
//! switched off and `jit.on` made a no-op, because LuaJIT does not run hooks
//! inside compiled traces and the instruction limit could not stop a
//! compiled endless loop; per-record filter functions are short, so the
//! interpreter costs little (see `examples/lua_bench.rs`). Only gatelog's
//! own generated code is compiled, while no script code runs (see
//! `shapes.rs`). `os.exit` raises an error instead of ending the process (a
//! Lua function, so the error is a plain string like every other script
//! error). `flb_null` is defined as in
//! Fluent Bit ≥ 2.1.10 (a NULL light userdata). `os.date` remembers its
//! last answer for the second it was asked about ([`DATE_MEMO`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use mlua::{Function, LightUserData, Lua, LuaOptions, MultiValue, StdLib, Table};

use super::limits::Limits;
use super::options::{Settings, Source};
use crate::config::ConfigError;

/// LuaJIT is built without its FFI (`.cargo/config.toml`: with it, a
/// script could load `ffi` through a `1LL` literal and `require`, then read
/// and write any memory), but mlua's standard-library loader still names
/// `luaopen_ffi`. gatelog never loads that library (`StdLib::ALL_SAFE`);
/// called anyway, this raises. A duplicate-symbol link error here means
/// LuaJIT was built with its FFI: build from the repository, where
/// `.cargo/config.toml` applies.
#[unsafe(no_mangle)]
unsafe extern "C-unwind" fn luaopen_ffi(state: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    // SAFETY: a valid state (LuaJIT calls library openers with one); the
    // message is a NUL-terminated literal without format directives.
    unsafe { mlua::ffi::luaL_error(state, c"the ffi library is disabled in gatelog".as_ptr()) }
}

/// Registry name of the builtin `next`.
pub(crate) const NEXT_KEY: &str = "gatelog.next";

/// A fresh VM with gatelog's library set.
pub(crate) fn new_vm() -> mlua::Result<Lua> {
    let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())?;
    let globals = lua.globals();
    let jit: Table = globals.get("jit")?;
    jit.get::<Function>("off")?.call::<()>(())?;
    jit.get::<Function>("flush")?.call::<()>(())?;
    jit.set("on", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    // A `jit.attach` handler runs whenever LuaJIT compiles or traces, that
    // is while gatelog builds and warms up its own Lua code: outside any
    // script call, so outside the instruction limit (an endless handler
    // would stall the pipeline). Scripts get one that raises; the original
    // is kept for gatelog's tests only.
    lua.set_named_registry_value(JIT_ATTACH_KEY, jit.get::<Function>("attach")?)?;
    jit.set(
        "attach",
        lua.create_function(|_, _: MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::runtime(
                "jit.attach is disabled in gatelog (its handlers would run outside the instruction limit)",
            ))
        })?,
    )?;
    globals.set("flb_null", LightUserData(std::ptr::null_mut()))?;
    // The builtin `next`, before any script can replace the global, for the
    // generated code of `super::shapes`.
    lua.set_named_registry_value(NEXT_KEY, globals.get::<Function>("next")?)?;
    // `xpcall(f, debug.traceback)` is a common idiom: keep it working
    // without the unsafe library.
    // `os.exit` is a Lua function so that its error is a plain string
    // (errors of Rust callbacks arrive as mlua userdata).
    lua.load(
        r#"debug = { traceback = function(msg) if msg == nil then return "stack traceback unavailable in gatelog" end return tostring(msg) end }
        package.loaded.debug = debug
        os.exit = function() error("os.exit is disabled in gatelog (a filter must not stop the pipeline)", 2) end"#,
    )
    .set_name("=gatelog")
    .exec()?;
    let changed = lua.create_function(|_, ()| {
        LOCALE_CHANGES.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })?;
    let forget: Function = lua.load(DATE_MEMO).set_name("=gatelog").call(changed)?;
    lua.set_named_registry_value(DATE_FORGET_KEY, forget)?;
    // Before any script runs: what `super::native` reads bytecode with,
    // and its guard (which wraps `newproxy`).
    let util: Table = lua.load(r#"return require("jit.util")"#).set_name("=gatelog").eval()?;
    lua.set_named_registry_value(JIT_UTIL_KEY, util)?;
    let guard: Function = lua.load(DIRECT_GUARD).set_name("=gatelog").eval()?;
    lua.set_named_registry_value(DIRECT_GUARD_KEY, guard)?;
    Ok(lua)
}

/// Registry name of LuaJIT's own `jit.attach` (scripts get one that raises).
pub(crate) const JIT_ATTACH_KEY: &str = "gatelog.jit_attach";

/// Registry name of LuaJIT's `jit.util` (bytecode of a function).
pub(crate) const JIT_UTIL_KEY: &str = "gatelog.jit_util";
/// Registry name of [`DIRECT_GUARD`]'s function.
pub(crate) const DIRECT_GUARD_KEY: &str = "gatelog.direct_guard";

/// What `super::native` must know of the VM before it runs a script's
/// function without it: `guard(f, name…)` returns `false` when script code
/// other than `f`'s own calls could ever run in the VM (a `__gc`
/// finalizer: `newproxy` was called, or the io library's file handles got
/// another `__gc`; `jit.attach` raises, see [`new_vm`]), when `f`'s
/// environment has a metatable, or when a named global
/// is not a string, number, boolean or nil (`{v}`) or a table (`true`
/// when its `date` is `os.date` as gatelog installed it, else `false`).
/// Otherwise `true` and those answers in order, plus `os.date`. Built
/// before any script runs, so it holds the builtins as they were; the
/// `newproxy` wrapper passes its arguments and result through (its errors
/// name `newproxy` as before: not a tail call).
const DIRECT_GUARD: &str = r##"
local getfenv, getmetatable, rawget, rawequal, type, select = getfenv, getmetatable, rawget, rawequal, type, select
local date = os.date
local file_mt = getmetatable(io.stdout)
local file_gc = file_mt and rawget(file_mt, "__gc")
local foreign = false
local newproxy = newproxy
_G.newproxy = function(...)
    foreign = true
    return (newproxy(...))
end
return function(f, ...)
    if foreign or (file_mt and not rawequal(rawget(file_mt, "__gc"), file_gc)) then
        return false
    end
    local env = getfenv(f)
    if getmetatable(env) ~= nil then
        return false
    end
    local out = {}
    for i = 1, select("#", ...) do
        local v = rawget(env, (select(i, ...)))
        local t = type(v)
        if t == "table" then
            out[i] = rawequal(rawget(v, "date"), date)
        elseif t == "string" or t == "number" or t == "boolean" or t == "nil" then
            out[i] = { v }
        else
            return false
        end
    end
    return true, out, date
end
"##;

/// Calls of `os.setlocale` in any VM. The locale belongs to the process, so
/// every VM's remembered date is stale after one: the filter compares this
/// with what it saw before each record ([`forget_dates_if_locale_changed`]).
static LOCALE_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Registry name of the function that forgets the remembered date.
const DATE_FORGET_KEY: &str = "gatelog.date_forget";

/// Make `lua`'s `os.date` forget its remembered string if some VM changed
/// the locale since `seen` (updated).
#[inline(always)]
pub(crate) fn forget_dates_if_locale_changed(lua: &Lua, seen: &mut u64) {
    let now = LOCALE_CHANGES.load(Ordering::Relaxed);
    if now != *seen {
        forget_dates(lua, seen, now);
    }
}

#[cold]
#[inline(never)]
fn forget_dates(lua: &Lua, seen: &mut u64, now: u64) {
    *seen = now;
    if let Ok(forget) = lua.named_registry_value::<Function>(DATE_FORGET_KEY) {
        let _ = forget.call::<()>(());
    }
}

/// `os.date` remembers its last string: a dated-path script calls it with
/// the same format for every record of a second, and each call costs
/// ~1,000 instructions (`localtime_r`, one `strftime` per conversion, a new
/// string). The answer is a function of the format, the whole seconds of
/// the time (C's `(time_t)` cast, which is the floor for the non-negative
/// times remembered: the second `[lo, hi)`) and the locale, so
/// `os.setlocale`, in this VM or any other, forgets it. Only a call with
/// exactly a string format and a time in `[0, 2^53)` is remembered:
/// `localtime` and `strftime` cannot fail there, and with two arguments
/// LuaJIT's answer when `strftime` gives nothing (it returns its last
/// argument) is the time, not a string. Every other call goes to the
/// original with its arguments as given, in a tail call, so its errors keep
/// their position (the script's line) and name.
const DATE_MEMO: &str = r##"
local changed = ...
local date, setlocale, type, select = os.date, os.setlocale, type, select
local last_f, last_s, lo, hi = nil, nil, 0, -1
local function forget()
    last_f, last_s, lo, hi = nil, nil, 0, -1
end
os.date = function(...)
    local f, t = ...
    if f == last_f and type(t) == "number" and t < hi and t >= lo then
        return last_s
    end
    if type(f) == "string" and type(t) == "number" and t >= 0 and t < 9007199254740992 and select("#", ...) == 2 then
        local s = date(f, t)
        if type(s) == "string" then
            last_f, last_s, lo = f, s, t - t % 1
            hi = lo + 1
        end
        return s
    end
    return date(...)
end
os.setlocale = function(...)
    forget()
    changed()
    return setlocale(...)
end
return forget
"##;

/// Compile the script, run its top level under the limits, and return the
/// `call` function.
pub(crate) fn load(lua: &Lua, s: &Settings, instance: &str, limits: &Limits) -> Result<Function, ConfigError> {
    let source: Vec<u8> = match &s.source {
        Source::File(path) => std::fs::read(path).map_err(|e| {
            ConfigError::at(&s.source_loc, format!("cannot read lua script {}: {e}", path.display()))
                .with_hint("check the path and the file's permissions")
        })?,
        Source::Inline(code) => code.clone().into_bytes(),
    };
    let before = global_names(lua);
    let chunk = lua.load(source).set_name(s.chunk_name(instance)).into_function().map_err(|e| {
        ConfigError::at(&s.source_loc, format!("lua script does not compile: {}", first_line(&e)))
            .with_hint("fix the Lua syntax at the file:line shown")
    })?;
    limits.arm(lua);
    let ran = chunk.call::<()>(());
    limits.disarm(lua);
    if let Err(e) = ran {
        limits.recover(lua);
        return Err(ConfigError::at(&s.source_loc, format!("lua script failed while loading: {}", first_line(&e)))
            .with_hint("the script's top level must run without error (Fluent Bit 2.x refuses it too)"));
    }
    match lua.globals().raw_get::<mlua::Value>(s.call.as_str()) {
        Ok(mlua::Value::Function(f)) => Ok(f),
        _ => {
            let mut defined: Vec<String> = global_functions(lua).into_iter().filter(|n| !before.contains(n)).collect();
            defined.sort();
            let hint = if defined.is_empty() {
                "the script defines no global function; declare 'function name(tag, timestamp, record)'".to_owned()
            } else {
                format!("functions the script defines: {}", defined.join(", "))
            };
            Err(ConfigError::at(&s.call_loc, format!("function '{}' is not found in the lua script", s.call))
                .with_hint(hint))
        }
    }
}

fn global_names(lua: &Lua) -> HashSet<String> {
    lua.globals()
        .pairs::<mlua::Value, mlua::Value>()
        .filter_map(|kv| kv.ok())
        .filter_map(|(k, _)| match k {
            mlua::Value::String(s) => Some(s.to_string_lossy()),
            _ => None,
        })
        .collect()
}

fn global_functions(lua: &Lua) -> Vec<String> {
    lua.globals()
        .pairs::<mlua::Value, mlua::Value>()
        .filter_map(|kv| kv.ok())
        .filter_map(|(k, v)| match (k, v) {
            (mlua::Value::String(s), mlua::Value::Function(_)) => Some(s.to_string_lossy()),
            _ => None,
        })
        .collect()
}

/// The first line of a Lua error (`file.lua:3: message`), without mlua's
/// traceback.
pub(crate) fn first_line(e: &mlua::Error) -> String {
    let inner = match e {
        mlua::Error::CallbackError { cause, .. } => cause.as_ref(),
        other => other,
    };
    let text = match inner {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or("").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer (string, table, nil or error message) of `os.date` for
    /// formats and times of every kind, asked in a scrambled order so the
    /// remembered string is tried against neighbours of its second.
    const PROBE: &str = r#"
        local fs = { "%Y-%m%d", "%Y-%m-%dT%H:%M:%S", "!%H:%M:%S", "%c", "*t", "!*t", "x", "%", "%Q%E%", 5, {} }
        local ts = { 0, 0.5, 1732379400.25, 1732379400.75, 1732379401, 1732379399.999, -1, -1.5, -0.0,
                     2^53 - 1.5, 2^53, 2^53 + 2, 1e15, 1e17, 1e300, 0/0, 1/0, -1/0, "1732379400", {}, true }
        local out, seed = {}, 7
        local function show(ok, r)
            if type(r) == "table" then
                local ks = {}
                for k, v in pairs(r) do ks[#ks + 1] = tostring(k) .. "=" .. tostring(v) end
                table.sort(ks)
                r = "{" .. table.concat(ks, ",") .. "}"
            end
            return tostring(ok) .. ":" .. type(r) .. ":" .. tostring(r)
        end
        for n = 1, 3000 do
            seed = (seed * 1103515245 + 12345) % 2147483648
            local f, t = fs[seed % #fs + 1], ts[math.floor(seed / 65536) % #ts + 1]
            if n % 500 == 0 then os.setlocale("C") end
            out[#out + 1] = show(pcall(function() local s = os.date(f, t) return s end))
        end
        out[#out + 1] = show(pcall(function() local s = os.date() return type(s) end))
        -- Argument counts: when strftime gives nothing (a width beyond
        -- LuaJIT's buffer), LuaJIT answers with its last argument.
        for _, call in ipairs({
            function() return os.date("%1000p") end,
            function() return os.date("%1000p", 0) end,
            function() return os.date("%1000p", 0, "x") end,
            function() return os.date("%1000p", 0, nil) end,
            function() return os.date("%Y", 5) end,
            function() return os.date("%Y", 5.5, "x") end,
            function() return os.date("%1000p", 5.5) end,
            function() return os.date("%Y", 5.25) end,
        }) do
            out[#out + 1] = show(pcall(function() local s = call() return s end))
        end
        return table.concat(out, "\n")
    "#;

    #[test]
    fn remembered_dates_are_the_original_answers_and_errors() {
        let stock = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).unwrap();
        let want: String = stock.load(PROBE).set_name("=probe").eval().unwrap();
        let got: String = new_vm().unwrap().load(PROBE).set_name("=probe").eval().unwrap();
        for (n, (w, g)) in want.lines().zip(got.lines()).enumerate() {
            assert_eq!(g, w, "answer {n}");
        }
        assert_eq!(got.lines().count(), want.lines().count());
        // The probe reaches strings, tables and errors.
        for kind in [
            "true:string:2024-1123",
            "true:string:{day=",
            "probe:19: bad argument #1 to 'date'",
            "bad argument #2 to 'date'",
        ] {
            assert!(want.contains(kind), "{kind}");
        }
    }

    #[test]
    fn a_locale_change_in_any_vm_makes_every_vm_forget() {
        // The memo around a counting stand-in for the original.
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).unwrap();
        lua.load("calls = 0 local real = os.date os.date = function(...) calls = calls + 1 return real(...) end")
            .exec()
            .unwrap();
        let changed = lua.create_function(|_, ()| Ok(())).unwrap();
        let forget: Function = lua.load(DATE_MEMO).call(changed).unwrap();
        lua.set_named_registry_value(DATE_FORGET_KEY, forget).unwrap();
        let calls = |code: &str| -> i64 {
            lua.load(code).exec().unwrap();
            lua.globals().get("calls").unwrap()
        };
        assert_eq!(calls(r#"os.date("%Y", 1.5) os.date("%Y", 1.9)"#), 1, "remembered within the second");
        // Another VM changes the locale.
        let mut seen = LOCALE_CHANGES.load(Ordering::Relaxed);
        new_vm().unwrap().load(r#"os.setlocale("C")"#).exec().unwrap();
        forget_dates_if_locale_changed(&lua, &mut seen);
        assert_eq!(seen, LOCALE_CHANGES.load(Ordering::Relaxed));
        assert_eq!(calls(r#"os.date("%Y", 1.2)"#), 2, "forgotten after the change");
        assert_eq!(calls(r#"os.date("%Y", 1.7)"#), 2);
        // And its own os.setlocale.
        assert_eq!(calls(r#"os.setlocale("C") os.date("%Y", 1.1)"#), 3);
    }

    #[test]
    fn a_remembered_date_is_not_the_answer_for_another_second_or_format() {
        // (format, time asked of gatelog's VM, the whole second asked of a stock one)
        let calls = [
            ("%H:%M:%S", "1732379400.9", "1732379400"),
            ("%H:%M:%S", "1732379401.0", "1732379401"),
            ("%H:%M:%S", "1732379400.0", "1732379400"),
            ("%M", "1732379400.5", "1732379400"),
            ("%H:%M:%S", "1732379400.5", "1732379400"),
        ];
        let dates = |lua: &Lua, whole_seconds: bool| -> Vec<String> {
            let args: Vec<String> = calls
                .iter()
                .map(|(f, t, s)| format!("os.date({f:?}, {})", if whole_seconds { s } else { t }))
                .collect();
            lua.load(format!("return {{ {} }}", args.join(", "))).eval().unwrap()
        };
        let got = dates(&new_vm().unwrap(), false);
        let want = dates(&Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).unwrap(), true);
        assert_eq!(got, want);
        assert_ne!(got[0], got[1]);
    }
}
