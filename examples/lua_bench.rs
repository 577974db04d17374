//! Cost of the `lua` filter per record, in CPU microseconds (user + sys of
//! this process, from `getrusage`), over 200k sidecar-shaped records: the 16
//! fields of the nginx JSON access log followed by the syslog fields
//! `pri time ident message` (20 pairs, `time` twice, as after the `parser`
//! filter with `Reserve_Data`).
//!
//! Run: `cargo run --release --example lua_bench`
//!
//! - `keep`: the record goes into Lua, the script returns 0 (conversion in only);
//! - `identity`: returns 1 with the same table (conversion in and out);
//! - `sidecar`: the user's `create-log-file-path.lua` (adds `log_file_path`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatelog::config::{Location, Property, Section};
use gatelog::filter::lua::LuaFilter;
use gatelog::record::{Map, Record, Timestamp, Value};
use gatelog::stats::FilterCounters;

const RECORDS: usize = 200_000;

fn section(props: &[(&str, &str)]) -> Section {
    let loc = Location { file: Arc::new(PathBuf::from("bench.conf")), line: 1 };
    let mut all = vec![Property { key: "Name".into(), value: "lua".into(), loc: loc.clone() }];
    for (k, v) in props {
        all.push(Property { key: (*k).into(), value: (*v).into(), loc: loc.clone() });
    }
    Section { name: "FILTER".into(), loc, props: all }
}

fn record(i: usize) -> Record {
    let mut m = Map::with_capacity(20);
    let s = |v: &str| Value::Str(v.to_owned());
    m.push("time", s("2024-11-23T16:30:00+09:00"));
    m.push("remote_addr", Value::Str(format!("10.0.{}.{}", i % 250, i % 200)));
    m.push("x_forwarded_for", s("203.0.113.7, 10.0.0.1"));
    m.push("vhost", s("example.com"));
    m.push("method", s("GET"));
    m.push("uri", Value::Str(format!("/api/v1/items/{i}?page=2&sort=desc")));
    m.push("protocol", s("HTTP/1.1"));
    m.push("status", Value::Int(200));
    m.push("body_bytes_sent", Value::Int(5120 + (i % 100) as i64));
    m.push("referer", s("https://example.com/items"));
    m.push(
        "user_agent",
        s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    );
    m.push("request_time", Value::Float(0.012));
    m.push("upstream_addr", s("10.1.2.3:8080"));
    m.push("upstream_status", s("200"));
    m.push("upstream_response_time", s("0.011"));
    m.push("request_id", Value::Str(format!("{i:032x}")));
    m.push("pri", s("190"));
    m.push("time", s("Nov 23 16:30:00"));
    m.push("ident", s("istio-ingressgateway-7d9f-abcde"));
    m.push("message", Value::Str(format!("{{\"time\":\"2024-11-23T16:30:00+09:00\",\"vhost\":\"example.com\",\"method\":\"GET\",\"uri\":\"/api/v1/items/{i}\",\"status\":200,\"user_agent\":\"Mozilla/5.0\"}}")));
    Record::new(Arc::from("kube.*"), Timestamp::new(1_732_379_400 + i as i64, 0), m)
}

fn cpu_micros() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn bench(name: &str, mut filter: LuaFilter, records: &[Record]) {
    let counters = FilterCounters::default();
    let mut out = Vec::with_capacity(4);
    let mut fields = 0usize;
    // Warm up (key cache, tag string).
    for r in records.iter().take(1000) {
        filter.apply(r.clone(), &mut out, &counters);
        out.clear();
    }
    let clone_start = cpu_micros();
    for r in records {
        std::hint::black_box(r.clone());
    }
    let clone_cost = cpu_micros() - clone_start;
    let start = cpu_micros();
    for r in records {
        filter.apply(r.clone(), &mut out, &counters);
        fields += out.iter().map(|r| r.fields.len()).sum::<usize>();
        out.clear();
    }
    let spent = cpu_micros() - start - clone_cost;
    println!(
        "{name:<9} {:>7.3} us/record  ({} records, {} fields out, errors {})",
        spent / records.len() as f64,
        records.len(),
        fields / records.len(),
        counters.errors.get()
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records: Vec<Record> = (0..RECORDS).map(record).collect();
    let inline = |code: &str| {
        LuaFilter::from_section(&section(&[("code", code), ("call", "f")]), root, "lua.bench")
            .unwrap_or_else(|e| panic!("{e:?}"))
    };
    bench("keep", inline("function f(tag, ts, r) return 0, ts, r end"), &records);
    bench("identity", inline("function f(tag, ts, r) return 1, ts, r end"), &records);
    let sidecar = LuaFilter::from_section(
        &section(&[("script", "lua/create-log-file-path.lua"), ("call", "create_log_file_path")]),
        root,
        "lua.bench",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    bench("sidecar", sidecar, &records);
}
