//! A thin wrapper over the raw Lua C API for the record crossing: every
//! `unsafe` call of the hot path lives here, one small block per operation.
//!
//! [`Entry`] runs a Rust closure inside one `lua_pcall` of a C function
//! created once per VM: mlua's `exec_raw` does the same but creates two C
//! closures per call (garbage, and a third of the fixed cost per record).
//!
//! Invariants: a [`Stack`] exists only inside that closure (the trampoline
//! [`entry`] makes it), so the state is valid, owned by this thread, and any
//! Lua error raised by an allocating operation unwinds to the `lua_pcall`
//! around the closure. Readers take `&self` and
//! return slices borrowed from it; everything that can change the stack or
//! run the GC takes `&mut self`, so a borrowed string cannot outlive the
//! stack slot that keeps it alive. Indices are absolute (positive) or
//! relative to the top (negative), as in the C API.

use std::os::raw::{c_char, c_int, c_void};

use mlua::{ffi, Lua, RegistryKey};

/// Slot of the trampoline in the anchor table (see `super::push`).
pub(crate) const ENTRY_SLOT: i32 = 1;

// LuaJIT's own C API (`luajit.h`), which mlua does not declare.
unsafe extern "C-unwind" {
    fn luaJIT_setmode(l: *mut ffi::lua_State, idx: c_int, mode: c_int) -> c_int;
}
const LUAJIT_MODE_ENGINE: c_int = 0;
const LUAJIT_MODE_ON: c_int = 0x0100;
const LUAJIT_MODE_OFF: c_int = 0;

/// Switch LuaJIT's trace compiler for the whole VM. Switching aborts any
/// trace being recorded; traces compiled already keep running with the
/// compiler off. Raises only when called from a `__gc` finalizer, which
/// gatelog never does.
fn set_compiler(l: *mut ffi::lua_State, on: bool) {
    let mode = LUAJIT_MODE_ENGINE | if on { LUAJIT_MODE_ON } else { LUAJIT_MODE_OFF };
    // SAFETY: a valid state, outside any finalizer.
    unsafe { luaJIT_setmode(l, 0, mode) };
}

/// The way into a VM for [`Entry::call`]: its main state and the registry
/// reference of the anchor table, whose slot [`ENTRY_SLOT`] holds [`entry`].
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    state: *mut ffi::lua_State,
    anchors: c_int,
}

/// The closure [`entry`] runs, passed by address as a light userdata.
type Body<'a> = &'a mut dyn FnMut(&mut Stack);

impl Entry {
    /// Store the trampoline in the anchor table `anchors` of `lua`.
    pub(crate) fn new(lua: &Lua, anchors: &RegistryKey) -> mlua::Result<Entry> {
        let id = anchors.id();
        let mut state = std::ptr::null_mut();
        // SAFETY: plain stack operations inside mlua's protected call; the
        // registry entry `id` is the anchor table.
        unsafe {
            lua.exec_raw::<()>((), |l| {
                state = l;
                ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, id);
                ffi::lua_pushcfunction(l, entry);
                ffi::lua_rawseti_(l, -2, ENTRY_SLOT);
                ffi::lua_settop(l, 0);
            })?;
        }
        // `exec_raw` runs on the VM's main state, which lives as long as
        // `lua`; the owner keeps both together (see `LuaFilter`).
        Ok(Entry { state, anchors: id })
    }

    /// Run `body` in a protected call with the anchor table at stack
    /// slot 1. `Err`: the message of a Lua error that escaped `body` (one
    /// raised by an allocation, e.g. in a `__gc` finalizer; scripts run in
    /// their own `Stack::pcall`).
    pub(crate) fn call(&self, body: &mut dyn FnMut(&mut Stack)) -> Result<(), String> {
        let l = self.state;
        let mut body: Body<'_> = body;
        let ptr = (&mut body as *mut Body<'_>).cast::<c_void>();
        // SAFETY: `l` is the main state of the VM this `Entry` was made for,
        // which the owner keeps alive; mlua keeps the main stack nearly
        // empty, so `lua_checkstack` finds room without growing it and the
        // three pushes allocate nothing; `ptr` outlives the call; the stack
        // is restored.
        unsafe {
            if ffi::lua_checkstack(l, 4) == 0 {
                return Err("Lua stack exhausted".into());
            }
            let base = ffi::lua_gettop(l);
            ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, self.anchors);
            ffi::lua_rawgeti_(l, -1, ENTRY_SLOT);
            ffi::lua_insert(l, -2);
            ffi::lua_pushlightuserdata(l, ptr);
            let status = ffi::lua_pcall(l, 2, 0, 0);
            if status != 0 {
                // An error may have unwound out of a warm-up with the
                // compiler on (`Stack::compiler`): no script code may run
                // with it on.
                set_compiler(l, false);
            }
            let result = if status == 0 {
                Ok(())
            } else {
                // Only a string is read: converting a number would allocate
                // outside any protected call.
                let mut len = 0usize;
                let p = match ffi::lua_type(l, -1) {
                    ffi::LUA_TSTRING => ffi::lua_tolstring(l, -1, &mut len),
                    _ => std::ptr::null(),
                };
                Err(if p.is_null() {
                    format!("Lua error (status {status}) with a non-string value")
                } else {
                    crate::record::lossy_string(std::slice::from_raw_parts(p.cast::<u8>(), len))
                })
            };
            ffi::lua_settop(l, base);
            result
        }
    }
}

