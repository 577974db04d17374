//! `/api/v1/metrics/prometheus`: the text exposition format (0.0.4).
//!
//! First Fluent Bit's own families, byte for byte in its layout so existing
//! dashboards and alerts keep working: one `fluentbit_<section>_<metric>_total
//! {name="<instance>"}` sample per instance and metric, lines sorted by byte
//! order, a `# HELP`/`# TYPE` pair before each family, then
//! `fluentbit_uptime`, `process_start_time_seconds` and
//! `fluentbit_build_info`. Then gatelog's own families under `gatelog_`:
//! every way a record can be lost, by reason, and the gauges an operator
//! needs to see it coming (buffer occupancy, open files, lifecycle phase).
//!
//! One deliberate difference: Fluent Bit 1.8 appends a millisecond
//! timestamp to every sample (its values came from a snapshot up to a second
//! old). Ours are read live at scrape time, so the scrape's own time is the
//! right one; and an explicit timestamp switches off Prometheus' staleness
//! handling, so a series of a pod that went away would linger for five
//! minutes instead of ending at the next scrape.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::json::FLUENT_BIT_COMPAT;
use crate::stats::{Phase, Telemetry};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The whole exposition for `t`, `up` after start.
pub fn render(t: &Telemetry, up: Duration) -> String {
    let mut out = String::with_capacity(4096);
    fluent_bit_families(&mut out, t);
    process_families(&mut out, t, up);
    gatelog_families(&mut out, t);
    out
}

/// Fluent Bit's per-instance counters: sample lines sorted, a HELP/TYPE
/// pair whenever the family name changes.
fn fluent_bit_families(out: &mut String, t: &Telemetry) {
    let mut lines: Vec<String> = Vec::new();
    let mut sample = |section: &str, metric: &str, name: &str, v: u64| {
        let mut l = format!("fluentbit_{section}_{metric}_total{{name=");
        push_label(&mut l, name);
        let _ = writeln!(l, "}} {v}");
        lines.push(l);
    };
    for n in &t.inputs {
        let c = &n.counters;
        sample("input", "records", &n.name, c.records.get());
        sample("input", "bytes", &n.name, c.bytes.get());
    }
    for n in &t.filters {
        let c = &n.counters;
        sample("filter", "drop_records", &n.name, c.drop_records.get());
        sample("filter", "add_records", &n.name, c.add_records.get());
        if n.plugin == "rewrite_tag" {
            sample("filter", "emit_records", &n.name, c.emit_records.get());
        }
    }
    for n in &t.outputs {
        let c = &n.counters;
        sample("output", "proc_records", &n.name, c.proc_records.get());
        sample("output", "proc_bytes", &n.name, c.proc_bytes.get());
        sample("output", "errors", &n.name, c.errors.get());
        sample("output", "retries", &n.name, c.retries.get());
        sample("output", "retries_failed", &n.name, c.retries_failed.get());
        sample("output", "dropped_records", &n.name, c.dropped_records.get());
        sample("output", "retried_records", &n.name, c.retried_records.get());
    }
    // Lines of one family share the prefix up to `{`, so byte order keeps
    // each family contiguous.
    lines.sort_unstable();
    let mut family = "";
    for l in &lines {
        let name = l.split('{').next().unwrap_or(l);
        if name != family {
            header(out, name, fluent_bit_help(name), "counter");
            family = name;
        }
        out.push_str(l);
    }
}

/// Fluent Bit's HELP text, chosen by substring as it does (filter metrics
/// get the generic sentence).
fn fluent_bit_help(name: &str) -> &'static str {
    const HELP: &[(&str, &str)] = &[
        ("input_bytes", "Number of input bytes."),
        ("input_records", "Number of input records."),
        ("output_errors", "Number of output errors."),
        ("output_retries_failed", "Number of abandoned batches because the maximum number of re-tries was reached."),
        ("output_retries", "Number of output retries."),
        ("output_proc_records", "Number of processed output records."),
        ("output_proc_bytes", "Number of processed output bytes."),
        ("output_dropped_records", "Number of dropped records."),
        ("output_retried_records", "Number of retried records."),
    ];
    HELP.iter().find(|(key, _)| name.contains(key)).map(|(_, help)| *help).unwrap_or("Fluentbit metrics.")
}

