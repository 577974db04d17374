//! Resource limits of one Lua VM, so that a runaway or greedy script costs one
//! record, not the process.
//!
//! - Instructions: a count hook fires every [`STEP`] VM instructions and
//!   raises a Lua error once the per-call budget is spent. After tripping it
//!   re-arms itself to fire on *every* instruction, so a script that catches
//!   the error with `pcall` in a loop is thrown out again at its next
//!   instruction outside the `pcall`. LuaJIT never runs hooks inside
//!   JIT-compiled traces (a compiled `while true do end` would spin forever),
//!   so script code never runs with the JIT compiler on (see `vm.rs`).
//!   The hook is installed only while script code runs ([`Limits::arm`] to
//!   [`Limits::disarm`]: the script's top level, then each call): with a
//!   count hook set, LuaJIT sends every bytecode through its hook dispatch
//!   (~10 instructions each), and gatelog's own generated code (a shape's
//!   constructor and checker, see `shapes.rs`) runs between the calls
//!   without it. Only script code needs the budget: `__gc` finalizers run
//!   with hooks off in LuaJIT anyway (below). Installing it also restarts
//!   its count, so each call starts with a whole step.
//!   The hook is a raw `lua_sethook` function, not mlua's `set_hook`: hooks
//!   are global in LuaJIT, and mlua's hook removes itself the first time it
//!   fires inside a coroutine, which would let a script escape the budget.
//!   Its state lives in the VM's registry (a light userdata pointing at the
//!   [`Budget`], which mlua's app data keeps alive as long as the VM) and the
//!   error message is pre-built there, so raising it allocates nothing.
//! - Memory: mlua's allocator limit (it works with LuaJIT's GC64 allocator
//!   hook); arming it is one field store in the allocator's state, so it
//!   costs nothing per record. It is armed only while script code runs:
//!   record conversion happens with the limit lifted, so it never fails
//!   half-way on a limit (a converted record is bounded by the input size
//!   anyway). The allocator refuses the very allocation that would cross
//!   the limit, which a check of `collectgarbage("count")` in the count hook
//!   could not (one `string.rep` allocates any size in one instruction).
//!   Lua 5.1 has no emergency GC, so after a limit trips the VM is collected
//!   fully before the next record (and the crossing keeps the collector's
//!   pause modest near the limit, see `crossing.rs`).
//!
//! C functions that do not run VM instructions (a pathological
//! `string.find` pattern) cannot be interrupted, and LuaJIT runs `__gc`
//! finalizers with hooks off (a script can set one on a `newproxy` userdata
//! or on the io library's file handles), so an endless finalizer is not
//! stopped either: those are LuaJIT's limits. The budget is counted in steps
//! of [`STEP`] instructions, so a limit under a few thousand is not exact.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mlua::{ffi, Lua};

/// Instructions between two hook calls in normal operation: rare enough to
/// cost nothing measurable, fine enough that the limit is exact to 0.01 %
/// at the default budget.
pub(crate) const STEP: u32 = 1000;

/// Registry keys (their addresses are unique light userdata keys).
static BUDGET_KEY: u8 = 1;
static MESSAGE_KEY: u8 = 2;

/// The per-call budgets and the state the hook shares with the filter.
pub(crate) struct Limits {
    budget: Arc<Budget>,
    memory_limit: usize,
    /// The VM's main state, for setting the hook (hooks are global to the
    /// VM in LuaJIT). Valid as long as the `Lua` it was installed on, which
    /// its owner keeps together with these limits.
    state: *mut ffi::lua_State,
}

/// Read by the hook through a raw pointer: only atomics, never moved (it is
/// behind an `Arc` that the VM's app data owns too).
struct Budget {
    /// 0 means unlimited.
    limit: u64,
    remaining: AtomicU64,
    tripped: AtomicBool,
}