/// The trampoline: arguments (anchor table, body address); runs the body
/// with the anchor table alone on the stack.
unsafe extern "C-unwind" fn entry(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called only by `Entry::call`, whose light userdata is the
    // address of a live `Body`.
    let body = unsafe { ffi::lua_touserdata(l, 2).cast::<Body<'_>>().as_mut() };
    // SAFETY: valid state; drops the light userdata.
    unsafe { ffi::lua_settop(l, 1) };
    if let Some(body) = body {
        body(&mut Stack { l });
    }
    0
}

/// A Lua value's type, as `lua_type` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    None,
    Nil,
    Boolean,
    LightUserData,
    Number,
    String,
    Table,
    /// Functions, full userdata, threads, cdata.
    Other,
}

pub(crate) struct Stack {
    l: *mut ffi::lua_State,
}

impl Stack {
    /// Room for `n` more values; false when the stack cannot grow.
    pub(crate) fn reserve(&mut self, n: usize) -> bool {
        let n = c_int::try_from(n).unwrap_or(c_int::MAX);
        // SAFETY: valid state (type invariant).
        unsafe { ffi::lua_checkstack(self.l, n) != 0 }
    }

    pub(crate) fn top(&self) -> i32 {
        // SAFETY: valid state.
        unsafe { ffi::lua_gettop(self.l) }
    }

    pub(crate) fn set_top(&mut self, idx: i32) {
        // SAFETY: valid state; callers only shrink to a slot they pushed.
        unsafe { ffi::lua_settop(self.l, idx) }
    }

    pub(crate) fn kind(&self, idx: i32) -> Kind {
        // SAFETY: valid state; any index is accepted by lua_type.
        match unsafe { ffi::lua_type(self.l, idx) } {
            ffi::LUA_TNONE => Kind::None,
            ffi::LUA_TNIL => Kind::Nil,
            ffi::LUA_TBOOLEAN => Kind::Boolean,
            ffi::LUA_TLIGHTUSERDATA => Kind::LightUserData,
            ffi::LUA_TNUMBER => Kind::Number,
            ffi::LUA_TSTRING => Kind::String,
            ffi::LUA_TTABLE => Kind::Table,
            _ => Kind::Other,
        }
    }

