//! The JSON bodies of the Fluent Bit-compatible endpoints: build info (`/`),
//! uptime (`/api/v1/uptime`) and the counter snapshot (`/api/v1/metrics`).
//! Shapes and key order follow Fluent Bit 1.8 so tools that read its
//! answers read ours; the values are read live from [`Telemetry`].

use std::fmt::Write;
use std::time::Duration;

use crate::stats::{FilterCounters, Telemetry};

/// The Fluent Bit release whose behaviour gatelog reproduces; reported where
/// Fluent Bit reports its own version so version checks keep working.
pub const FLUENT_BIT_COMPAT: &str = "1.8.13";

/// Build flags reported in `/`: the Fluent Bit features gatelog provides.
const FLAGS: &[&str] = &[
    "FLB_HAVE_PARSER",
    "FLB_HAVE_RECORD_ACCESSOR",
    "FLB_HAVE_REGEX",
    "FLB_HAVE_METRICS",
    "FLB_HAVE_HTTP_SERVER",
    "FLB_HAVE_LUAJIT",
    "FLB_HAVE_UNIX_SOCKET",
];

/// `GET /`: Fluent Bit's build-info object plus gatelog's own version.
pub fn build_info() -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"fluent-bit\":{\"version\":");
    push_str(&mut s, FLUENT_BIT_COMPAT);
    s.push_str(",\"edition\":\"Community\",\"flags\":[");
    for (i, f) in FLAGS.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_str(&mut s, f);
    }
    s.push_str("]},\"gatelog\":{\"version\":");
    push_str(&mut s, env!("CARGO_PKG_VERSION"));
    s.push_str("}}");
    s
}

/// `GET /api/v1/uptime`, with Fluent Bit's exact sentence: two spaces after
/// the colon, and the plural `s` only for values above one (`0 day`).
pub fn uptime(up: Duration) -> String {
    let secs = up.as_secs();
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let pl = |n: u64| if n > 1 { "s" } else { "" };
    format!(
        "{{\"uptime_sec\":{secs},\"uptime_hr\":\"Fluent Bit has been running:  \
         {d} day{}, {h} hour{}, {m} minute{} and {s} second{}\"}}",
        pl(d),
        pl(h),
        pl(m),
        pl(s)
    )
}

/// `GET /api/v1/metrics`: `{"input":{…},"filter":{…},"output":{…}}` with
/// Fluent Bit's per-plugin keys (`emit_records` only for rewrite_tag).
pub fn metrics(t: &Telemetry) -> String {
    let mut s = String::with_capacity(512);
    s.push_str("{\"input\":{");
    for (i, n) in t.inputs.iter().enumerate() {
        instance(&mut s, i, &n.name);
        let c = &n.counters;
        let _ = write!(s, "\"records\":{},\"bytes\":{}}}", c.records.get(), c.bytes.get());
    }
    s.push_str("},\"filter\":{");
    for (i, n) in t.filters.iter().enumerate() {
        instance(&mut s, i, &n.name);
        filter_fields(&mut s, n.plugin, &n.counters);
    }
    s.push_str("},\"output\":{");
    for (i, n) in t.outputs.iter().enumerate() {
        instance(&mut s, i, &n.name);
        let c = &n.counters;
        let _ = write!(
            s,
            "\"proc_records\":{},\"proc_bytes\":{},\"errors\":{},\"retries\":{},\
             \"retries_failed\":{},\"dropped_records\":{},\"retried_records\":{}}}",
            c.proc_records.get(),
            c.proc_bytes.get(),
            c.errors.get(),
            c.retries.get(),
            c.retries_failed.get(),
            c.dropped_records.get(),
            c.retried_records.get()
        );
    }
    s.push_str("}}");
    s
}

fn filter_fields(s: &mut String, plugin: &str, c: &FilterCounters) {
    let _ = write!(s, "\"drop_records\":{},\"add_records\":{}", c.drop_records.get(), c.add_records.get());
    if plugin == "rewrite_tag" {
        let _ = write!(s, ",\"emit_records\":{}", c.emit_records.get());
    }
    s.push('}');
}

/// `,"name":{` (no comma before the first).
fn instance(s: &mut String, i: usize, name: &str) {
    if i > 0 {
        s.push(',');
    }
    push_str(s, name);
    s.push_str(":{");
}

/// Append `v` as a quoted JSON string.
pub(crate) fn push_str(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::telemetry;

    #[test]
    fn uptime_text_has_two_spaces_and_fluent_bits_plural_rule() {
        assert_eq!(
            uptime(Duration::from_secs(0)),
            r#"{"uptime_sec":0,"uptime_hr":"Fluent Bit has been running:  0 day, 0 hour, 0 minute and 0 second"}"#
        );
        let t = 2 * 86_400 + 3600 + 2 * 60 + 1;
        assert_eq!(
            uptime(Duration::from_secs(t)),
            format!(
                r#"{{"uptime_sec":{t},"uptime_hr":"Fluent Bit has been running:  2 days, 1 hour, 2 minutes and 1 second"}}"#
            )
        );
    }

    #[test]
    fn build_info_has_fluent_bits_shape_and_gatelogs_version() {
        let b = build_info();
        assert!(
            b.starts_with(r#"{"fluent-bit":{"version":"1.8.13","edition":"Community","flags":["FLB_HAVE_PARSER","#),
            "{b}"
        );
        assert!(b.ends_with(&format!(r#"]}},"gatelog":{{"version":"{}"}}}}"#, env!("CARGO_PKG_VERSION"))), "{b}");
    }

    #[test]
    fn metrics_snapshot_in_fluent_bits_shape() {
        let t = telemetry();
        t.inputs[0].counters.records.add(7);
        t.inputs[0].counters.bytes.add(700);
        t.filters[1].counters.emit_records.add(3);
        t.outputs[0].counters.proc_records.add(6);
        t.outputs[0].counters.errors.inc();
        assert_eq!(
            metrics(&t),
            concat!(
                r#"{"input":{"syslog.0":{"records":7,"bytes":700}},"#,
                r#""filter":{"parser.0":{"drop_records":0,"add_records":0},"#,
                r#""rewrite_tag.1":{"drop_records":0,"add_records":0,"emit_records":3}},"#,
                r#""output":{"file.0":{"proc_records":6,"proc_bytes":0,"errors":1,"retries":0,"#,
                r#""retries_failed":0,"dropped_records":0,"retried_records":0}}}"#
            )
        );
    }

    #[test]
    fn names_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\u{1}");
        assert_eq!(s, r#""a\"b\\c\u0001""#);
    }
}
