//! placeholder: the `lua` filter (work in progress).

use std::path::Path;

use crate::config::{ConfigError, Section};
use crate::record::Record;
use crate::stats::FilterCounters;

pub struct LuaFilter {}

impl LuaFilter {
    pub fn from_section(
        section: &Section,
        _base_dir: &Path,
        _instance: &str,
    ) -> Result<LuaFilter, Vec<ConfigError>> {
        Err(vec![ConfigError::at(
            &section.loc,
            "lua filter not built yet",
        )])
    }

    pub fn apply(&mut self, rec: Record, out: &mut Vec<Record>, _counters: &FilterCounters) {
        out.push(rec);
    }
}

#[cfg(test)]
mod probe {
    use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn probe_hook_and_memory() {
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).unwrap();
        println!("set_memory_limit: {:?}", lua.set_memory_limit(0));
        println!("used: {}", lua.used_memory());
        let n = Rc::new(Cell::new(0u64));
        let n2 = n.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(1000),
            move |_, _| {
                n2.set(n2.get() + 1);
                if n2.get() > 10_000 {
                    return Err(mlua::Error::runtime("instruction limit"));
                }
                Ok(VmState::Continue)
            },
        );
        let r = lua.load("local i = 0 while true do i = i + 1 end").exec();
        println!("loop: {:?} hooks={}", r, n.get());
        n.set(0);
        let r = lua.load("local i = 0 for j=1,1e12 do i = i + j end").exec();
        println!("for: {:?} hooks={}", r, n.get());
        n.set(0);
        lua.set_memory_limit(64_000_000).unwrap();
        let r = lua
            .load("local t={} while true do t[#t+1]=string.rep('x',1e6) end")
            .exec();
        println!("mem: {:?} used={} hooks={}", r, lua.used_memory(), n.get());
        lua.gc_collect().unwrap();
        println!("after gc used={}", lua.used_memory());
        n.set(0);
        let r: mlua::Result<i64> = lua.load("return 1+1").eval();
        println!("after: {:?}", r);
    }
}
