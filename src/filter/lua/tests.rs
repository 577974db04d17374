//! Tests of the `lua` filter through its public API, on a real LuaJIT VM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::options::tests::section;
use super::*;
use crate::record::Value;

const TS: Timestamp = Timestamp::new(1_732_379_400, 500_000_000);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn build(props: &[(&str, &str)]) -> Result<LuaFilter, Vec<ConfigError>> {
    LuaFilter::from_section(&section(props), &root(), "lua.1")
}

/// A filter running inline `code`, calling `f`.
fn inline(code: &str, extra: &[(&str, &str)]) -> LuaFilter {
    let mut props = vec![("code", code), ("call", "f")];
    props.extend_from_slice(extra);
    match build(&props) {
        Ok(f) => f,
        Err(e) => panic!("{}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn script(file: &str, call: &str) -> LuaFilter {
    let path = root().join(file);
    match build(&[("script", path.to_str().unwrap()), ("call", call)]) {
        Ok(f) => f,
        Err(e) => panic!("{}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn map(pairs: &[(&str, Value)]) -> Map {
    Map::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect())
}

fn rec(pairs: &[(&str, Value)]) -> Record {
    Record::new(Arc::from("kube.*"), TS, map(pairs))
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn apply(f: &mut LuaFilter, r: Record) -> (Vec<Record>, FilterCounters) {
    let counters = FilterCounters::default();
    let mut out = Vec::new();
    f.apply(r, &mut out, &counters);
    (out, counters)
}

fn keys(m: &Map) -> Vec<&str> {
    m.iter().map(|(k, _)| k).collect()
}

#[test]
fn filter_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<LuaFilter>();
}

#[test]
fn code_minus_one_drops() {
    let mut f = inline("function f(tag, ts, r) return -1, ts, r end", &[]);
    let (out, c) = apply(&mut f, rec(&[("a", s("x"))]));
    assert!(out.is_empty());
    assert_eq!((c.drop_records.get(), c.errors.get()), (1, 0));
}

#[test]
fn code_zero_keeps_the_original_even_if_the_table_changed() {
    let mut f = inline("function f(tag, ts, r) r.a = 'changed' return 0, ts + 5, r end", &[]);
    let original = rec(&[("a", s("x")), ("n", Value::Float(1.0))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!(out, vec![original]);
    assert_eq!(c.errors.get(), 0);
}

#[test]
fn code_one_replaces_record_and_time_code_two_keeps_time() {
    let mut f = inline("function f(tag, ts, r) r.tag = tag return 1, ts + 10, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[("a", s("x"))]));
    assert_eq!(out[0].time, Timestamp::new(1_732_379_410, 500_000_000));
    assert_eq!(out[0].fields, map(&[("a", s("x")), ("tag", s("kube.*"))]));

    let mut f = inline("function f(tag, ts, r) r.a = 'y' return 2, ts + 10, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[("a", s("x"))]));
    assert_eq!(out[0].time, TS);
    assert_eq!(out[0].fields, map(&[("a", s("y"))]));
}

#[test]
fn unexpected_code_keeps_original_and_counts() {
    let mut f = inline("function f(tag, ts, r) r.a = 'y' return 7, ts, r end", &[]);
    let original = rec(&[("a", s("x"))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!(out, vec![original.clone()]);
    assert_eq!(c.errors.get(), 1);
    assert_eq!(f.error_of(&original).unwrap(), "unexpected return code 7, original record kept");
}

#[test]
fn no_return_value_means_keep() {
    let mut f = inline("function f(tag, ts, r) end", &[]);
    let original = rec(&[("a", s("x"))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original], 0));
}

#[test]
fn split_emits_one_record_per_element_with_the_same_time() {
    let mut f = script("tests/fixtures/lua/split.lua", "split_items");
    let r = rec(&[
        ("vhost", s("a.example")),
        ("items", Value::Array(vec![s("x"), s("y"), s("z")])),
        ("status", Value::Int(200)),
    ]);
    let (out, c) = apply(&mut f, r);
    assert_eq!(out.len(), 3);
    assert_eq!(c.add_records.get(), 2);
    for (r, item) in out.iter().zip(["x", "y", "z"]) {
        assert_eq!(r.time, TS);
        assert_eq!(&*r.tag, "kube.*");
        assert_eq!(r.fields, map(&[("vhost", s("a.example")), ("status", Value::Int(200)), ("item", s(item))]));
    }
}

#[test]
fn invalid_returned_tables_keep_the_original() {
    for code in [
        "function f(tag, ts, r) return 1, ts, {} end",
        "function f(tag, ts, r) return 1, ts, {{a = 1}, 'x'} end",
        "function f(tag, ts, r) return 1, ts, {{a = 1}, {}} end",
        "function f(tag, ts, r) return 2, ts, 'text' end",
    ] {
        let mut f = inline(code, &[]);
        let original = rec(&[("a", s("x"))]);
        let (out, c) = apply(&mut f, original.clone());
        assert_eq!(out, vec![original], "{code}");
        assert_eq!(c.errors.get(), 1, "{code}");
    }
}

#[test]
fn timestamp_is_a_double_and_a_bad_returned_time_keeps_the_record_time() {
    let mut f = inline("function f(tag, ts, r) r.ts = ts return 1, nil, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[]));
    assert_eq!(out[0].fields, map(&[("ts", Value::Float(1_732_379_400.5))]));
    assert_eq!(out[0].time, TS);
}

#[test]
fn time_as_table_both_ways() {
    let code = "function f(tag, ts, r) r.sec = ts.sec r.nsec = ts.nsec return 1, {sec = ts.sec + 1, nsec = 250}, r end";
    let mut f = inline(code, &[("time_as_table", "on")]);
    let (out, _) = apply(&mut f, rec(&[]));
    assert_eq!(out[0].fields, map(&[("nsec", Value::Int(500_000_000)), ("sec", Value::Int(1_732_379_400))]));
    assert_eq!(out[0].time, Timestamp::new(1_732_379_401, 250));
    // A number is accepted back too.
    let mut f = inline("function f(tag, ts, r) return 1, 12.5, r end", &[("time_as_table", "on")]);
    let (out, _) = apply(&mut f, rec(&[("a", s("x"))]));
    assert_eq!(out[0].time, Timestamp::new(12, 500_000_000));
}

#[test]
fn numbers_integral_become_int_like_fluent_bit() {
    let mut f = inline("function f(tag, ts, r) r.tiny = 1e-20 r.big = 2^63 return 1, ts, r end", &[]);
    let (out, _) = apply(
        &mut f,
        rec(&[
            ("one", Value::Float(1.0)),
            ("half", Value::Float(1.5)),
            ("n", Value::Int(-42)),
            ("b", Value::Bool(true)),
        ]),
    );
    assert_eq!(
        out[0].fields,
        map(&[
            ("one", Value::Int(1)),
            ("half", Value::Float(1.5)),
            ("n", Value::Int(-42)),
            ("b", Value::Bool(true)),
            ("big", Value::Float(9_223_372_036_854_775_808.0)),
            ("tiny", Value::Float(1e-20)),
        ])
    );
}

#[test]
fn nested_maps_arrays_and_empty_tables() {
    let code = "function f(tag, ts, r) r.new = {z = 1, a = {}} r.list = {'p', 'q'} return 1, ts, r end";
    let mut f = inline(code, &[]);
    let inner = map(&[("y", Value::Int(2)), ("x", Value::Array(vec![Value::Int(1), s("two")]))]);
    let (out, _) = apply(&mut f, rec(&[("m", Value::Map(inner.clone())), ("e", Value::Array(vec![]))]));
    assert_eq!(
        out[0].fields,
        map(&[
            ("m", Value::Map(inner)),
            // An empty array comes back as an empty map, as in Fluent Bit.
            ("e", Value::Map(Map::new())),
            ("list", Value::Array(vec![s("p"), s("q")])),
            ("new", Value::Map(map(&[("a", Value::Map(Map::new())), ("z", Value::Int(1))]))),
        ])
    );
}

#[test]
fn type_int_key_and_type_array_key() {
    let code = "function f(tag, ts, r) r.status = 200.7 r.nested = {status = -3.9} return 1, ts, r end";
    let mut f = inline(code, &[("type_int_key", "status"), ("type_array_key", "tags empty")]);
    let (out, _) = apply(
        &mut f,
        rec(&[("tags", Value::Array(vec![s("a")])), ("empty", Value::Array(vec![])), ("other", Value::Float(2.5))]),
    );
    assert_eq!(
        out[0].fields,
        map(&[
            ("tags", Value::Array(vec![s("a")])),
            ("empty", Value::Array(vec![])),
            ("other", Value::Float(2.5)),
            ("nested", Value::Map(map(&[("status", Value::Int(-3))]))),
            ("status", Value::Int(200)),
        ])
    );
}

#[test]
fn null_disappears_unless_flb_null() {
    let code = "function f(tag, ts, r) r.seen = (r.x == nil) and 'nil' or (r.x == flb_null and 'flb_null' or 'other') return 1, ts, r end";
    let input = rec(&[("x", Value::Null), ("a", Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)]))]);

    let mut f = inline(code, &[]);
    let (out, _) = apply(&mut f, input.clone());
    // The array's hole comes back as null (it is still a sequence).
    assert_eq!(
        out[0].fields,
        map(&[("a", Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)])), ("seen", s("nil"))])
    );

    let mut f = inline(code, &[("enable_flb_null", "on")]);
    let (out, _) = apply(&mut f, input);
    assert_eq!(
        out[0].fields,
        map(&[
            ("x", Value::Null),
            ("a", Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)])),
            ("seen", s("flb_null")),
        ])
    );
}

