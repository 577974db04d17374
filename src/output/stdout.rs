//! The `stdout` output: one JSON object per line, Fluent Bit's
//! `Format json_lines` shape — the record time first under
//! `json_date_key` (default `date`), then the fields in order:
//! `{"date":1732379400.0,"pri":"190",…}`. The time is a float written with
//! the JSON float rule (`json_date_format double`), or whole seconds
//! (`epoch`), or `iso8601` in UTC with microseconds
//! (`2024-11-23T16:30:00.000000Z`).
//!
//! Fluent Bit's own default for `stdout` is `Format msgpack`, a debugging
//! print (`[0] tag: [sec.nsec, {"k"=>"v"}]`); gatelog does not imitate it
//! and refuses `Format msgpack` with a hint. Lines are buffered and written
//! on the flush tick (or at 64 KiB) with the same counting rule as `file`.

use super::json;
use crate::config::schema::OptionSpec;
use crate::config::units::parse_bool;
use crate::config::{ConfigError, Section};
use crate::ratelimit::RateLimiter;
use crate::record::{Record, Value};
use crate::stats::OutputCounters;
use crate::warn_limited;
use chrono::DateTime;
use std::io::Write;

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "Format", default: Some("json_lines"), desc: "json_lines: one JSON object per line" },
    OptionSpec { name: "json_date_key", default: Some("date"), desc: "key of the record time; false to leave it out" },
    OptionSpec { name: "json_date_format", default: Some("double"), desc: "double, epoch or iso8601" },
];

const BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum DateFormat {
    Double,
    Epoch,
    Iso8601,
}

pub(crate) struct StdoutOutput {
    date_key: Option<String>,
    date_format: DateFormat,
    buf: Vec<u8>,
    pending: u64,
    sink: Box<dyn Write + Send>,
    warn: RateLimiter,
}

impl StdoutOutput {
    pub(crate) fn from_section(section: &Section) -> Result<StdoutOutput, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(p) = section.get("Format") {
            if !p.value.eq_ignore_ascii_case("json_lines") {
                errors.push(
                    ConfigError::at(&p.loc, format!("stdout 'Format {}' is not supported by gatelog", p.value))
                        .with_hint("use json_lines (one JSON object per line), or leave Format out"),
                );
            }
        }
        let date_key = match section.get("json_date_key") {
            Some(p) if parse_bool(&p.value) == Some(false) => None,
            Some(p) => Some(p.value.clone()),
            None => Some("date".to_owned()),
        };
        let date_format = match section.get("json_date_format") {
            None => DateFormat::Double,
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "double" => DateFormat::Double,
                "epoch" => DateFormat::Epoch,
                "iso8601" => DateFormat::Iso8601,
                _ => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("unknown json_date_format '{}'", p.value))
                            .with_hint("use double, epoch or iso8601"),
                    );
                    DateFormat::Double
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(StdoutOutput {
            date_key,
            date_format,
            buf: Vec::new(),
            pending: 0,
            sink: Box::new(std::io::stdout()),
            warn: RateLimiter::default(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        "stdout: json_lines".to_owned()
    }

    pub(crate) fn write(&mut self, rec: &Record, counters: &OutputCounters) {
        self.render(rec);
        self.pending += 1;
        if self.buf.len() >= BUFFER {
            self.flush(counters);
        }
    }

    fn render(&mut self, rec: &Record) {
        let out = &mut self.buf;
        out.push(b'{');
        let mut first = true;
        if let Some(key) = &self.date_key {
            json::push_str(out, key);
            out.push(b':');
            match self.date_format {
                DateFormat::Double => json::push_float(out, rec.time.as_f64()),
                DateFormat::Epoch => json::push_value(out, &Value::Int(rec.time.secs)),
                DateFormat::Iso8601 => {
                    let dt = DateTime::from_timestamp(rec.time.secs, 0).unwrap_or_default();
                    let _ = write!(out, "\"{}.{:06}Z\"", dt.format("%Y-%m-%dT%H:%M:%S"), rec.time.nanos / 1000);
                }
            }
            first = false;
        }
        for (k, v) in rec.fields.iter() {
            if !first {
                out.push(b',');
            }
            first = false;
            json::push_str(out, k);
            out.push(b':');
            json::push_value(out, v);
        }
        out.extend_from_slice(b"}\n");
    }

    pub(crate) fn flush(&mut self, counters: &OutputCounters) {
        if self.pending == 0 {
            return;
        }
        match self.sink.write_all(&self.buf).and_then(|_| self.sink.flush()) {
            Ok(()) => {
                counters.proc_records.add(self.pending);
                counters.proc_bytes.add(self.buf.len() as u64);
            }
            Err(e) => {
                counters.errors.inc();
                counters.dropped_records.add(self.pending);
                warn_limited!(self.warn, error = %e, records = self.pending, "could not write to stdout; records dropped");
            }
        }
        self.pending = 0;
        self.buf.clear();
        if self.buf.capacity() > 2 * BUFFER {
            self.buf.shrink_to(BUFFER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, Property};
    use crate::record::{Map, Timestamp};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn section(props: &[(&str, &str)]) -> Section {
        let loc = Location { file: Arc::new(PathBuf::from("t.conf")), line: 1 };
        let props = props
            .iter()
            .map(|(k, v)| Property { key: k.to_string(), value: v.to_string(), loc: loc.clone() })
            .collect();
        Section { name: "OUTPUT".into(), loc, props }
    }

    fn run(props: &[(&str, &str)], time: Timestamp) -> String {
        let mut out = StdoutOutput::from_section(&section(props)).unwrap();
        let shared = Shared::default();
        out.sink = Box::new(shared.clone());
        let mut m = Map::new();
        m.push("k", Value::from("v"));
        m.push("n", Value::Int(1));
        let c = OutputCounters::default();
        out.write(&Record::new("t".into(), time, m), &c);
        out.flush(&c);
        assert_eq!(c.proc_records.get(), 1);
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(c.proc_bytes.get(), text.len() as u64);
        text
    }

    #[test]
    fn json_lines_shapes() {
        let t = Timestamp::new(1732379400, 0);
        assert_eq!(run(&[], t), "{\"date\":1732379400.0,\"k\":\"v\",\"n\":1}\n");
        assert_eq!(run(&[], Timestamp::new(1732379400, 250_000_000)), "{\"date\":1732379400.25,\"k\":\"v\",\"n\":1}\n");
        assert_eq!(
            run(&[("json_date_key", "ts"), ("json_date_format", "epoch")], t),
            "{\"ts\":1732379400,\"k\":\"v\",\"n\":1}\n"
        );
        assert_eq!(
            run(&[("json_date_format", "iso8601")], Timestamp::new(1732379400, 1_500)),
            "{\"date\":\"2024-11-23T16:30:00.000001Z\",\"k\":\"v\",\"n\":1}\n"
        );
        assert_eq!(run(&[("json_date_key", "false"), ("Format", "JSON_Lines")], t), "{\"k\":\"v\",\"n\":1}\n");
    }

    #[test]
    fn unsupported_formats_are_refused() {
        assert!(StdoutOutput::from_section(&section(&[("Format", "msgpack")])).is_err());
        assert!(StdoutOutput::from_section(&section(&[("json_date_format", "java")])).is_err());
    }
}
