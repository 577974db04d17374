//! Resource limits of one Lua VM, so that a runaway or greedy script costs one
//! record, not the process.
//!
//! - Instructions: a count hook fires every [`STEP`] VM instructions and
//!   raises a Lua error once the per-call budget is spent. After tripping it
//!   re-arms itself to fire on *every* instruction, so a script that catches
//!   the error with `pcall` in a loop is thrown out again at its next
//!   instruction outside the `pcall`. LuaJIT never runs hooks inside
//!   JIT-compiled traces (a compiled `while true do end` would spin forever),
//!   so the VM runs with the JIT compiler off (see `vm.rs`).
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
        if instruction_limit > 0 {
            lua.set_app_data(budget.clone());
            let message = format!("instruction limit of {instruction_limit} exceeded (gatelog instruction_limit)");
            let ptr = Arc::as_ptr(&budget) as *mut c_void;
            // SAFETY: plain stack and registry operations on the VM's own
            // state inside mlua's protected call; the pointer stays valid as
            // long as the VM because the VM's app data holds the Arc.
            unsafe {
                lua.exec_raw::<()>((), |state| {
                    ffi::lua_pushlightuserdata(state, key(&BUDGET_KEY));
                    ffi::lua_pushlightuserdata(state, ptr);
                    ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
                    ffi::lua_pushlightuserdata(state, key(&MESSAGE_KEY));
                    ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
                    ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
                    ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, step_for(instruction_limit));
                })?;
            }
        }
        Ok(Limits { budget, memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX) })
    }

    /// Before running script code: a fresh instruction budget and the
    /// memory limit on.
    pub(crate) fn arm(&self, lua: &Lua) {
        self.reset(lua);
        self.memory_on(lua);
    }

    /// After the script returned: lift the memory limit for conversion.
    pub(crate) fn disarm(&self, lua: &Lua) {
        self.memory_off(lua);
    }

    /// A fresh instruction budget (and the normal hook period again after a
    /// trip).
    pub(crate) fn reset(&self, lua: &Lua) {
        let b = &self.budget;
        if b.limit > 0 {
            b.remaining.store(b.limit, Ordering::Relaxed);
            if b.tripped.swap(false, Ordering::Relaxed) {
                self.rearm(lua);
            }
        }
    }

    /// Install the count hook again with its normal period: after a trip,
    /// and after a Lua error escaped gatelog's own code, which may have run
    /// with the hook off (`Stack::unhooked`).
    pub(crate) fn rearm(&self, lua: &Lua) {
        let b = &self.budget;
        if b.limit > 0 {
            let step = step_for(b.limit);
            // SAFETY: only sets the hook on the VM's state.
            let _ = unsafe {
                lua.exec_raw::<()>((), |state| {
                    ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, step);
                })
            };
        }
    }

    /// Arm the memory limit (a field store in mlua's allocator state; may be
    /// called inside `exec_raw`).
    pub(crate) fn memory_on(&self, lua: &Lua) {
        if self.memory_limit > 0 {
            // Cannot fail: the VM is created with mlua's allocator.
            let _ = lua.set_memory_limit(self.memory_limit);
        }
    }

    pub(crate) fn memory_off(&self, lua: &Lua) {
        if self.memory_limit > 0 {
            let _ = lua.set_memory_limit(0);
        }
    }

    /// The memory limit in bytes (0: none).
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
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