#[test]
fn duplicate_keys_collapse_last_wins_at_first_position() {
    let mut f = inline("function f(tag, ts, r) r.seen = r.time return 1, ts, r end", &[]);
    let (out, _) = apply(
        &mut f,
        rec(&[("time", s("json")), ("vhost", s("v")), ("time", s("Nov 23 16:30:00")), ("ident", s("h"))]),
    );
    assert_eq!(
        out[0].fields,
        map(&[("time", s("Nov 23 16:30:00")), ("vhost", s("v")), ("ident", s("h")), ("seen", s("Nov 23 16:30:00"))])
    );
}

#[test]
fn original_key_order_kept_new_keys_sorted_removed_keys_gone() {
    let mut f = inline("function f(tag, ts, r) r.zz = 1 r.aa = 2 r.b = nil r.mm = 3 return 1, ts, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[("d", s("1")), ("b", s("2")), ("c", s("3")), ("a", s("4"))]));
    assert_eq!(keys(&out[0].fields), ["d", "c", "a", "aa", "mm", "zz"]);
}

#[test]
fn invalid_utf8_from_lua_is_replaced() {
    let mut f = inline("function f(tag, ts, r) r.x = 'a\\255b' return 1, ts, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[]));
    assert_eq!(out[0].fields, map(&[("x", s("a\u{fffd}b"))]));
}

#[test]
fn functions_are_dropped_and_cycles_are_an_error() {
    let mut f = inline("function f(tag, ts, r) r.fn = print return 1, ts, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[("a", s("x"))]));
    assert_eq!(out[0].fields, map(&[("a", s("x"))]));

    let mut f = inline("function f(tag, ts, r) r.self = r return 1, ts, r end", &[]);
    let original = rec(&[("a", s("x"))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original], 1));
}

#[test]
fn runtime_error_passes_the_record_and_names_the_line() {
    let mut f = inline("function f(tag, ts, r)\n  return 1, ts, r.missing.field\nend", &[]);
    let original = rec(&[("a", s("x"))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original.clone()], 1));
    let msg = f.error_of(&original).unwrap();
    assert!(msg.starts_with("lua.1.code:2: attempt to index field 'missing'"), "{msg}");
    // Unprotected mode: still passes, never aborts.
    let mut f = inline("function f(tag, ts, r) error('boom') end", &[("protected_mode", "off")]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original], 1));
}

#[test]
fn syntax_error_names_script_line_and_property() {
    let path = root().join("tests/fixtures/lua/syntax-error.lua");
    let errs = build(&[("script", path.to_str().unwrap()), ("call", "broken")]).err().unwrap();
    let text = errs[0].to_string();
    assert!(text.starts_with("gatelog.conf:3: lua script does not compile: "), "{text}");
    assert!(text.contains(&format!("{}:5:", path.display())), "{text}");
}