    /// Lua's name of the value's type (`"string"`, `"nil"`, …).
    pub(crate) fn type_name(&self, idx: i32) -> &'static str {
        match self.kind(idx) {
            Kind::None | Kind::Nil => "nil",
            Kind::Boolean => "boolean",
            Kind::LightUserData => "userdata",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Table => "table",
            Kind::Other => "function, userdata or thread",
        }
    }

    /// The bytes of a string value; `None` for any other type (numbers are
    /// not converted: `lua_tolstring` would rewrite the slot and allocate).
    pub(crate) fn bytes(&self, idx: i32) -> Option<&[u8]> {
        self.bytes_of(idx, self.kind(idx))
    }

    /// [`Stack::bytes`] when the caller already has the value's kind.
    pub(crate) fn bytes_of(&self, idx: i32, kind: Kind) -> Option<&[u8]> {
        if kind != Kind::String {
            return None;
        }
        let mut len = 0usize;
        // SAFETY: the value is a string, so lua_tolstring neither allocates
        // nor changes the slot; the bytes live as long as the slot holds the
        // string, which `&self` guarantees (only `&mut self` pops).
        unsafe {
            let p = ffi::lua_tolstring(self.l, idx, &mut len);
            if p.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
        }
    }

    /// The value of a number slot; callers check the kind first (a numeric
    /// string would be coerced, anything else reads as 0).
    pub(crate) fn number(&self, idx: i32) -> f64 {
        // SAFETY: valid state; lua_tonumber converts into a temporary and
        // never changes the slot.
        unsafe { ffi::lua_tonumber(self.l, idx) }
    }

    /// A number, or a string Lua would coerce to one (`lua_isnumber`).
    pub(crate) fn coerce_number(&self, idx: i32) -> Option<f64> {
        match self.kind(idx) {
            Kind::Number => Some(self.number(idx)),
            // SAFETY: lua_tonumber on a string converts a copy (the slot
            // keeps the string) and does not allocate.
            Kind::String => unsafe { (ffi::lua_isnumber(self.l, idx) != 0).then(|| ffi::lua_tonumber(self.l, idx)) },
            _ => None,
        }
    }

    pub(crate) fn boolean(&self, idx: i32) -> bool {
        // SAFETY: valid state.
        unsafe { ffi::lua_toboolean(self.l, idx) != 0 }
    }

    /// The pointer of a light userdata (`flb_null` is NULL).
    pub(crate) fn light_userdata(&self, idx: i32) -> *mut c_void {
        // SAFETY: valid state; returns NULL for non-userdata.
        unsafe { ffi::lua_touserdata(self.l, idx) }
    }

    /// Push a string.
    pub(crate) fn push_bytes(&mut self, b: &[u8]) {
        // SAFETY: valid state, `b` is readable for its length (LuaJIT reads
        // nothing for an empty slice).
        unsafe { ffi::lua_pushlstring_(self.l, b.as_ptr().cast::<c_char>(), b.len()) }
    }

    /// Push a string; returns its interned bytes' address (its identity
    /// while the string is alive).
    pub(crate) fn push_interned(&mut self, b: &[u8]) -> *const u8 {
        self.push_bytes(b);
        self.bytes(-1).map_or(std::ptr::null(), |s| s.as_ptr())
    }

    pub(crate) fn push_number(&mut self, n: f64) {
        // SAFETY: valid state.
        unsafe { ffi::lua_pushnumber(self.l, n) }
    }

    pub(crate) fn push_bool(&mut self, b: bool) {
        // SAFETY: valid state.
        unsafe { ffi::lua_pushboolean(self.l, c_int::from(b)) }
    }

    pub(crate) fn push_nil(&mut self) {
        // SAFETY: valid state.
        unsafe { ffi::lua_pushnil(self.l) }
    }

    /// Fluent Bit's `flb_null`: a NULL light userdata.
    pub(crate) fn push_null(&mut self) {
        // SAFETY: valid state; the pointer is never dereferenced.
        unsafe { ffi::lua_pushlightuserdata(self.l, std::ptr::null_mut()) }
    }

    pub(crate) fn push_copy(&mut self, idx: i32) {
        // SAFETY: valid state.
        unsafe { ffi::lua_pushvalue(self.l, idx) }
    }

    /// Move the top value into slot `idx` (popped).
    pub(crate) fn replace(&mut self, idx: i32) {
        // SAFETY: valid state; `idx` is a slot below the top.
        unsafe { ffi::lua_replace(self.l, idx) }
    }

    pub(crate) fn new_table(&mut self, narr: usize, nrec: usize) {
        let size = |n: usize| c_int::try_from(n).unwrap_or(c_int::MAX);
        // SAFETY: valid state; the sizes are hints.
        unsafe { ffi::lua_createtable(self.l, size(narr), size(nrec)) }
    }

    /// `t[k] = v` with `k`, `v` the two top values (popped). Keys are
    /// strings or positive integers here, never nil or NaN.
    pub(crate) fn raw_set(&mut self, t: i32) {
        // SAFETY: valid state; `t` is a table slot.
        unsafe { ffi::lua_rawset(self.l, t) }
    }

    /// `t[n] = v` with `v` the top value (popped).
    pub(crate) fn raw_seti(&mut self, t: i32, n: i32) {
        // SAFETY: valid state; `t` is a table slot.
        unsafe { ffi::lua_rawseti_(self.l, t, n) }
    }

    /// Push `t[n]` (`t` a table slot).
    pub(crate) fn raw_geti(&mut self, t: i32, n: i32) {
        // SAFETY: valid state; `t` is a table slot.
        unsafe { ffi::lua_rawgeti_(self.l, t, n) };
    }

    /// Replace the top key by `t[key]`.
    pub(crate) fn raw_get(&mut self, t: i32) -> Kind {
        // SAFETY: valid state; `t` is a table slot.
        unsafe { ffi::lua_rawget_(self.l, t) };
        self.kind(-1)
    }

    /// `lua_next`: pops a key, pushes the next key and value; false at the
    /// end (nothing pushed). The key must be one `next` returned (or nil).
    pub(crate) fn next(&mut self, t: i32) -> bool {
        // SAFETY: valid state; `t` is a table slot and the key on top came
        // from the previous `next` (the walk never modifies the table).
        unsafe { ffi::lua_next(self.l, t) != 0 }
    }

    /// Whether the values at `a` and `b` are the same (`rawequal`).
    pub(crate) fn raw_equal(&self, a: i32, b: i32) -> bool {
        // SAFETY: valid state; no metamethod runs.
        unsafe { ffi::lua_rawequal(self.l, a, b) != 0 }
    }

    /// Whether the value at `idx` has a metatable.
    pub(crate) fn has_metatable(&mut self, idx: i32) -> bool {
        // SAFETY: valid state; pushes the metatable only when there is one.
        unsafe {
            if ffi::lua_getmetatable(self.l, idx) == 0 {
                return false;
            }
            ffi::lua_settop(self.l, -2);
        }
        true
    }

    /// Call the function below the `nargs` top values, unprotected: an error
    /// unwinds to the [`Entry`] around the body. For gatelog's own generated
    /// functions, never for the script.
    pub(crate) fn call(&mut self, nargs: i32, nresults: i32) {
        // SAFETY: valid state; inside `entry`, whose `lua_pcall` catches an
        // error (the same as any allocating operation here).
        unsafe { ffi::lua_call(self.l, nargs, nresults) }
    }

    /// Switch LuaJIT's trace compiler (see [`set_compiler`]). An error
    /// unwinding while it is on leaves it on; [`Entry::call`] then switches
    /// it off before anything else runs.
    pub(crate) fn compiler(&mut self, on: bool) {
        set_compiler(self.l, on);
    }

    /// The VM's heap size in KiB (`collectgarbage("count")`).
    pub(crate) fn gc_count_kib(&mut self) -> usize {
        // SAFETY: valid state; LUA_GCCOUNT only reads the GC state.
        usize::try_from(unsafe { ffi::lua_gc(self.l, ffi::LUA_GCCOUNT, 0) }).unwrap_or(0)
    }

    /// Set the collector's pause (`collectgarbage("setpause", p)`); returns
    /// the previous one.
    pub(crate) fn gc_set_pause(&mut self, pause: i32) -> i32 {
        // SAFETY: valid state; LUA_GCSETPAUSE only sets a field.
        unsafe { ffi::lua_gc(self.l, ffi::LUA_GCSETPAUSE, pause) }
    }

    /// Call the function below the `nargs` top values, adjusting the results
    /// to `nresults`; returns the `lua_pcall` status (the error value is on
    /// top when it is not 0).
    pub(crate) fn pcall(&mut self, nargs: i32, nresults: i32) -> i32 {
        // SAFETY: valid state; a protected call, so script errors return
        // a status instead of unwinding.
        unsafe { ffi::lua_pcall(self.l, nargs, nresults, 0) }
    }
}

