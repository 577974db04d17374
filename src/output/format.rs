//! The line formats of the `file` output, byte-compatible with Fluent Bit
//! 1.8.13 (`Format` option): `out_file` (default), `plain`, `csv`, `ltsv`,
//! `template`. `msgpack` (raw chunk bytes, a Fluent Bit developer aid) is
//! refused at config load.
//!
//! Invariant: a [`Format`] is fully resolved (delimiters chosen, template
//! compiled) when the config loads; rendering only appends bytes.
//! `csv` and `ltsv` write nothing at all for a record without fields, as
//! Fluent Bit does.

use super::json;
use super::print::{push_object, push_quoted, push_time};
use super::template::Template;
use crate::config::units::prop_bool;
use crate::config::{ConfigError, Property, Section};
use crate::record::reads::Reads;
use crate::record::Record;
use std::io::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// `<tag>: [<sec>.<nsec>, <json>]`
    OutFile,
    /// `<json>`
    Plain,
    /// `<sec>.<nsec><d><v1><d><v2>…`, values printed msgpack-style.
    Csv {
        delimiter: &'static str,
        column_names: bool,
    },
    /// `"time"<l><%f><d>"k1"<l>v1<d>…`
    Ltsv {
        delimiter: &'static str,
        label_delimiter: &'static str,
    },
    Template(Template),
}

impl Format {
    /// Read `Format`, `Template`, `Delimiter`, `Label_Delimiter` and
    /// `CSV_Column_Names` from an `[OUTPUT]` section of the `file` plugin.
    pub fn from_section(section: &Section) -> Result<Format, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let delimiter = section.get("Delimiter").and_then(|p| parse_delimiter(p).map_err(|e| errors.push(e)).ok());
        let label = section.get("Label_Delimiter").and_then(|p| parse_delimiter(p).map_err(|e| errors.push(e)).ok());
        let column_names = match section.get("CSV_Column_Names") {
            Some(p) => prop_bool(p).map_err(|e| errors.push(e)).unwrap_or(false),
            None => false,
        };
        let format = match section.get("Format") {
            None => Some(Format::OutFile),
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "out_file" => Some(Format::OutFile),
                "plain" => Some(Format::Plain),
                "csv" => Some(Format::Csv { delimiter: delimiter.unwrap_or(","), column_names }),
                "ltsv" => {
                    Some(Format::Ltsv { delimiter: delimiter.unwrap_or("\t"), label_delimiter: label.unwrap_or(":") })
                }
                "template" => {
                    let text = section.value("Template").unwrap_or(Template::DEFAULT);
                    Some(Format::Template(Template::compile(text)))
                }
                "msgpack" => {
                    errors.push(
                        ConfigError::at(&p.loc, "'Format msgpack' is not supported by gatelog").with_hint(
                            "use out_file, plain, csv, ltsv or template (msgpack dumps raw Fluent Bit chunks)",
                        ),
                    );
                    None
                }
                other => {
                    errors.push(
                        ConfigError::at(&p.loc, format!("unknown Format '{other}' for output 'file'"))
                            .with_hint("use out_file, plain, csv, ltsv or template"),
                    );
                    None
                }
            },
        };
        match format {
            Some(f) if errors.is_empty() => Ok(f),
            _ => Err(errors),
        }
    }

    /// The fields a line prints: a template's keys, or every field.
    pub fn reads(&self) -> Reads {
        match self {
            Format::Template(t) => t.reads(),
            _ => Reads::All,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Format::OutFile => "out_file",
            Format::Plain => "plain",
            Format::Csv { .. } => "csv",
            Format::Ltsv { .. } => "ltsv",
            Format::Template(_) => "template",
        }
    }

    /// Append the line for `rec`, newline included (nothing for an empty
    /// record in csv/ltsv).
    pub fn render(&self, rec: &Record, out: &mut Vec<u8>) {
        match self {
            Format::OutFile => {
                out.extend_from_slice(rec.tag.as_bytes());
                // `%PRIu64`: Fluent Bit casts the seconds to unsigned.
                let _ = write!(out, ": [{}.{:09}, ", rec.time.secs as u64, rec.time.nanos);
                json::push_map(out, &rec.fields);
                out.extend_from_slice(b"]\n");
            }
            Format::Plain => {
                json::push_map(out, &rec.fields);
                out.push(b'\n');
            }
            Format::Csv { delimiter, .. } => {
                if rec.fields.is_empty() {
                    return;
                }
                let _ = write!(out, "{}.{:09}", rec.time.secs, rec.time.nanos);
                for (_, v) in rec.fields.iter() {
                    out.extend_from_slice(delimiter.as_bytes());
                    push_object(out, v);
                }
                out.push(b'\n');
            }
            Format::Ltsv { delimiter, label_delimiter } => {
                if rec.fields.is_empty() {
                    return;
                }
                out.extend_from_slice(b"\"time\"");
                out.extend_from_slice(label_delimiter.as_bytes());
                push_time(out, rec.time);
                for (k, v) in rec.fields.iter() {
                    out.extend_from_slice(delimiter.as_bytes());
                    push_quoted(out, k);
                    out.extend_from_slice(label_delimiter.as_bytes());
                    push_object(out, v);
                }
                out.push(b'\n');
            }
            Format::Template(t) => t.render(rec, out),
        }
    }

    /// The csv header line for a file that starts with `rec`, when
    /// `CSV_Column_Names` is on: `timestamp<d>"k1"<d>"k2"` (keys quoted by
    /// msgpack-style printing, exactly as Fluent Bit writes them).
    pub fn csv_header(&self, rec: &Record) -> Option<Vec<u8>> {
        let Format::Csv { delimiter, column_names: true } = self else {
            return None;
        };
        if rec.fields.is_empty() {
            return None;
        }
        let mut out = b"timestamp".to_vec();
        for (k, _) in rec.fields.iter() {
            out.extend_from_slice(delimiter.as_bytes());
            push_quoted(&mut out, k);
        }
        out.push(b'\n');
        Some(out)
    }
}

