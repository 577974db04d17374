//! Cost of the `lua` filter per record, in CPU microseconds (user + sys of
//! this process, from `getrusage`, around `apply` only), over 200k
//! sidecar-shaped records: the 16 fields of the nginx JSON access log
//! followed by the syslog fields `pri time ident message` (20 pairs, `time`
//! twice, as after the `parser` filter with `Reserve_Data`).
//!
//! Run: `cargo run --release --example lua_bench [case]` (with the binary's
//! allocator, as `examples/stages`). "best chunk" is the fastest 64-record
//! span by the wall clock: on a shared machine it is the steadier figure.
//!
//! - `tiny`: a one-field record returned as is (the fixed cost of a call);
//! - `keep`: the record goes into Lua, the script returns 0 (conversion in only);
//! - `identity`: returns 1 with the same table (conversion in and out);
//! - `sidecar`: the user's `create-log-file-path.lua` (adds `log_file_path`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatelog::config::{Location, Property, Section};
use gatelog::filter::lua::LuaFilter;
use gatelog::record::{Map, Record, Timestamp, Value};
use gatelog::stats::FilterCounters;

#[global_allocator]
static ALLOC: gatelog::Allocator = gatelog::Allocator;

const RECORDS: usize = 200_000;
const CHUNK: usize = 64;

fn section(props: &[(&str, &str)]) -> Section {
    let loc = Location { file: Arc::new(PathBuf::from("bench.conf")), line: 1 };
    let mut all = vec![Property { key: "Name".into(), value: "lua".into(), loc: loc.clone() }];
    for (k, v) in props {
        all.push(Property { key: (*k).into(), value: (*v).into(), loc: loc.clone() });
    }
    Section { name: "FILTER".into(), loc, props: all }
}

fn record(i: usize, tag: &Arc<str>) -> Record {
    let mut m = Map::with_capacity(20);
    let s = |v: &str| Value::from(v);
    m.push("time", s("2024-11-23T16:30:00+09:00"));
    m.push("remote_addr", Value::from(format!("10.0.{}.{}", i % 250, i % 200)));
    m.push("x_forwarded_for", s("203.0.113.7, 10.0.0.1"));
    m.push("vhost", s("example.com"));
    m.push("method", s("GET"));
    m.push("uri", Value::from(format!("/api/v1/items/{i}?page=2&sort=desc")));
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
    m.push("request_id", Value::from(format!("{i:032x}")));
    m.push("pri", s("190"));
    m.push("time", s("Nov 23 16:30:00"));
    m.push("ident", s("istio-ingressgateway-7d9f-abcde"));
    m.push("message", Value::from(format!("{{\"time\":\"2024-11-23T16:30:00+09:00\",\"vhost\":\"example.com\",\"method\":\"GET\",\"uri\":\"/api/v1/items/{i}\",\"status\":200,\"user_agent\":\"Mozilla/5.0\"}}")));
    Record::new(tag.clone(), Timestamp::new(1_732_379_400 + i as i64, 0), m)
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
    let mut out = Vec::with_capacity(CHUNK);
    let mut fields = 0usize;
    // Warm up (key cache, tag string).
    for r in records.iter().take(1000) {
        filter.apply(r.clone(), &mut out, &counters);
        out.clear();
    }
    // Only `apply` is timed: the input clones are made, and the results
    // dropped, outside the measured spans.
    let mut spent = 0.0;
    let mut best = f64::MAX;
    let mut batch: Vec<Record> = Vec::with_capacity(CHUNK);
    for chunk in records.chunks(CHUNK) {
        batch.extend(chunk.iter().cloned());
        let start = cpu_micros();
        let wall = std::time::Instant::now();
        for r in batch.drain(..) {
            filter.apply(r, &mut out, &counters);
        }
        best = best.min(wall.elapsed().as_secs_f64() * 1e6 / chunk.len() as f64);
        spent += cpu_micros() - start;
        fields += out.iter().map(|r| r.fields.len()).sum::<usize>();
        out.clear();
    }
    println!(
        "{name:<9} {:>7.3} us/record CPU, best chunk {:>6.3} us/record wall  ({} records, {} fields out, errors {})",
        spent / records.len() as f64,
        best,
        records.len(),
        fields / records.len(),
        counters.errors.get()
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // One tag shared by all records, as the pipeline does.
    let tag: Arc<str> = Arc::from("kube.*");
    let records: Vec<Record> = (0..RECORDS).map(|i| record(i, &tag)).collect();
    let inline = |code: &str| {
        LuaFilter::from_section(&section(&[("code", code), ("call", "f")]), root, "lua.bench")
            .unwrap_or_else(|e| panic!("{e:?}"))
    };
    let only = std::env::args().nth(1);
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("keep") {
        bench("keep", inline("function f(tag, ts, r) return 0, ts, r end"), &records);
    }
    if run("tiny") {
        let tiny: Vec<Record> = (0..RECORDS)
            .map(|i| {
                Record::new(
                    tag.clone(),
                    Timestamp::new(i as i64, 0),
                    Map::from_pairs(vec![("a".into(), Value::Int(1))]),
                )
            })
            .collect();
        bench("tiny", inline("function f(tag, ts, r) return 1, ts, r end"), &tiny);
    }
    if run("identity") {
        bench("identity", inline("function f(tag, ts, r) return 1, ts, r end"), &records);
    }
    if run("sidecar") {
        let sidecar = LuaFilter::from_section(
            &section(&[("script", "lua/create-log-file-path.lua"), ("call", "create_log_file_path")]),
            root,
            "lua.bench",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        bench("sidecar", sidecar, &records);
    }
}