/// Status of a `pcall` that ran out of memory.
pub(crate) const ERRMEM: i32 = ffi::LUA_ERRMEM;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(lua: &Lua) -> Entry {
        let anchors = lua.create_registry_value(lua.create_table().unwrap()).unwrap();
        Entry::new(lua, &anchors).unwrap()
    }

    #[test]
    fn body_runs_with_the_anchor_table_and_reads_back_what_it_wrote() {
        let lua = Lua::new();
        let mut seen = Vec::new();
        let result = entry(&lua).call(&mut |st| {
            assert_eq!((st.top(), st.kind(1)), (1, Kind::Table));
            st.new_table(0, 2);
            let t = st.top();
            let ptr = st.push_interned(b"key");
            st.push_bytes(b"value");
            st.raw_set(t);
            // Interning: the same bytes are the same string.
            assert_eq!(st.push_interned(b"key"), ptr);
            st.push_number(2.5);
            st.raw_set(t);
            st.push_nil();
            while st.next(t) {
                seen.push((st.bytes(-2).map(<[u8]>::to_vec), st.kind(-1), st.bytes(-1).map(<[u8]>::to_vec)));
                st.set_top(-2);
            }
            assert_eq!(st.top(), t);
            st.set_top(0);
        });
        assert_eq!(result, Ok(()));
        assert_eq!(seen, [(Some(b"key".to_vec()), Kind::Number, None)]);
    }

    #[test]
    fn errors_inside_and_escaping_the_body() {
        let lua = Lua::new();
        let e = entry(&lua);
        // A script error inside the body's own pcall is the body's business.
        let mut status = 0;
        let result = e.call(&mut |st| {
            st.push_copy(1);
            st.push_nil();
            status = st.pcall(1, 0);
            assert_eq!(st.bytes(-1), Some(&b"attempt to call a table value"[..]));
            st.set_top(0);
        });
        assert_eq!((result, status), (Ok(()), 2));
        // One raised by the C API unwinds to the entry's own pcall.
        let result = e.call(&mut |st| {
            st.new_table(0, 1);
            st.push_nil();
            st.push_number(1.0);
            st.raw_set(2);
        });
        assert_eq!(result, Err("table index is nil".to_owned()));
        // The VM is still usable, its main stack balanced.
        assert_eq!(lua.load("return 1 + 1").eval::<i64>().unwrap(), 2);
        assert_eq!(e.call(&mut |st| assert_eq!(st.top(), 1)), Ok(()));
    }
}