/// `Delimiter`/`Label_Delimiter`: the words Fluent Bit knows. It silently
/// ignores anything else; gatelog refuses it, since the user clearly wanted
/// a different delimiter than the one they would get.
fn parse_delimiter(p: &Property) -> Result<&'static str, ConfigError> {
    match p.value.to_ascii_lowercase().as_str() {
        "\\t" | "tab" => Ok("\t"),
        "space" => Ok(" "),
        "comma" => Ok(","),
        _ => Err(ConfigError::at(
            &p.loc,
            format!("'{}' must be one of \\t, tab, space, comma; got '{}'", p.key, p.value),
        )
        .with_hint("Fluent Bit ignores other values and keeps the default; write one of the four words")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use crate::record::{Map, Timestamp, Value};
    use std::path::PathBuf;
    use std::sync::Arc;

    pub(crate) fn section(props: &[(&str, &str)]) -> Section {
        let loc = Location { file: Arc::new(PathBuf::from("t.conf")), line: 1 };
        Section {
            name: "OUTPUT".into(),
            loc: loc.clone(),
            props: props
                .iter()
                .enumerate()
                .map(|(i, (k, v))| Property {
                    key: k.to_string(),
                    value: v.to_string(),
                    loc: Location { line: i as u32 + 2, ..loc.clone() },
                })
                .collect(),
        }
    }

    /// string, int, float, bool, null, array, map and a duplicate key.
    fn rich() -> Record {
        let mut inner = Map::new();
        inner.push("k", Value::from("v"));
        let mut m = Map::new();
        m.push("s", Value::from("a\"b"));
        m.push("i", Value::Int(42));
        m.push("f", Value::Float(0.5));
        m.push("b", Value::Bool(true));
        m.push("n", Value::Null);
        m.push("a", Value::Array(vec![Value::Int(1), Value::from("x")]));
        m.push("m", Value::Map(inner));
        m.push("s", Value::from("dup"));
        Record::new("app.log".into(), Timestamp::new(1732379400, 5_000), m)
    }

    fn render(props: &[(&str, &str)], rec: &Record) -> String {
        let f = Format::from_section(&section(props)).unwrap();
        let mut out = Vec::new();
        f.render(rec, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn out_file_default() {
        assert_eq!(
            render(&[], &rich()),
            "app.log: [1732379400.000005000, {\"s\":\"a\\\"b\",\"i\":42,\"f\":0.5,\"b\":true,\"n\":null,\"a\":[1,\"x\"],\"m\":{\"k\":\"v\"},\"s\":\"dup\"}]\n"
        );
    }

    #[test]
    fn plain() {
        assert_eq!(
            render(&[("Format", "plain")], &rich()),
            "{\"s\":\"a\\\"b\",\"i\":42,\"f\":0.5,\"b\":true,\"n\":null,\"a\":[1,\"x\"],\"m\":{\"k\":\"v\"},\"s\":\"dup\"}\n"
        );
    }

    #[test]
    fn csv_and_header() {
        assert_eq!(
            render(&[("Format", "csv")], &rich()),
            "1732379400.000005000,\"a\"b\",42,0.500000,true,nil,[1, \"x\"],{\"k\"=>\"v\"},\"dup\"\n"
        );
        let f =
            Format::from_section(&section(&[("Format", "CSV"), ("Delimiter", "space"), ("CSV_Column_Names", "on")]))
                .unwrap();
        assert_eq!(
            String::from_utf8(f.csv_header(&rich()).unwrap()).unwrap(),
            "timestamp \"s\" \"i\" \"f\" \"b\" \"n\" \"a\" \"m\" \"s\"\n"
        );
        assert_eq!(Format::from_section(&section(&[("Format", "csv")])).unwrap().csv_header(&rich()), None);
    }

    #[test]
    fn ltsv() {
        assert_eq!(
            render(&[("Format", "ltsv")], &rich()),
            "\"time\":1732379400.000005\t\"s\":\"a\"b\"\t\"i\":42\t\"f\":0.500000\t\"b\":true\t\"n\":nil\t\"a\":[1, \"x\"]\t\"m\":{\"k\"=>\"v\"}\t\"s\":\"dup\"\n"
        );
        let custom = render(&[("Format", "ltsv"), ("Delimiter", "comma"), ("Label_Delimiter", "\\t")], &rich());
        assert!(custom.starts_with("\"time\"\t1732379400.000005,\"s\"\t\"a\"b\","), "{custom}");
    }

    #[test]
    fn template_format() {
        assert_eq!(
            render(&[("Format", "template"), ("Template", "{i}|{s}|{time}")], &rich()),
            "42|a\"b|1732379400.000005\n"
        );
    }

    #[test]
    fn empty_record_in_csv_and_ltsv_writes_nothing() {
        let r = Record::new("t".into(), Timestamp::new(1, 0), Map::new());
        assert_eq!(render(&[("Format", "csv")], &r), "");
        assert_eq!(render(&[("Format", "ltsv")], &r), "");
        assert_eq!(render(&[("Format", "plain")], &r), "{}\n");
    }

    #[test]
    fn refused_values_carry_locations_and_hints() {
        let errs = Format::from_section(&section(&[("Format", "msgpack")])).unwrap_err();
        assert!(errs[0].to_string().starts_with("t.conf:2: 'Format msgpack' is not supported"), "{}", errs[0]);
        let errs = Format::from_section(&section(&[("Format", "csv"), ("Delimiter", ";")])).unwrap_err();
        assert!(errs[0].to_string().contains("t.conf:3: 'Delimiter' must be one of"), "{}", errs[0]);
        assert!(errs[0].hint.is_some());
        assert!(Format::from_section(&section(&[("Format", "yaml")])).is_err());
    }
}
