//! Outputs: `file` (Fluent Bit 1.8.13's formats byte for byte, dated and
//! confined paths, an open-file cache), `stdout` (JSON lines) and `null`.
//!
//! The engine drives an [`Output`] with four calls: `write` for each routed
//! record (formats it into the buffer of its destination), `flush` on every
//! `Flush` tick, `reopen` on SIGHUP, `close` at shutdown. None of them
//! panics or returns an error: I/O failures are counted and logged
//! rate-limited, and the other records go on.
//!
//! Counting rule, the same for every plugin: each record given to `write`
//! ends up, once `close` has returned, in exactly one of `proc_records`
//! (its line was part of a successful write; `null` counts it at once) or
//! `dropped_records` (the open or write of its buffer failed — then
//! `errors` also goes up by one per failed operation — or its path was
//! refused with `Fallback_File drop`). `path_refused` additionally counts
//! every record whose tag-derived path was refused, whether it then went
//! to the fallback file or was dropped. `proc_bytes` counts bytes that
//! reached the file or stdout.

mod cache;
mod file;
mod format;
mod g16;
mod json;
mod path;
mod print;
mod repeat;
mod stdout;
mod template;

pub use format::Format;
pub use template::Template;

use crate::config::schema::{check_keys, OptionSpec, COMMON_OUTPUT};
use crate::config::{ConfigError, Section};
use crate::record::reads::Reads;
use crate::record::Record;
use crate::stats::OutputCounters;
use crate::zone::Zone;
use file::FileOutput;
use std::path::Path;
use stdout::StdoutOutput;

/// What an output needs from the rest of the configuration.
pub struct OutputContext<'a> {
    /// Directory of the main config file (relative output paths are
    /// nevertheless relative to the working directory, as in Fluent Bit).
    pub base_dir: &'a Path,
    /// Instance name for logs and metrics (`file.0` or the `Alias`).
    pub instance: &'a str,
    /// Zone in which dated paths are rendered.
    pub zone: Zone,
}

enum Kind {
    File(Box<FileOutput>),
    Stdout(StdoutOutput),
    Null,
}

/// One instance of one output plugin.
pub struct Output {
    kind: Kind,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("plugin", &self.plugin()).field("describe", &self.describe()).finish()
    }
}