#[test]
fn relative_script_is_found_next_to_the_config() {
    let f = LuaFilter::from_section(
        &section(&[("script", "split.lua"), ("call", "split_items")]),
        &root().join("tests/fixtures/lua"),
        "lua.1",
    );
    assert!(f.is_ok());
}

#[test]
fn missing_call_function_is_an_error_listing_what_exists() {
    let errs = build(&[("code", "function g() end function h() end"), ("call", "f")]).err().unwrap();
    assert_eq!(
        errs[0].to_string(),
        "gatelog.conf:4: function 'f' is not found in the lua script (fix: functions the script defines: g, h)"
    );
    let errs = build(&[("code", "error('at load')"), ("call", "f")]).err().unwrap();
    assert!(errs[0].to_string().contains("lua script failed while loading: lua.1.code:1: at load"), "{}", errs[0]);
}

#[test]
fn runaway_loop_and_memory_bomb_recover() {
    let code = "function f(tag, ts, r)
        if r.mode == 'loop' then while true do end end
        if r.mode == 'bomb' then local t = {} while true do t[#t + 1] = string.rep('x', 1e6) .. #t end end
        if r.mode == 'same' then local t = {} while true do t[#t + 1] = string.rep('x', 1e6) end end
        r.ok = true
        return 1, ts, r
    end";
    let mut f = inline(code, &[("instruction_limit", "2000000"), ("memory_limit", "32M")]);
    for mode in ["loop", "bomb", "same", "loop"] {
        let original = rec(&[("mode", s(mode))]);
        let (out, c) = apply(&mut f, original.clone());
        assert_eq!((out, c.errors.get()), (vec![original], 1), "{mode}");
        let (out, c) = apply(&mut f, rec(&[("mode", s("fine"))]));
        assert_eq!(c.errors.get(), 0, "{mode}");
        assert_eq!(out[0].fields, map(&[("mode", s("fine")), ("ok", Value::Bool(true))]), "{mode}");
    }
    let msg = f.error_of(&rec(&[("mode", s("loop"))])).unwrap();
    assert!(msg.contains("instruction limit of 2000000 exceeded"), "{msg}");
    let msg = f.error_of(&rec(&[("mode", s("bomb"))])).unwrap();
    assert!(msg.contains("memory_limit reached"), "{msg}");
}

#[test]
fn xpcall_with_debug_traceback_works_and_jit_stays_off() {
    let code = "function f(tag, ts, r) jit.on() local ok, err = xpcall(function() error('x', 0) end, debug.traceback) r.err = err r.jit = jit.status() return 1, ts, r end";
    let mut f = inline(code, &[]);
    let (out, _) = apply(&mut f, rec(&[]));
    assert_eq!(out[0].fields, map(&[("err", s("x")), ("jit", Value::Bool(false))]));
}

/// gatelog compiles its own generated code (a shape's constructor and
/// checker) with LuaJIT's trace compiler, and nothing else: a compiled
/// script loop would escape the instruction limit.
#[test]
fn only_gatelog_code_is_compiled_and_scripts_stay_under_the_limit() {
    let code = "function f(tag, ts, r)
        if r.mode == 'loop' then while true do end end
        local n = 0 for i = 1, 300 do n = n + i end
        if jit.status() then r.compiler_on = true end
        if r.mode == 'extra' then r.added = n end
        return 2, ts, r
    end";
    let mut f = inline(code, &[("instruction_limit", "1000000")]);
    // Every trace started is recorded with the chunk it starts in (through
    // LuaJIT's own `jit.attach`: scripts get one that raises).
    let attach: mlua::Function = f.lua.named_registry_value(super::vm::JIT_ATTACH_KEY).unwrap();
    f.lua
        .load(r#"local attach = ... STARTED = {} attach(function(what, tr, func) if what == "start" then STARTED[#STARTED + 1] = require("jit.util").funcinfo(func).source end end, "trace")"#)
        .call::<()>(attach)
        .unwrap();
    let shapes: [&[&str]; 3] = [&["mode", "a"], &["mode", "a", "b"], &["b", "mode"]];
    for i in 0..900 {
        let keys = shapes[(i / 100) % 3];
        let mode = if i % 7 == 0 { "extra" } else { "plain" };
        let pairs: Vec<(&str, Value)> = keys
            .iter()
            .map(|&k| (k, if k == "mode" { s(mode) } else { Value::from(i.to_string().as_str()) }))
            .collect();
        let (out, c) = apply(&mut f, rec(&pairs));
        assert_eq!(c.errors.get(), 0, "record {i}");
        assert!(out[0].fields.get_first("compiler_on").is_none(), "script code ran with the compiler on (record {i})");
        assert_eq!(out[0].fields.get_first("added").is_some(), mode == "extra", "record {i}");
    }
    assert!(f.crossing.shapes.checked > 500, "the compiled checker vouched for {}", f.crossing.shapes.checked);
    let started: Vec<String> = f.lua.load("return STARTED").eval().unwrap();
    assert!(!started.is_empty(), "nothing compiled");
    assert!(started.iter().all(|s| s == "=gatelog shape"), "{started:?}");
    // An endless script loop is still interpreted, so the limit stops it (a
    // compiled one would never return: the test would hang, not fail).
    let original = rec(&[("mode", s("loop")), ("a", s("1"))]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original], 1));
}

#[test]
fn os_exit_does_not_stop_the_process() {
    let mut f = inline("function f(tag, ts, r) os.exit(1) end", &[]);
    let original = rec(&[]);
    let (out, c) = apply(&mut f, original.clone());
    assert_eq!((out, c.errors.get()), (vec![original], 1));
}

#[test]
fn globals_persist_between_calls() {
    let mut f = inline("count = 0 function f(tag, ts, r) count = count + 1 r.n = count return 1, ts, r end", &[]);
    for n in 1..=3 {
        let (out, _) = apply(&mut f, rec(&[]));
        assert_eq!(out[0].fields, map(&[("n", Value::Int(n))]));
    }
    let mut f = script("lua/create-log-file-path.lua", "create_log_file_path");
    apply(&mut f, rec(&[("vhost", s("v"))]));
    let global: Table = f.lua.globals().get("new_record").unwrap();
    assert_eq!(global.get::<String>("vhost").unwrap(), "v");
}

/// The sidecar record of reference §0.2 after the parser filter.
fn sidecar_record() -> Record {
    Record::new(
        Arc::from("kube.*"),
        Timestamp::new(1_732_379_400, 0),
        map(&[
            ("time", s("2024-11-23T16:30:00+09:00")),
            ("vhost", s("example.com")),
            ("method", s("GET")),
            ("uri", s("/a")),
            ("status", s("200")),
            ("pri", s("190")),
            ("time", s("Nov 23 16:30:00")),
            ("ident", s("istio-ingressgateway-7d9f-abcde")),
            ("message", s("{...}")),
        ]),
    )
}

/// Run by `sidecar_script_follows_tz` in a child process whose TZ is set
/// before any VM exists (localtime caches the zone per process).
#[test]
#[ignore = "run by sidecar_script_follows_tz in a child process"]
fn sidecar_script_child() {
    let Ok(expected) = std::env::var("GATELOG_LUA_TZ_EXPECT") else { return };
    let mut f = script("lua/create-log-file-path.lua", "create_log_file_path");
    let (out, _) = apply(&mut f, sidecar_record());
    assert_eq!(
        out[0].fields,
        map(&[
            ("time", s("Nov 23 16:30:00")),
            ("vhost", s("example.com")),
            ("method", s("GET")),
            ("uri", s("/a")),
            ("status", s("200")),
            ("pri", s("190")),
            ("ident", s("istio-ingressgateway-7d9f-abcde")),
            ("message", s("{...}")),
            ("log_file_path", Value::from(format!("{expected}/istio-ingressgateway-access.log"))),
        ])
    );
    assert_eq!(out[0].time, Timestamp::new(1_732_379_400, 0));
    println!("SIDECAR_CHILD_OK {expected}");
}

#[test]
fn sidecar_script_follows_tz() {
    let exe = std::env::current_exe().unwrap();
    let mut zones = vec![("UTC", "2024-1123"), ("JST-9", "2024-1124")];
    if Path::new("/usr/share/zoneinfo/Asia/Tokyo").exists() {
        zones.push(("Asia/Tokyo", "2024-1124"));
    }
    for (tz, expected) in zones {
        let out = std::process::Command::new(&exe)
            .args(["filter::lua::tests::sidecar_script_child", "--exact", "--ignored", "--nocapture"])
            .env("TZ", tz)
            .env("GATELOG_LUA_TZ_EXPECT", expected)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("SIDECAR_CHILD_OK {expected}")),
            "TZ={tz}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn shipped_drop_health_checks() {
    let mut f = script("lua/drop-health-checks.lua", "drop_health_checks");
    for uri in ["/healthz", "/health", "/ready", "/livez", "/healthz?verbose=1", "/readyz/"] {
        let (out, c) = apply(&mut f, rec(&[("uri", s(uri))]));
        assert!(out.is_empty() && c.drop_records.get() == 1, "{uri}");
    }
    let (out, _) = apply(&mut f, rec(&[("uri", s("/")), ("user_agent", s("kube-probe/1.29"))]));
    assert!(out.is_empty());
    let kept = rec(&[("uri", s("/healthzone")), ("user_agent", s("curl/8")), ("status", Value::Int(200))]);
    let (out, _) = apply(&mut f, kept.clone());
    assert_eq!(out, vec![kept]);
}

#[test]
fn shipped_mask_query_tokens() {
    let mut f = script("lua/mask-query-tokens.lua", "mask_query_tokens");
    let (out, _) = apply(
        &mut f,
        rec(&[
            ("uri", s("/cb?code=abc&state=x&Access_Token=t0k#frag")),
            ("referer", s("https://a.example/?password=hunter2")),
            ("status", Value::Int(302)),
        ]),
    );
    assert_eq!(
        out[0].fields,
        map(&[
            ("uri", s("/cb?code=***&state=x&Access_Token=***#frag")),
            ("referer", s("https://a.example/?password=***")),
            ("status", Value::Int(302)),
        ])
    );
    let clean = rec(&[("uri", s("/search?q=token")), ("request_time", Value::Float(0.25))]);
    let (out, _) = apply(&mut f, clean.clone());
    assert_eq!(out, vec![clean]);
}

#[test]
fn shipped_add_field() {
    let cluster = std::env::var("CLUSTER_NAME").unwrap_or_else(|_| "unknown".into());
    let mut f = script("lua/add-field.lua", "add_field");
    let (out, _) = apply(&mut f, rec(&[("vhost", s("v"))]));
    assert_eq!(out[0].fields, map(&[("vhost", s("v")), ("cluster", Value::from(cluster))]));
    let (out, _) = apply(&mut f, rec(&[("cluster", s("mine"))]));
    assert_eq!(out[0].fields, map(&[("cluster", s("mine"))]));
}

#[test]
fn gc_pause_is_raised_for_a_small_heap_unless_the_script_set_one() {
    let read_pause = "local p = collectgarbage('setpause', 0) collectgarbage('setpause', p) r.pause = p";
    let mut f = inline(&format!("function f(tag, ts, r) {read_pause} return 1, ts, r end"), &[]);
    let (out, _) = apply(&mut f, rec(&[]));
    assert_eq!(out[0].fields, map(&[("pause", Value::Int(i64::from(crossing::MAX_PAUSE)))]));
    // A script holding a large table gets less, down to the default.
    let code = format!(
        "big = {{}} function f(tag, ts, r) if #big == 0 then for i = 1, 3e5 do big[i] = i end end {read_pause} return 1, ts, r end"
    );
    let mut f = inline(&code, &[]);
    let mut pauses = Vec::new();
    for _ in 0..600 {
        let (out, _) = apply(&mut f, rec(&[]));
        pauses.push(out[0].fields.get_first("pause").cloned());
    }
    let last = pauses.last().cloned().flatten();
    assert!(matches!(last, Some(Value::Int(p)) if (200..1000).contains(&p)), "{last:?}");

    let code = format!("collectgarbage('setpause', 150) function f(tag, ts, r) {read_pause} return 1, ts, r end");
    let mut f = inline(&code, &[]);
    for _ in 0..300 {
        let (out, _) = apply(&mut f, rec(&[]));
        assert_eq!(out[0].fields, map(&[("pause", Value::Int(150))]));
    }
}

#[test]
fn unchanged_strings_are_moved_not_copied() {
    let mut f = inline("function f(tag, ts, r) r.n = 2.5 r.added = 'x' return 1, ts, r end", &[]);
    // Longer than a Text keeps inline, so they live on the heap.
    let (uri, syslog) = ("/api/v1/catalog/items/4711?lang=ja", "Nov 23 16:30:00 from the syslog header");
    let original = rec(&[("time", s("json")), ("uri", s(uri)), ("time", s(syslog)), ("n", Value::Int(1))]);
    let uri_ptr = original.fields.get_first("uri").and_then(Value::as_str).unwrap().as_ptr();
    let syslog_ptr = original.fields.get_last("time").and_then(Value::as_str).unwrap().as_ptr();
    // Twice: the second run takes the remembered-value path.
    for _ in 0..2 {
        let (out, _) = apply(&mut f, original.clone());
        assert_eq!(
            out[0].fields,
            map(&[("time", s(syslog)), ("uri", s(uri)), ("n", Value::Float(2.5)), ("added", s("x"))])
        );
    }
    let (out, _) = apply(&mut f, original);
    // The same heap buffers: moved, not copied.
    assert_eq!(out[0].fields.get_first("uri").and_then(Value::as_str).unwrap().as_ptr(), uri_ptr);
    assert_eq!(out[0].fields.get_first("time").and_then(Value::as_str).unwrap().as_ptr(), syslog_ptr);
}

#[test]
fn repeated_and_changing_values_across_records() {
    // Values remembered per key must never leak into the next record.
    let mut f = inline("function f(tag, ts, r) r.seen = r.v return 1, ts, r end", &[]);
    let long = "y".repeat(keys::VALUE_CACHE_MAX_LEN + 1);
    for v in ["a", "a", "", "", "b", long.as_str(), long.as_str(), "a", ""] {
        let (out, _) = apply(&mut f, rec(&[("v", s(v)), ("k", s("same"))]));
        assert_eq!(out[0].fields, map(&[("v", s(v)), ("k", s("same")), ("seen", s(v))]), "{v:?}");
    }
    // Keys in another order, a key turning into a number, a nested map.
    let (out, _) = apply(&mut f, rec(&[("k", s("same")), ("v", Value::Int(3))]));
    assert_eq!(out[0].fields, map(&[("k", s("same")), ("v", Value::Int(3)), ("seen", Value::Int(3))]));
    let nested = Value::Map(map(&[("v", s("a"))]));
    let (out, _) = apply(&mut f, rec(&[("v", nested.clone())]));
    assert_eq!(out[0].fields, map(&[("v", nested.clone()), ("seen", nested)]));
}

#[test]
fn long_keys_and_a_full_key_cache_still_order_and_dedupe() {
    let long = "k".repeat(keys::KEY_CACHE_MAX_LEN + 10);
    let mut f = inline("function f(tag, ts, r) r.z = 1 return 1, ts, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[(long.as_str(), s("1")), ("a", s("2")), (long.as_str(), s("3"))]));
    assert_eq!(out[0].fields, map(&[(long.as_str(), s("3")), ("a", s("2")), ("z", Value::Int(1))]));
    // Fill the cache with distinct keys, then check a record still works.
    for i in 0..keys::KEY_CACHE_MAX + 5 {
        let k = format!("key{i}");
        let (out, _) = apply(&mut f, rec(&[(k.as_str(), s("v"))]));
        assert_eq!(out[0].fields, map(&[(k.as_str(), s("v")), ("z", Value::Int(1))]));
    }
    let (out, _) = apply(&mut f, rec(&[("fresh", s("1")), ("a", s("2")), ("fresh", s("3"))]));
    assert_eq!(out[0].fields, map(&[("fresh", s("3")), ("a", s("2")), ("z", Value::Int(1))]));
}

#[test]
fn error_values_that_are_not_strings() {
    let mut f = inline("function f(tag, ts, r) error({}) end", &[]);
    assert_eq!(f.error_of(&rec(&[])).unwrap(), "(error object is a table value)");
    let mut f = inline("function f(tag, ts, r) error(42) end", &[]);
    // error() prefixes the position to a number as to a string.
    assert_eq!(f.error_of(&rec(&[])).unwrap(), "lua.1.code:1: 42");
    let mut f = inline("function f(tag, ts, r) os.exit(1) end", &[]);
    assert_eq!(
        f.error_of(&rec(&[])).unwrap(),
        "lua.1.code:1: os.exit is disabled in gatelog (a filter must not stop the pipeline)"
    );
}

#[test]
fn return_code_and_time_forms() {
    for (code, expect_time) in [
        ("return '1', '12.5', r", Timestamp::new(12, 500_000_000)),
        ("return 1.9, {sec = '7'}, r", Timestamp::new(7, 0)),
        ("return 1, {sec = 7, nsec = 2e9}, r", TS),
        ("return 1, true, r", TS),
        ("return 2, 99, r", TS),
    ] {
        let mut f = inline(&format!("function f(tag, ts, r) r.a = 'y' {code} end"), &[]);
        let (out, c) = apply(&mut f, rec(&[("a", s("x"))]));
        assert_eq!(c.errors.get(), 0, "{code}");
        assert_eq!((out[0].time, &out[0].fields), (expect_time, &map(&[("a", s("y"))])), "{code}");
    }
    // A non-numeric string code is 0: keep.
    let mut f = inline("function f(tag, ts, r) r.a = 'y' return 'x', ts, r end", &[]);
    let (out, _) = apply(&mut f, rec(&[("a", s("x"))]));
    assert_eq!(out[0].fields, map(&[("a", s("x"))]));
}

/// Scripts for the differential test below: each touches the record in a
/// way the shaped crossing must either read exactly or hand to the walk.
const SHAPE_SCRIPTS: &[&str] = &[
    // The sidecar's kind: one key added.
    "r.log_file_path = 'p/' .. tostring(r.a) return 1, ts, r",
    "r.b = 500 return 1, ts, r",
    "r.a = nil return 2, ts, r",
    "r.time = nil r.n = nil return 1, ts, r",
    "return 1, ts, {a = r.a, x = 1}",
    "r.nested = {x = 1} return 1, ts, r",
    "r.a = {1, 2} return 1, ts, r",
    // An `__index` that must never run outside the script.
    "setmetatable(r, {__index = function(t, k) error('index ' .. k) end}) r.new = 1 return 1, ts, r",
    "r.fn = print r.b = print return 1, ts, r",
    "r['k' .. math.random(12)] = 1 return 1, ts, r",
    "r.a = '' .. tostring(r.a) r.b = r.b return 1, ts, r",
    "if r.a == 'x' then return -1, ts, r end if r.a == 'y' then return 0, ts, r end r.z = true return 1, ts, r",
    "r.n = r.n and r.n + 0 r.f = 1.5 r.time = r.time return 1, ts, r",
    "for i = 1, 10 do r['x' .. i] = i end return 1, ts, r",
    "if r.a == 'boom' then error('boom') end r.z = 1 return 1, ts, r",
    "return 1, ts, {r, {a = 1}}",
    "r.b = flb_null r.c = nil return 1, ts, r",
    "r.n = 2.7 r.k1 = r.a return 1, ts, r",
    "r[1] = 'x' return 1, ts, r",
    "r.a, r.b = r.b, r.a return 1, ts, r",
    "local t = {} for k, v in pairs(r) do t[k] = v end t.copy = 1 return 1, ts, t",
    "r.extra1 = 1 if r.b == 'y' then r.extra2 = 2 end return 1, ts, r",
];

/// A record of one of a few shapes (a duplicated key, a wide one, one with a
/// nested value that no shape takes), values from a small pool so that
/// remembered strings and compiled shapes are both exercised.
fn shape_record(next: &mut impl FnMut() -> u64, shape: u64) -> Record {
    let keys: Vec<String> = match shape {
        0 => ["a", "b", "time", "n", "f", "time"].map(String::from).to_vec(),
        1 => ["a", "b", "c"].map(String::from).to_vec(),
        2 => (0..30).map(|i| format!("k{i}")).chain(["a".to_owned()]).collect(),
        _ => ["a", "nested", "b"].map(String::from).to_vec(),
    };
    let pairs = keys
        .iter()
        .map(|k| {
            let v = match (k.as_str(), next() % 12) {
                ("nested", _) => Value::Map(map(&[("x", s("1"))])),
                (_, 0) => Value::Int(0),
                (_, 1) => Value::Int(1 << 60),
                (_, 2) => Value::Float(2.5),
                (_, 3) => Value::Float(1.0),
                (_, 4) => Value::Bool(true),
                (_, 5) => Value::Null,
                (_, 6) => s(""),
                (_, 7) => s("é"),
                (_, 8) => s(["x", "y", "boom"][(next() % 3) as usize]),
                (_, n) => s(&format!("v{}", n + next() % 3)),
            };
            (k.as_str().into(), v)
        })
        .collect();
    Record::new(Arc::from("kube.*"), TS, Map::from_pairs(pairs))
}

#[test]
fn shaped_and_general_crossings_agree() {
    let mut fast_paths = 0;
    for (n, body) in SHAPE_SCRIPTS.iter().enumerate() {
        let code = format!("function f(tag, ts, r) {body} end");
        for extra in [&[][..], &[("enable_flb_null", "on"), ("type_int_key", "n k1")][..]] {
            let mut shaped = inline(&code, extra);
            let mut general = inline(&code, extra);
            general.crossing.shapes.disable();
            let mut next = crate::testing::xorshift(0x9e37_79b9 + n as u64);
            let mut shape = 0;
            for i in 0..400 {
                if next() % 6 == 0 {
                    shape = next() % 4;
                }
                let r = shape_record(&mut next, shape);
                let (a, ca) = apply(&mut shaped, r.clone());
                let (b, cb) = apply(&mut general, r.clone());
                let counts = |c: &FilterCounters| (c.errors.get(), c.drop_records.get(), c.add_records.get());
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "script {body:?} {extra:?}, record {i}: {r:?}");
                assert_eq!(counts(&ca), counts(&cb), "script {body:?}, record {i}");
            }
            fast_paths += shaped.crossing.shapes.checked;
            assert_eq!(general.crossing.shapes.checked, 0);
        }
    }
    assert!(fast_paths > 1000, "the checker vouched for {fast_paths} records only");
}

#[test]
fn sidecar_shape_takes_the_checker_after_two_records() {
    let mut f = script("lua/create-log-file-path.lua", "create_log_file_path");
    // The checker's way (the direct run would take records 3 to 5).
    f.native = None;
    let mut outs = Vec::new();
    for _ in 0..5 {
        let (out, c) = apply(&mut f, sidecar_record());
        assert_eq!(c.errors.get(), 0);
        outs.push(out);
    }
    // 1: general push; 2: same shape again, compiled after; 3: the checker
    // meets the added key and the walk learns it; 4, 5: the checker vouches.
    assert_eq!(f.crossing.shapes.checked, 2);
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    assert!(outs[4][0].fields.get_last("log_file_path").is_some());
}

#[test]
fn instruction_limit_holds_for_shaped_records_around_the_unhooked_checker() {
    let code = "function f(tag, ts, r) if r.a == 'loop' then while true do end end r.z = 1 return 1, ts, r end";
    let mut f = inline(code, &[("instruction_limit", "100000")]);
    for round in 0..3 {
        for _ in 0..5 {
            let (out, c) = apply(&mut f, rec(&[("a", s("x")), ("b", s("y"))]));
            assert_eq!((c.errors.get(), out[0].fields.len()), (0, 3));
        }
        let looping = rec(&[("a", s("loop")), ("b", s("y"))]);
        let message = f.error_of(&looping).unwrap();
        assert!(message.contains("instruction limit of 100000 exceeded"), "round {round}: {message}");
    }
    assert!(f.crossing.shapes.checked >= 9, "{}", f.crossing.shapes.checked);
}

#[test]
fn ffi_is_out_of_reach() {
    // LuaJIT with its FFI loads it for an int64 literal; built without, the
    // literal is a syntax error and `require` finds nothing.
    let Err(errors) = build(&[("code", "local x = 1LL function f(tag, ts, r) return 0, ts, r end"), ("call", "f")])
    else {
        panic!("an int64 literal compiled");
    };
    assert!(errors[0].to_string().contains("malformed number"), "{}", errors[0]);
    let code = "function f(tag, ts, r)
        local chunk = load('return 1LL')
        r.required = tostring((pcall(require, 'ffi')))
        r.literal = tostring(chunk)
        r.loaded = tostring(package.loaded.ffi)
        return 1, ts, r
    end";
    let mut f = inline(code, &[]);
    let (out, c) = apply(&mut f, rec(&[]));
    assert_eq!(c.errors.get(), 0);
    assert_eq!(out[0].fields, map(&[("literal", s("nil")), ("loaded", s("nil")), ("required", s("false"))]));
}

#[test]
fn retired_and_refused_shapes_are_not_compiled_again() {
    // A script that always returns a new table: the checker never runs, so
    // the shape retires; it must not be compiled over and over.
    let mut f =
        inline("function f(tag, ts, r) local t = {} for k, v in pairs(r) do t[k] = v end return 1, ts, t end", &[]);
    for _ in 0..200 {
        let (_, c) = apply(&mut f, rec(&[("a", s("x")), ("b", s("y"))]));
        assert_eq!(c.errors.get(), 0);
    }
    assert_eq!(f.crossing.shapes.compiles(), 1);
    // 60 distinct keys: more than a shape takes; tried once.
    let wide: Vec<(String, Value)> = (0..60).map(|i| (format!("k{i}"), s("v"))).collect();
    let wide: Vec<(&str, Value)> = wide.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut f = inline("function f(tag, ts, r) r.z = 1 return 1, ts, r end", &[]);
    for _ in 0..20 {
        let (out, _) = apply(&mut f, rec(&wide));
        assert_eq!(out[0].fields.len(), 61);
    }
    assert_eq!(f.crossing.shapes.compiles(), 0);
}

/// Scripts for the direct-run differential test: whole chunks calling `f`.
/// Most are straight-line (run by `native.rs`), with records and returns
/// that make it give up; the last ones keep it off for the whole VM.
const DIRECT_SCRIPTS: &[(&str, bool)] = &[
    (
        "function f(tag, ts, r) new_record = r new_record['log_file_path'] = os.date('%Y-%m%d', ts) .. '/x.log' return 1, ts, new_record end",
        true,
    ),
    ("function f(tag, ts, r) r.t = tag r.d = os.date('%H:%M:%S', ts) return 2, ts, r end", true),
    ("function f(tag, ts, r) r.a = r.b r.b = nil return 1, ts, r end", true),
    ("function f(tag, ts, r) local x = r.a r.copy = x r.n = 7 r.f = 2.5 r.yes = true return 1, 1700000000.25, r end", true),
    ("function f(tag, ts, r) r.a = 'changed' return 0, ts, r end", true),
    ("function f(tag, ts, r) return -1, ts, r end", true),
    ("prefix = 'p-' function f(tag, ts, r) r.s = prefix .. r.a return 1, ts, r end", true),
    ("function f(tag, ts, r) r.z = 1 return 1, '1700000001.5', r end", true),
    ("function f(tag, ts, r) r.z = 1 return '1', ts, r end", true),
    ("function f(tag, ts, r) r.z = 1 return 3, ts, r end", false),
    ("function f(tag, ts, r) r.d = os.date('%Y', ts, 1) return 1, ts, r end", false),
    ("function f(tag, ts, r) r.d = os.date('*t', ts) return 1, ts, r end", false),
    ("function f(tag, ts, r) r.x = r.nested return 1, ts, r end", true),
    ("function f(tag, ts, r) g = r.a r.g = g return 1, ts, r end", true),
    ("function f(tag, ts, r) r.a = nil r.b = nil r.c = nil return 1, ts, r end", true),
    ("function f(tag, ts, r) r.e = '\\255x' r.k = tag .. '/' .. os.date('%Y', ts) return 1, ts, r end", true),
    ("function f(tag, ts, r) r.n = r.n r.f = r.f return 1, ts, r end", true),
    // No record returned, a table for the time: the VM reports or reads those.
    ("function f(tag, ts, r) r.t = ts return 1, ts end", false),
    ("function f(tag, ts, r) r.t = ts return 1, r, r end", false),
    ("function f(tag, ts, r) return end", true),
    // A finalizer could see the globals the direct run does not write.
    (
        "local p = newproxy(true) function f(tag, ts, r) new_record = r new_record.x = os.date('%Y', ts) return 1, ts, new_record end",
        false,
    ),
    // Not gatelog's `os.date`, not a plain global.
    ("os.date = function() return 'fake' end function f(tag, ts, r) r.d = os.date('%Y', ts) return 1, ts, r end", false),
    ("function f(tag, ts, r) r.p = print return 1, ts, r end", false),
    // Numbers too small for mlua's integer guess stay what they are.
    ("eps = 1e-20 function f(tag, ts, r) r.x = 1e-20 r.y = eps r.z = -2.5e-300 return 1, ts, r end", true),
    // A `date` that is not gatelog's `os.date` runs the script's code.
    ("util = {date = function() return cur.a end} function f(tag, ts, r) cur = r r.x = util.date('%Y', ts) return 1, ts, r end", false),
    // A `jit.attach` handler would run script code whenever gatelog
    // compiles Lua: it raises, the same for both ways.
    ("sep = '-' pcall(jit.attach, function() sep = sep .. '+' end, 'bc') function f(tag, ts, r) r.k = tag .. sep return 1, ts, r end", true),

    ("function f(tag, ts, r) r.s = string return 1, ts, r end", false),
    ("setmetatable(os, {__concat = function() return 'c' end}) function f(tag, ts, r) r.s = os .. 'x' return 1, ts, r end", false),
    ("setmetatable(_G, {}) function f(tag, ts, r) r.z = 1 return 1, ts, r end", false),
];

/// A straight-line function that doubles 16 bytes `n` times.
fn doubled(n: usize) -> String {
    format!(
        "function f(tag, ts, r) local s = 'abcdefghijklmnop' {} r.x = s return 1, ts, r end",
        "s = s .. s ".repeat(n)
    )
}

/// Run `code` with and without the direct run over `records` records of
/// `shapes` shapes, `step` seconds apart: the same records and counters
/// both ways. Returns how many ran directly.
fn both_ways(
    code: &str,
    extra: &[(&str, &str)],
    next: &mut impl FnMut() -> u64,
    records: u32,
    shapes: u64,
    step: f64,
) -> u64 {
    let mut fast = inline(code, extra);
    let mut vm = inline(code, extra);
    vm.native = None;
    let mut shape = next() % shapes;
    for i in 0..records {
        if next() % 8 == 0 {
            shape = next() % shapes;
        }
        let mut r = shape_record(next, shape);
        r.time = Timestamp::from_f64(TS.as_f64() + f64::from(i) * step);
        let (a, ca) = apply(&mut fast, r.clone());
        let (b, cb) = apply(&mut vm, r.clone());
        let counts = |c: &FilterCounters| (c.errors.get(), c.drop_records.get(), c.add_records.get());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{code:?} {extra:?}, record {i}: {r:?}");
        assert_eq!(counts(&ca), counts(&cb), "{code:?} {extra:?}, record {i}");
    }
    fast.native.as_ref().map_or(0, |d| d.runs)
}

#[test]
fn direct_runs_and_the_vm_agree() {
    // `..` doubling a string: up to 64 KiB directly, 1 MiB in the VM.
    let doubling = [(doubled(12), true), (doubled(16), false)];
    let scripts = DIRECT_SCRIPTS.iter().map(|&(c, d)| (c.to_owned(), d)).chain(doubling);
    for (n, (code, direct)) in scripts.enumerate() {
        let code = code.as_str();
        for extra in [&[][..], &[("enable_flb_null", "on"), ("type_int_key", "n z")][..]] {
            // Records 0.3 s apart: `os.date` answers change every few.
            let mut next = crate::testing::xorshift(0x51f1_5eed + n as u64);
            let runs = both_ways(code, extra, &mut next, 300, 4, 0.3);
            if direct {
                assert!(runs > 50, "{code:?} {extra:?}: {runs} records run directly");
            } else {
                assert_eq!(runs, 0, "{code:?} {extra:?}");
            }
        }
    }
}

#[test]
fn the_sidecar_script_runs_directly_after_its_shape_is_known() {
    let mut fast = script("lua/create-log-file-path.lua", "create_log_file_path");
    let mut vm = script("lua/create-log-file-path.lua", "create_log_file_path");
    vm.native = None;
    for i in 0..50 {
        let mut r = sidecar_record();
        r.time = Timestamp::from_f64(TS.as_f64() + f64::from(i) * 7200.0);
        assert_eq!(apply(&mut fast, r.clone()).0, apply(&mut vm, r).0, "record {i}");
    }
    // Records 1 and 2 cross into the VM, which compiles their shape.
    assert_eq!(fast.native.as_ref().map(|d| d.runs), Some(48));
    assert_eq!(fast.crossing.shapes.checked, 0);
}

/// A random straight-line function: field sets from constants, fields,
/// locals, globals written before, `..` and `os.date`, then a return.
fn random_function(next: &mut impl FnMut() -> u64) -> String {
    const KEYS: [&str; 8] = ["a", "b", "c", "n", "f", "time", "new1", "new2"];
    let mut locals = 0;
    let mut global = false;
    let mut body = String::new();
    fn expr(next: &mut impl FnMut() -> u64, locals: usize, global: bool, depth: u32) -> String {
        match next() % if depth > 1 { 8 } else { 10 } {
            0 => format!("'c{}'", next() % 3),
            1 => format!("{}", next() % 5),
            2 => format!("r.{}", KEYS[(next() % 8) as usize]),
            3 => "tag".into(),
            4 => "ts".into(),
            5 => ["os.date('%Y-%m-%d %H:%M:%S', ts)", "os.date('%H', ts)", "os.date('*t', ts)", "os.date('%Y', r.n)"]
                [(next() % 4) as usize]
                .into(),
            6 if locals > 0 => format!("l{}", next() as usize % locals),
            6 | 7 => ["nil", "true", "false"][(next() % 3) as usize].into(),
            8 if global => "g.x".into(),
            _ => format!("{} .. {}", expr(next, locals, global, depth + 1), expr(next, locals, global, depth + 1)),
        }
    }
    for _ in 0..1 + next() % 5 {
        match next() % 4 {
            0 => {
                body += &format!("local l{locals} = {} ", expr(next, locals, global, 0));
                locals += 1;
            }
            1 if !global => {
                body += "g = r ";
                global = true;
            }
            _ => body += &format!("r.{} = {} ", KEYS[(next() % 8) as usize], expr(next, locals, global, 0)),
        }
    }
    let code = ["1", "2", "0", "-1", "'1'", "3"][(next() % 6) as usize];
    let time = ["ts", "1700000000.25", "'17'", "r"][(next() % 4) as usize];
    let record = if global && next() % 2 == 0 { "g" } else { "r" };
    format!("function f(tag, ts, r) {body}return {code}, {time}, {record} end")
}

#[test]
fn random_straight_line_functions_run_directly_as_in_the_vm() {
    let mut next = crate::testing::xorshift(0x00d1_7ec7);
    let mut direct = 0;
    for _ in 0..150 {
        let code = random_function(&mut next);
        direct += both_ways(&code, &[], &mut next, 40, 3, 0.7);
    }
    assert!(direct > 1000, "{direct} records run directly");
}

#[test]
fn a_record_that_could_reach_the_memory_limit_goes_to_the_vm() {
    let code = "function f(tag, ts, r) r.t = tag .. '!' return 1, ts, r end";
    let mut f = inline(code, &[("memory_limit", "16M")]);
    let small = || rec(&[("a", s("x")), ("b", s("y"))]);
    for _ in 0..4 {
        apply(&mut f, small());
    }
    let runs = |f: &LuaFilter| f.native.as_ref().map_or(0, |d| d.runs);
    let before = runs(&f);
    assert!(before > 0);
    // Over an eighth of the limit: its table and strings in the VM could
    // reach it, so the VM decides.
    let big = rec(&[("a", s(&"x".repeat(2 << 20))), ("b", s("y"))]);
    let (out, _) = apply(&mut f, big.clone());
    assert_eq!(runs(&f), before);
    assert_eq!(out.len(), 1);
    apply(&mut f, small());
    assert_eq!(runs(&f), before + 1);
}

#[test]
fn jit_attach_is_refused_at_load() {
    let e = build(&[("code", "jit.attach(function() end, 'bc') function f(t, ts, r) return 0 end"), ("call", "f")])
        .err()
        .expect("refused");
    assert!(e[0].to_string().contains("jit.attach is disabled in gatelog"), "{}", e[0]);
}