fn process_families(out: &mut String, t: &Telemetry, up: Duration) {
    header(out, "fluentbit_uptime", "Number of seconds that Fluent Bit has been running.", "counter");
    let _ = writeln!(out, "fluentbit_uptime {}", up.as_secs());
    header(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge");
    let start = t.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let _ = writeln!(out, "process_start_time_seconds {}", start.as_secs());
    header(out, "fluentbit_build_info", "Build version information.", "gauge");
    let _ = writeln!(out, "fluentbit_build_info{{version=\"{FLUENT_BIT_COMPAT}\",edition=\"Community\"}} 1");
    header(out, "gatelog_build_info", "gatelog version (Fluent Bit compatible).", "gauge");
    let _ = writeln!(out, "gatelog_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
}

/// Reasons of `gatelog_input_dropped_records_total`, always all present so
/// `sum by (name)` adds up from the first scrape.
const INPUT_DROP_REASONS: [&str; 4] = ["buffer_full", "parse_failure", "oversize", "empty"];

fn gatelog_families(out: &mut String, t: &Telemetry) {
    let inputs = &t.inputs;
    family(
        out,
        "gatelog_input_received_total",
        "Messages taken from the socket, before any drop (= fluentbit_input_records_total + dropped).",
        "counter",
        inputs.iter().map(|n| (n.name.as_str(), None, n.counters.received.get())),
    );
    family(
        out,
        "gatelog_input_dropped_records_total",
        "Messages an input lost before they became records, by reason.",
        "counter",
        inputs.iter().flat_map(|n| {
            let c = &n.counters;
            let v = [
                c.dropped_buffer_full.get(),
                c.dropped_parse_failure.get(),
                c.dropped_oversize.get(),
                c.dropped_empty.get(),
            ];
            INPUT_DROP_REASONS.iter().zip(v).map(move |(r, v)| (n.name.as_str(), Some(("reason", *r)), v))
        }),
    );
    family(
        out,
        "gatelog_input_kernel_drops_total",
        "Datagrams the kernel dropped because the socket's receive queue was full (UDP only).",
        "counter",
        inputs.iter().map(|n| (n.name.as_str(), None, n.counters.kernel_drops.get())),
    );
    family(
        out,
        "gatelog_input_buffer_full_waits_total",
        "Times the receiver paused because the pipeline buffer was full (Buffer_Full wait).",
        "counter",
        inputs.iter().map(|n| (n.name.as_str(), None, n.counters.buffer_full_waits.get())),
    );
    let filters = &t.filters;
    family(
        out,
        "gatelog_filter_errors_total",
        "Filter errors that let the record pass unchanged (Lua errors).",
        "counter",
        filters.iter().map(|n| (n.name.as_str(), None, n.counters.errors.get())),
    );
    family(
        out,
        "gatelog_filter_parse_failures_total",
        "Values the parser filter could not parse (the record passes unchanged).",
        "counter",
        filters.iter().map(|n| (n.name.as_str(), None, n.counters.parse_failures.get())),
    );
    let outputs = &t.outputs;
    family(
        out,
        "gatelog_output_path_refused_total",
        "Records whose output path was refused (outside the output's directory).",
        "counter",
        outputs.iter().map(|n| (n.name.as_str(), None, n.counters.path_refused.get())),
    );
    family(
        out,
        "gatelog_output_open_files",
        "Files the output currently holds open.",
        "gauge",
        outputs.iter().map(|n| (n.name.as_str(), None, n.counters.open_files.get())),
    );
    let p = &t.pipeline;
    single(
        out,
        "gatelog_unrouted_records_total",
        "Records no output's Match selected (lost).",
        "counter",
        p.unrouted.get(),
    );
    single(
        out,
        "gatelog_rewrite_loops_total",
        "Records dropped because rewrite_tag kept re-tagging them.",
        "counter",
        p.rewrite_loops.get(),
    );
    let in_flight = t.buffer_bytes.load(std::sync::atomic::Ordering::Relaxed) as u64;
    single(out, "gatelog_buffer_bytes", "Bytes of received messages waiting for the pipeline.", "gauge", in_flight);
    single(
        out,
        "gatelog_buffer_limit_bytes",
        "Buffer_Limit: beyond it received messages are dropped (buffer_full).",
        "gauge",
        t.buffer_limit as u64,
    );
    let phase = match t.phase() {
        Phase::Starting => 0,
        Phase::Running => 1,
        Phase::Draining => 2,
    };
    single(out, "gatelog_phase", "Lifecycle phase: 0 starting, 1 running, 2 draining.", "gauge", phase);
}

/// A family with one sample per instance (`name` label, optionally one
/// more label); nothing at all when there are no instances.
fn family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    samples: impl Iterator<Item = (&'a str, Option<(&'a str, &'a str)>, u64)>,
) {
    let mut samples = samples.peekable();
    if samples.peek().is_none() {
        return;
    }
    header(out, name, help, kind);
    for (instance, extra, v) in samples {
        out.push_str(name);
        out.push_str("{name=");
        push_label(out, instance);
        if let Some((k, val)) = extra {
            let _ = write!(out, ",{k}=");
            push_label(out, val);
        }
        let _ = writeln!(out, "}} {v}");
    }
}

fn single(out: &mut String, name: &str, help: &str, kind: &str, v: u64) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {v}");
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Append a quoted label value, escaping `\`, `"` and newlines.
fn push_label(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::telemetry;

    #[test]
    fn fluent_bit_families_are_sorted_with_help_and_type() {
        let t = telemetry();
        t.inputs[0].counters.records.add(5);
        t.outputs[0].counters.proc_records.add(4);
        let text = render(&t, Duration::from_secs(42));
        let fb: Vec<&str> = text.lines().take_while(|l| !l.contains("fluentbit_uptime")).collect();
        assert_eq!(
            &fb[..8],
            &[
                "# HELP fluentbit_filter_add_records_total Fluentbit metrics.",
                "# TYPE fluentbit_filter_add_records_total counter",
                "fluentbit_filter_add_records_total{name=\"parser.0\"} 0",
                "fluentbit_filter_add_records_total{name=\"rewrite_tag.1\"} 0",
                "# HELP fluentbit_filter_drop_records_total Fluentbit metrics.",
                "# TYPE fluentbit_filter_drop_records_total counter",
                "fluentbit_filter_drop_records_total{name=\"parser.0\"} 0",
                "fluentbit_filter_drop_records_total{name=\"rewrite_tag.1\"} 0",
            ]
        );
        // emit_records only for rewrite_tag.
        assert!(fb.contains(&"fluentbit_filter_emit_records_total{name=\"rewrite_tag.1\"} 0"));
        assert!(!text.contains("fluentbit_filter_emit_records_total{name=\"parser.0\"}"));
        assert!(fb.contains(&"fluentbit_input_records_total{name=\"syslog.0\"} 5"));
        assert!(fb.contains(&"# HELP fluentbit_output_proc_records_total Number of processed output records."));
        assert!(fb.contains(&"fluentbit_output_proc_records_total{name=\"file.0\"} 4"));
        // retries_failed sorts before retries (`f` < `t`), each with its own help.
        let rf = fb.iter().position(|l| l.starts_with("fluentbit_output_retries_failed_total{")).unwrap();
        let r = fb.iter().position(|l| l.starts_with("fluentbit_output_retries_total{")).unwrap();
        assert!(rf < r);
        assert_eq!(fb[r - 2], "# HELP fluentbit_output_retries_total Number of output retries.");
        // 2 input + 5 filter + 7 output samples, each family headed once.
        assert_eq!(fb.iter().filter(|l| !l.starts_with('#')).count(), 14);
        assert_eq!(fb.iter().filter(|l| l.starts_with("# TYPE")).count(), 12);
        assert!(text.contains("\nfluentbit_uptime 42\n"));
        assert!(text.contains("\nfluentbit_build_info{version=\"1.8.13\",edition=\"Community\"} 1\n"));
        assert!(text.contains("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds "));
    }

    #[test]
    fn gatelog_families_count_every_loss_by_reason() {
        let t = telemetry();
        let c = &t.inputs[0].counters;
        c.received.add(10);
        c.dropped_parse_failure.add(2);
        c.dropped_empty.inc();
        c.kernel_drops.add(3);
        t.outputs[0].counters.open_files.set(2);
        t.pipeline.unrouted.add(4);
        t.set_phase(Phase::Draining);
        let text = render(&t, Duration::ZERO);
        for want in [
            "gatelog_input_received_total{name=\"syslog.0\"} 10",
            "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"buffer_full\"} 0",
            "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"parse_failure\"} 2",
            "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"oversize\"} 0",
            "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"empty\"} 1",
            "gatelog_input_kernel_drops_total{name=\"syslog.0\"} 3",
            "gatelog_filter_errors_total{name=\"parser.0\"} 0",
            "gatelog_filter_parse_failures_total{name=\"rewrite_tag.1\"} 0",
            "gatelog_output_path_refused_total{name=\"file.0\"} 0",
            "# TYPE gatelog_output_open_files gauge",
            "gatelog_output_open_files{name=\"file.0\"} 2",
            "gatelog_unrouted_records_total 4",
            "gatelog_rewrite_loops_total 0",
            "gatelog_buffer_bytes 0",
            "gatelog_buffer_limit_bytes 1000",
            "# TYPE gatelog_phase gauge",
            "gatelog_phase 2",
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}:\n{text}");
        }
        // Every sample line has no timestamp: `name{labels} value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit('}').next().unwrap_or(l);
            assert_eq!(value.split_whitespace().count(), if l.contains('}') { 1 } else { 2 }, "{l}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        push_label(&mut s, "a\"b\\c\nd");
        assert_eq!(s, r#""a\"b\\c\nd""#);
    }

    #[test]
    fn families_without_instances_are_left_out() {
        let mut t = telemetry();
        t.filters.clear();
        let text = render(&t, Duration::ZERO);
        assert!(!text.contains("fluentbit_filter_"));
        assert!(!text.contains("gatelog_filter_"));
    }
}