impl Output {
    /// The plugins gatelog provides.
    pub const PLUGINS: &'static [&'static str] = &["file", "stdout", "null"];

    /// The option table of `plugin` (without the common keys).
    pub fn options(plugin: &str) -> Option<&'static [OptionSpec]> {
        match plugin {
            "file" => Some(file::OPTIONS),
            "stdout" => Some(stdout::OPTIONS),
            "null" => Some(&[]),
            _ => None,
        }
    }

    /// Build from an `[OUTPUT]` section (plugins: `file`, `stdout`, `null`).
    /// Keys are checked against the plugin's option table and
    /// [`COMMON_OUTPUT`]; every error carries its location.
    pub fn from_section(section: &Section, ctx: &OutputContext) -> Result<Output, Vec<ConfigError>> {
        let Some(plugin) = section.plugin_name() else {
            return Err(vec![ConfigError::at(&section.loc, "[OUTPUT] section without 'Name'")
                .with_hint(format!("add 'Name' with one of: {}", Self::PLUGINS.join(", ")))]);
        };
        let Some(table) = Self::options(&plugin) else {
            let loc = section.get("Name").map(|p| &p.loc).unwrap_or(&section.loc);
            return Err(vec![ConfigError::at(loc, format!("unknown output plugin '{plugin}'"))
                .with_hint(format!("gatelog provides: {}", Self::PLUGINS.join(", ")))]);
        };
        let mut errors = check_keys(section, &plugin, &[table, COMMON_OUTPUT]);
        let kind = match plugin.as_str() {
            "file" => FileOutput::from_section(section, ctx).map(|f| Kind::File(Box::new(f))),
            "stdout" => StdoutOutput::from_section(section).map(Kind::Stdout),
            _ => Ok(Kind::Null),
        };
        match kind {
            Ok(kind) if errors.is_empty() => Ok(Output { kind }),
            Ok(_) => Err(errors),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }

    pub fn plugin(&self) -> &'static str {
        match self.kind {
            Kind::File(_) => "file",
            Kind::Stdout(_) => "stdout",
            Kind::Null => "null",
        }
    }

    /// One line for the start-up log, e.g. `file: ./logs/%Y-%m-%d.log (template)`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::File(f) => f.describe(),
            Kind::Stdout(s) => s.describe(),
            Kind::Null => "null: discards every record".to_owned(),
        }
    }

    /// Roots for tag-as-path files (neither `Path` nor `File`): a tag that
    /// starts with one of these directories is confined to it, so record
    /// data in the rest of the tag cannot lead out of it. The engine passes
    /// the literal prefixes of the rewrite_tag rules' NEW_TAGs.
    pub fn confine_tags_to(&mut self, roots: &[String]) {
        if let Kind::File(f) = &mut self.kind {
            f.set_tag_roots(roots);
        }
    }

    /// The top-level fields it reads (see `record::reads`): a file
    /// template's keys; everything for the other formats and stdout.
    pub fn reads(&self) -> Reads {
        match &self.kind {
            Kind::File(f) => f.reads(),
            Kind::Stdout(_) => Reads::All,
            Kind::Null => Reads::nothing(),
        }
    }

    /// Whether this output writes each record to the file its tag names.
    pub fn tag_is_path(&self) -> bool {
        matches!(&self.kind, Kind::File(f) if f.tag_is_path())
    }

    /// Format one record into the buffer of its destination (may write a
    /// full buffer out). Never panics; failures are counted.
    pub fn write(&mut self, rec: &Record, counters: &OutputCounters) {
        match &mut self.kind {
            Kind::File(f) => f.write(rec, counters),
            Kind::Stdout(s) => s.write(rec, counters),
            Kind::Null => counters.proc_records.inc(),
        }
    }

    /// Write every buffer out (each `Flush` seconds and at shutdown).
    pub fn flush(&mut self, counters: &OutputCounters) {
        match &mut self.kind {
            Kind::File(f) => f.flush(counters),
            Kind::Stdout(s) => s.flush(counters),
            Kind::Null => {}
        }
    }

    /// Flush, then close the files so the next write reopens them by path
    /// (SIGHUP after logrotate).
    pub fn reopen(&mut self, counters: &OutputCounters) {
        match &mut self.kind {
            Kind::File(f) => f.reopen(counters),
            Kind::Stdout(s) => s.flush(counters),
            Kind::Null => {}
        }
    }

    /// Flush and close everything (shutdown).
    pub fn close(&mut self, counters: &OutputCounters) {
        match &mut self.kind {
            Kind::File(f) => f.close(counters),
            Kind::Stdout(s) => s.flush(counters),
            Kind::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::classic::read_str;

    fn build(text: &str) -> Output {
        let doc = read_str(text, Path::new("t.conf"), Path::new(".")).unwrap();
        let ctx = OutputContext { base_dir: Path::new("."), instance: "x.0", zone: Zone::Utc };
        Output::from_section(&doc.sections[0], &ctx).unwrap()
    }

    #[test]
    fn outputs_can_move_to_the_pipeline_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Output>();
    }

    #[test]
    fn plugin_names_and_descriptions() {
        let o = build("[OUTPUT]\n    Name STDOUT\n    Match *\n");
        assert_eq!((o.plugin(), o.describe().as_str()), ("stdout", "stdout: json_lines"));
        let o = build("[OUTPUT]\n    Name file\n    Path /var/log/gw\n    File %Y-%m-%d.log\n    Format template\n");
        assert_eq!((o.plugin(), o.describe().as_str()), ("file", "file: /var/log/gw/%Y-%m-%d.log (template)"));
        let o = build("[OUTPUT]\n    Name file\n    Path logs\n");
        assert_eq!(o.describe(), "file: logs/<tag> (out_file)");
    }
}