impl Limits {
    /// Install the instruction hook on `lua`; `0` disables a limit.
    pub(crate) fn install(lua: &Lua, instruction_limit: u64, memory_limit: u64) -> mlua::Result<Limits> {
        let budget = Arc::new(Budget {
            limit: instruction_limit,
            remaining: AtomicU64::new(instruction_limit),
            tripped: AtomicBool::new(false),
        });
        let message = format!("instruction limit of {instruction_limit} exceeded (gatelog instruction_limit)");
        let ptr = Arc::as_ptr(&budget) as *mut c_void;
        let mut main = std::ptr::null_mut();
        // SAFETY: plain stack and registry operations on the VM's own state
        // inside mlua's protected call; the pointer stays valid as long as
        // the VM because the VM's app data holds the Arc. `exec_raw` runs on
        // the VM's main state, which lives as long as `lua`.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                main = state;
                if instruction_limit > 0 {
                    ffi::lua_pushlightuserdata(state, key(&BUDGET_KEY));
                    ffi::lua_pushlightuserdata(state, ptr);
                    ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
                    ffi::lua_pushlightuserdata(state, key(&MESSAGE_KEY));
                    ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
                    ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
                }
            })?;
        }
        if instruction_limit > 0 {
            lua.set_app_data(budget.clone());
        }
        Ok(Limits { budget, memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX), state: main })
    }

    /// Before running script code: a fresh instruction budget, the count
    /// hook installed and the memory limit on. May be called inside a
    /// protected call on the VM (it only sets fields of its global state).
    pub(crate) fn arm(&self, lua: &Lua) {
        let b = &self.budget;
        if b.limit > 0 {
            b.remaining.store(b.limit, Ordering::Relaxed);
            b.tripped.store(false, Ordering::Relaxed);
            // SAFETY: `state` is the VM's main state (see the field); setting
            // the hook touches only the global state's hook fields and
            // dispatch table, and no VM code is running on another thread
            // (the owner has the VM alone).
            unsafe { ffi::lua_sethook(self.state, Some(count_hook), ffi::LUA_MASKCOUNT, step_for(b.limit)) };
        }
        self.memory_on(lua);
    }

    /// After the script returned (or raised): the hook removed and the
    /// memory limit lifted, for gatelog's own code and the conversion.
    pub(crate) fn disarm(&self, lua: &Lua) {
        self.memory_off(lua);
        if self.budget.limit > 0 {
            // SAFETY: as in `arm`.
            unsafe { ffi::lua_sethook(self.state, None, 0, 0) };
        }
    }

    /// Arm the memory limit (a field store in mlua's allocator state; may be
    /// called inside `exec_raw`).
    fn memory_on(&self, lua: &Lua) {
        if self.memory_limit > 0 {
            // Cannot fail: the VM is created with mlua's allocator.
            let _ = lua.set_memory_limit(self.memory_limit);
        }
    }

    fn memory_off(&self, lua: &Lua) {
        if self.memory_limit > 0 {
            let _ = lua.set_memory_limit(0);
        }
    }

    /// The memory limit in bytes (0: none).
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Forget an earlier trip: before a record, whose call may fail before
    /// the script runs.
    pub(crate) fn clear_trip(&self) {
        self.budget.tripped.store(false, Ordering::Relaxed);
    }

    /// Whether the instruction budget ran out during the last call.
    pub(crate) fn instructions_tripped(&self) -> bool {
        self.budget.tripped.load(Ordering::Relaxed)
    }

    /// Release what a runaway call left behind (no emergency GC in Lua 5.1).
    pub(crate) fn recover(&self, lua: &Lua) {
        let _ = lua.gc_collect();
        let _ = lua.gc_collect();
    }
}

fn key(k: &'static u8) -> *mut c_void {
    k as *const u8 as *mut c_void
}

fn step_for(limit: u64) -> i32 {
    limit.clamp(1, u64::from(STEP)) as i32
}

/// The count hook. Runs on whichever coroutine is executing; finds the
/// budget in the registry, and raises the pre-built message when it is spent.
unsafe extern "C-unwind" fn count_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    ffi::lua_pushlightuserdata(state, key(&BUDGET_KEY));
    ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
    let budget = ffi::lua_touserdata(state, -1) as *const Budget;
    ffi::lua_pop(state, 1);
    // SAFETY: set by `Limits::install`, alive as long as the VM.
    let Some(budget) = (unsafe { budget.as_ref() }) else {
        return;
    };
    if !budget.tripped.load(Ordering::Relaxed) {
        let step = step_for(budget.limit) as u64;
        let left = budget.remaining.load(Ordering::Relaxed).saturating_sub(step);
        budget.remaining.store(left, Ordering::Relaxed);
        if left > 0 {
            return;
        }
        budget.tripped.store(true, Ordering::Relaxed);
        // From now on every instruction raises, so `pcall` cannot swallow it.
        ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, 1);
    }
    ffi::lua_pushlightuserdata(state, key(&MESSAGE_KEY));
    ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
    // No Rust value with a destructor is alive here: unwinding is clean.
    ffi::lua_error(state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::{LuaOptions, StdLib};

    fn vm() -> Lua {
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).unwrap();
        lua.load("jit.off() jit.flush()").exec().unwrap();
        lua
    }

    #[test]
    fn runaway_loop_is_stopped_and_budget_resets() {
        let lua = vm();
        let limits = Limits::install(&lua, 100_000, 0).unwrap();
        limits.arm(&lua);
        let err = lua.load("local i = 0 while true do i = i + 1 end").exec().unwrap_err();
        assert!(limits.instructions_tripped(), "{err}");
        assert!(err.to_string().contains("instruction limit of 100000 exceeded"), "{err}");
        limits.arm(&lua);
        assert_eq!(lua.load("local s = 0 for i = 1, 1000 do s = s + i end return s").eval::<i64>().unwrap(), 500500);
    }

    #[test]
    fn the_hook_is_on_only_between_arm_and_disarm() {
        let lua = vm();
        let limits = Limits::install(&lua, 100_000, 0).unwrap();
        let spin = "local s = 0 for i = 1, 1e6 do s = s + i end return s";
        // Not armed (gatelog's own code between calls): no budget.
        assert_eq!(lua.load(spin).eval::<f64>().unwrap(), 500000500000.0);
        limits.arm(&lua);
        assert!(lua.load(spin).eval::<f64>().is_err() && limits.instructions_tripped());
        limits.disarm(&lua);
        assert_eq!(lua.load(spin).eval::<f64>().unwrap(), 500000500000.0);
        // A trip does not outlive the call: the next one has its whole budget.
        limits.arm(&lua);
        assert_eq!(lua.load("local s = 0 for i = 1, 1e4 do s = s + i end return s").eval::<i64>().unwrap(), 50005000);
        assert!(!limits.instructions_tripped());
    }

    #[test]
    fn pcall_cannot_swallow_the_limit() {
        let lua = vm();
        let limits = Limits::install(&lua, 50_000, 0).unwrap();
        limits.arm(&lua);
        let err = lua.load("while true do pcall(function() while true do end end) end").exec().unwrap_err();
        assert!(limits.instructions_tripped(), "{err}");
    }

    #[test]
    fn coroutines_stay_under_the_budget() {
        let lua = vm();
        let limits = Limits::install(&lua, 1_000_000, 0).unwrap();
        limits.arm(&lua);
        let err =
            lua.load("coroutine.wrap(function() for i = 1, 1e5 do end end)() while true do end").exec().unwrap_err();
        assert!(limits.instructions_tripped(), "{err}");
        limits.arm(&lua);
        let err = lua.load("coroutine.wrap(function() while true do end end)()").exec().unwrap_err();
        assert!(limits.instructions_tripped(), "{err}");
    }

    #[test]
    fn memory_bomb_is_stopped_and_memory_released() {
        let lua = vm();
        let limits = Limits::install(&lua, 0, 16_000_000).unwrap();
        limits.arm(&lua);
        let err = lua.load("local t = {} while true do t[#t + 1] = string.rep('x', 1e6) .. #t end").exec().unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)) && !limits.instructions_tripped(), "{err}");
        limits.disarm(&lua);
        limits.recover(&lua);
        assert!(lua.used_memory() < 4_000_000, "{}", lua.used_memory());
        limits.arm(&lua);
        assert_eq!(lua.load("return #string.rep('y', 1e6)").eval::<i64>().unwrap(), 1_000_000);
    }
}
