//! The `file` output: where each record goes (Fluent Bit 1.8's rules, plus
//! dated paths and confinement) and in which format; buffering and the
//! open files themselves live in [`super::cache`].
//!
//! Destination, as Fluent Bit 1.8: `Path` and `File` → `Path/File`; only
//! `Path` → `Path/<tag>`; only `File` → `File`; neither → the tag itself is
//! the path (relative to the working directory unless it starts with `/`).
//! gatelog additions: `%Y %m %d %H %M` in `Path`/`File` render the record
//! time in the configured zone (once per distinct second); missing
//! directories are created (`Mkdir`, default on, where 1.8 lost every
//! record of a day whose directory did not exist yet); a path taken from
//! the tag is refused when it has a `..` component, a control character or
//! an over-long component, and with `Path` set it must stay inside `Path`
//! even through symlinks. Refused records go to `Fallback_File` (under the
//! root, or the working directory without `Path`) or are dropped with
//! `Fallback_File drop`; either way they count in `path_refused`, and
//! dropped ones also in `dropped_records`.

use super::cache::{FileCache, DEFAULT_BUFFER, DEFAULT_MAX_OPEN};
use super::format::Format;
use super::path::{check_component_path, PathTemplate, Refusal, MAX_PATH};
use super::repeat::Repeats;
use super::OutputContext;
use crate::config::schema::OptionSpec;
use crate::config::units::{prop_bool, prop_size, prop_u64};
use crate::config::{ConfigError, Property, Section};
use crate::ratelimit::RateLimiter;
use crate::record::reads::Reads;
use crate::record::{RecentTags, Record};
use crate::stats::OutputCounters;
use crate::warn_limited;
use crate::zone::Zone;

const fn opt(name: &'static str, default: Option<&'static str>, desc: &'static str) -> OptionSpec {
    OptionSpec { name, default, desc }
}

pub const OPTIONS: &[OptionSpec] = &[
    opt("Path", None, "directory of the output files; may contain %Y %m %d %H %M (record time)"),
    opt("File", None, "file name (default: the tag); may contain %Y %m %d %H %M"),
    opt("Format", Some("out_file"), "out_file, plain, csv, ltsv or template"),
    opt("Template", Some("{time} {message}"), "line template of Format template"),
    opt("Delimiter", None, "csv/ltsv field delimiter: \\t, tab, space or comma"),
    opt("Label_Delimiter", None, "ltsv label delimiter: \\t, tab, space or comma"),
    opt("CSV_Column_Names", Some("off"), "csv: write a header line to an empty file"),
    opt("Mkdir", Some("on"), "gatelog: create missing directories (Fluent Bit 1.8 has no such option)"),
    opt("Max_Open_Files", Some("64"), "gatelog: files kept open at once (least recently used closed first)"),
    opt("Buffer_Size", Some("64K"), "gatelog: bytes buffered per file before a write"),
    opt("Fallback_File", Some("gatelog-refused.log"), "gatelog: where records with a refused path go, or 'drop'"),
];

const DEFAULT_FALLBACK: &str = "gatelog-refused.log";

#[derive(Debug)]
enum Layout {
    PathFile { path: PathTemplate, file: PathTemplate },
    PathTag { path: PathTemplate },
    File { file: PathTemplate },
    Tag,
}

/// The part of the destination that depends only on the record's second.
#[derive(Debug, Default)]
struct Prefix {
    secs: Option<i64>,
    /// Rendered `Path` (empty without one).
    root: String,
    /// Rendered `Path/File`, `Path/` or `File` (empty for tag-as-path).
    full: String,
}

pub(crate) struct FileOutput {
    layout: Layout,
    dated: bool,
    format: Format,
    zone: Zone,
    /// `None`: refused records are dropped.
    fallback: Option<String>,
    prefix: Prefix,
    /// The destination of the record being written.
    scratch: String,
    cache: FileCache,
    refused_warn: RateLimiter,
    instance: String,
    description: String,
    /// Tag-as-path only: directories (no trailing `/`) a tag under them is
    /// confined to, longest first.
    tag_roots: Vec<String>,
    /// The last two tags checked as paths and their verdicts. Tags come as
    /// shared `Arc`s (the input's; `rewrite_tag` reuses its last one), and
    /// with `KEEP true` the original and the re-tagged record alternate, so
    /// two entries let nearly every record skip the check (~900
    /// instructions on a sidecar tag).
    tag_checks: RecentTags<Result<(), Refusal>>,
    /// Lines kept for the `KEEP true` copies of the records written (see
    /// `repeat.rs`); `None` for `out_file`, which prints the tag.
    repeats: Option<Repeats>,
}

impl FileOutput {
    pub(crate) fn from_section(section: &Section, ctx: &OutputContext) -> Result<FileOutput, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let path = section.get("Path").and_then(|p| keep(&mut errors, PathTemplate::parse(p)));
        let file = section.get("File").and_then(|p| keep(&mut errors, PathTemplate::parse(p)));
        let mkdir = section.get("Mkdir").and_then(|p| keep(&mut errors, prop_bool(p))).unwrap_or(true);
        let max_open = section
            .get("Max_Open_Files")
            .and_then(|p| keep(&mut errors, positive(p)))
            .unwrap_or(DEFAULT_MAX_OPEN as u64);
        let buffer =
            section.get("Buffer_Size").and_then(|p| keep(&mut errors, prop_size(p))).unwrap_or(DEFAULT_BUFFER as u64);
        let fallback = match section.get("Fallback_File") {
            Some(p) if p.value.eq_ignore_ascii_case("drop") => None,
            Some(p) => keep(&mut errors, check_config_path(p)).map(|_| p.value.clone()),
            None => Some(DEFAULT_FALLBACK.to_owned()),
        };
        if let (Some(_), Some(f)) = (&path, section.get("File")) {
            // With `Path`, `File` must stay inside it as well.
            keep(&mut errors, check_config_path(f));
        }
        if buffer > 64 * 1024 * 1024 {
            if let Some(p) = section.get("Buffer_Size") {
                errors.push(
                    ConfigError::at(&p.loc, "'Buffer_Size' is larger than 64M")
                        .with_hint("use a few hundred K at most"),
                );
            }
        }
        let format = Format::from_section(section).map_err(|e| errors.extend(e)).ok();
        let (Some(format), true) = (format, errors.is_empty()) else {
            return Err(errors);
        };
        let layout = match (path, file) {
            (Some(path), Some(file)) => Layout::PathFile { path, file },
            (Some(path), None) => Layout::PathTag { path },
            (None, Some(file)) => Layout::File { file },
            (None, None) => Layout::Tag,
        };
        let dated = match &layout {
            Layout::PathFile { path, file } => path.is_dated() || file.is_dated(),
            Layout::PathTag { path } => path.is_dated(),
            Layout::File { file } => file.is_dated(),
            Layout::Tag => false,
        };
        let target = match &layout {
            Layout::PathFile { path, file } => format!("{}/{}", path.text(), file.text()),
            Layout::PathTag { path } => format!("{}/<tag>", path.text()),
            Layout::File { file } => file.text().to_owned(),
            Layout::Tag => "<tag>".to_owned(),
        };
        let description = format!("file: {target} ({})", format.name());
        // `out_file` prints the tag, the one thing a KEEP copy changes.
        let repeats = (!matches!(format, Format::OutFile)).then(Repeats::default);
        let mut out = FileOutput {
            layout,
            dated,
            format,
            zone: ctx.zone,
            fallback,
            prefix: Prefix::default(),
            scratch: String::new(),
            cache: FileCache::new(ctx.instance, max_open as usize, buffer as usize, mkdir),
            refused_warn: RateLimiter::default(),
            instance: ctx.instance.to_owned(),
            description,
            tag_roots: Vec::new(),
            tag_checks: RecentTags::new(Ok(())),
            repeats,
        };
        if !dated {
            out.render_prefix(0);
        }
        Ok(out)
    }

    pub(crate) fn describe(&self) -> String {
        self.description.clone()
    }

    /// The fields its lines print (paths come from the tag and the time).
    pub(crate) fn reads(&self) -> Reads {
        self.format.reads()
    }

    pub(crate) fn tag_is_path(&self) -> bool {
        matches!(self.layout, Layout::Tag)
    }

    /// Keep the directory part of each prefix (`/log/output/path/` and
    /// `/log/output/path/app-` both give `/log/output/path`).
    pub(crate) fn set_tag_roots(&mut self, prefixes: &[String]) {
        let mut roots: Vec<String> = prefixes
            .iter()
            .filter_map(|p| p.rfind('/').map(|i| p[..i].trim_end_matches('/').to_owned()))
            .filter(|r| !r.is_empty() && check_component_path(r).is_ok())
            .collect();
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        roots.dedup();
        self.tag_roots = roots;
    }

    /// Length of the tag root `tag` lies under, if any.
    fn tag_root_len(&self, tag: &str) -> Option<usize> {
        self.tag_roots
            .iter()
            .find(|r| tag.len() > r.len() && tag.starts_with(r.as_str()) && tag.as_bytes()[r.len()] == b'/')
            .map(String::len)
    }

    pub(crate) fn write(&mut self, rec: &Record, counters: &OutputCounters) {
        if self.dated && self.prefix.secs != Some(rec.time.secs) {
            self.render_prefix(rec.time.secs);
        }
        self.scratch.clear();
        self.scratch.push_str(&self.prefix.full);
        let from_tag = matches!(self.layout, Layout::PathTag { .. } | Layout::Tag);
        let mut verdict = Ok(());
        if from_tag {
            verdict = *self.tag_checks.get_or(&rec.tag, || check_component_path(&rec.tag));
            self.scratch.push_str(&rec.tag);
        }
        if verdict.is_ok() && self.scratch.len() > MAX_PATH {
            verdict = Err(Refusal::LongPath);
        }
        let root_len = match self.layout {
            Layout::PathFile { .. } | Layout::PathTag { .. } => Some(self.prefix.root.len()),
            Layout::Tag => self.tag_root_len(&rec.tag),
            Layout::File { .. } => None,
        };
        if let Err(why) = verdict {
            counters.path_refused.inc();
            let tag: String = rec.tag.chars().take(256).collect();
            warn_limited!(self.refused_warn, output = %self.instance, tag = ?tag, reason = why.as_str(), "refused an output path built from the tag");
            let Some(fallback) = &self.fallback else {
                counters.dropped_records.inc();
                return;
            };
            self.scratch.clear();
            let absolute = fallback.starts_with('/');
            if let (false, Some(n)) = (absolute, root_len) {
                match self.layout {
                    Layout::Tag => self.scratch.push_str(&rec.tag[..n]),
                    _ => self.scratch.push_str(&self.prefix.root),
                }
                self.scratch.push('/');
            }
            self.scratch.push_str(fallback);
            if absolute {
                self.append(rec, None, counters);
                return;
            }
        }
        self.append(rec, root_len, counters);
    }

    fn append(&mut self, rec: &Record, root_len: Option<usize>, counters: &OutputCounters) {
        let root = root_len.and_then(|n| self.scratch.get(..n));
        let format = &self.format;
        let repeats = self.repeats.as_mut();
        self.cache.append(&self.scratch, root, counters, |buf, header| {
            if buf.is_empty() && header.is_none() {
                *header = format.csv_header(rec);
            }
            match repeats {
                Some(r) if rec.fields.holders() > 0 => r.write(rec, buf, |buf| format.render(rec, buf)),
                _ => format.render(rec, buf),
            }
        });
    }

    pub(crate) fn flush(&mut self, counters: &OutputCounters) {
        self.cache.flush(counters);
    }

    pub(crate) fn reopen(&mut self, counters: &OutputCounters) {
        self.cache.reopen(counters);
    }

    pub(crate) fn close(&mut self, counters: &OutputCounters) {
        self.cache.close(counters);
    }

    fn render_prefix(&mut self, secs: i64) {
        let wall = self.zone.wall_clock(secs);
        let p = &mut self.prefix;
        p.secs = Some(secs);
        p.root.clear();
        p.full.clear();
        match &self.layout {
            Layout::PathFile { path, file } => {
                path.render_into(&wall, &mut p.root);
                p.full.push_str(&p.root);
                p.full.push('/');
                file.render_into(&wall, &mut p.full);
            }
            Layout::PathTag { path } => {
                path.render_into(&wall, &mut p.root);
                p.full.push_str(&p.root);
                p.full.push('/');
            }
            Layout::File { file } => file.render_into(&wall, &mut p.full),
            Layout::Tag => {}
        }
    }
}

/// The value, or `None` with the error recorded.
fn keep<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn positive(p: &Property) -> Result<u64, ConfigError> {
    match prop_u64(p)? {
        0 => Err(ConfigError::at(&p.loc, format!("'{}' must be at least 1", p.key))),
        n => Ok(n),
    }
}

/// A relative path from the config that is joined under `Path`: the same
/// rules as paths from record data.
fn check_config_path(p: &Property) -> Result<(), ConfigError> {
    check_component_path(&p.value).map_err(|why| {
        ConfigError::at(&p.loc, format!("'{}' is not allowed: {}", p.key, why.as_str()))
            .with_hint("name a file inside Path, without '..' or control characters")
    })
}

#[cfg(test)]
mod tests {
    use super::super::Output;
    use super::*;
    use crate::config::classic::read_str;
    use crate::record::{Map, Timestamp, Value};
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    /// The `[OUTPUT]` of the production sidecar, real tabs in the Template.
    const SIDECAR_OUTPUT: &str = "[OUTPUT]\n    Name               file\n    Match              *\n    Format             template\n    Template           time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}\n";

    fn ctx(zone: Zone) -> OutputContext<'static> {
        OutputContext { base_dir: Path::new("."), instance: "file.0", zone }
    }

    fn output(text: &str, zone: Zone) -> Result<Output, Vec<ConfigError>> {
        let doc = read_str(text, Path::new("t.conf"), Path::new(".")).map_err(|e| e.0)?;
        Output::from_section(&doc.sections[0], &ctx(zone))
    }

    fn section(props: &[(&str, &str)]) -> String {
        let mut s = "[OUTPUT]\n    Name file\n".to_owned();
        for (k, v) in props {
            s.push_str(&format!("    {k} {v}\n"));
        }
        s
    }

    fn rec(tag: &str, secs: i64, pairs: &[(&str, &str)]) -> Record {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.push(*k, Value::from(*v));
        }
        Record::new(Arc::from(tag), Timestamp::new(secs, 0), m)
    }

    fn balanced(c: &OutputCounters, given: u64) {
        assert_eq!(c.proc_records.get() + c.dropped_records.get(), given, "received = written + dropped");
    }

    #[test]
    fn sidecar_record_lands_in_the_dated_directory_named_by_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = output(SIDECAR_OUTPUT, Zone::Utc).unwrap();
        assert_eq!(out.describe(), "file: <tag> (template)");
        // §0.2: the re-tagged copy after the Lua filter (first `time` wins
        // nothing: `{time}` is always the event time).
        let tag = format!("{}/2024-1123/istio-ingressgateway-access.log", dir.path().display());
        let r = rec(
            &tag,
            1732379400,
            &[
                ("time", "2024-11-23T16:30:00+09:00"),
                ("vhost", "example.com"),
                ("method", "GET"),
                ("uri", "/a"),
                ("status", "200"),
                ("pri", "190"),
                ("time", "Nov 23 16:30:00"),
                ("ident", "istio-ingressgateway-7d9f-abcde"),
                ("log_file_path", "2024-1123/istio-ingressgateway-access.log"),
            ],
        );
        let c = OutputCounters::default();
        out.write(&r, &c);
        out.close(&c);
        let expected = "time:1732379400.000000\tmethod:GET\turi:/a\tstatus:200\tvhost:example.com\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}\n";
        assert_eq!(fs::read_to_string(&tag).unwrap(), expected);
        assert_eq!(c.proc_records.get(), 1);
        assert_eq!(c.proc_bytes.get(), expected.len() as u64);
    }

    #[test]
    fn dated_file_in_tokyo_splits_at_local_midnight() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        let mut out =
            output(&section(&[("Path", &format!("{d}/%Y")), ("File", "%Y-%m-%d.log"), ("Format", "plain")]), tokyo)
                .unwrap();
        assert_eq!(out.describe(), format!("file: {d}/%Y/%Y-%m-%d.log (plain)"));
        let c = OutputCounters::default();
        // 2024-11-23T14:59:59Z = 23:59:59 JST; one second later is the 24th.
        out.write(&rec("a", 1732373999, &[("n", "1")]), &c);
        out.write(&rec("a", 1732374000, &[("n", "2")]), &c);
        out.write(&rec("a", 1732374001, &[("n", "3")]), &c);
        out.close(&c);
        assert_eq!(fs::read_to_string(dir.path().join("2024/2024-11-23.log")).unwrap(), "{\"n\":\"1\"}\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("2024/2024-11-24.log")).unwrap(),
            "{\"n\":\"2\"}\n{\"n\":\"3\"}\n"
        );
        balanced(&c, 3);
    }

    #[test]
    fn path_and_tag_join_as_strings_even_for_absolute_tags() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let mut out = output(&section(&[("Path", &d)]), Zone::Utc).unwrap();
        let c = OutputCounters::default();
        out.write(&rec("/abs/x.log", 5, &[("k", "v")]), &c);
        out.write(&rec("app", 5, &[("k", "w")]), &c);
        out.close(&c);
        assert_eq!(
            fs::read_to_string(dir.path().join("abs/x.log")).unwrap(),
            "/abs/x.log: [5.000000000, {\"k\":\"v\"}]\n"
        );
        assert_eq!(fs::read_to_string(dir.path().join("app")).unwrap(), "app: [5.000000000, {\"k\":\"w\"}]\n");
    }

    #[test]
    fn unsafe_tags_go_to_the_fallback_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("root");
        let mut out =
            output(&section(&[("Path", d.to_str().unwrap()), ("Format", "template"), ("Template", "{m}")]), Zone::Utc)
                .unwrap();
        let c = OutputCounters::default();
        let long = "x".repeat(256);
        for (i, tag) in
            ["../escape.log", "a/../../b", "nul\0tag", "new\nline", long.as_str(), "ok.log"].iter().enumerate()
        {
            out.write(&rec(tag, 1, &[("m", &i.to_string())]), &c);
        }
        out.close(&c);
        assert_eq!(fs::read_to_string(d.join("gatelog-refused.log")).unwrap(), "0\n1\n2\n3\n4\n");
        assert_eq!(fs::read_to_string(d.join("ok.log")).unwrap(), "5\n");
        assert!(!dir.path().join("escape.log").exists());
        assert_eq!(c.path_refused.get(), 5);
        assert_eq!(c.proc_records.get(), 6);
        balanced(&c, 6);
    }

    #[test]
    fn fallback_drop_and_tag_as_path_checks() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = output(&section(&[("Fallback_File", "drop")]), Zone::Utc).unwrap();
        let c = OutputCounters::default();
        let evil = format!("{}/../x.log", dir.path().display());
        out.write(&rec(&evil, 1, &[("k", "v")]), &c);
        out.write(&rec("", 1, &[("k", "v")]), &c);
        out.close(&c);
        assert_eq!((c.path_refused.get(), c.dropped_records.get(), c.proc_records.get()), (2, 2, 0));
        balanced(&c, 2);

        let fallback = dir.path().join("refused.log");
        let mut out = output(&section(&[("Fallback_File", fallback.to_str().unwrap())]), Zone::Utc).unwrap();
        let c = OutputCounters::default();
        out.write(&rec(&evil, 1, &[("k", "v")]), &c);
        out.close(&c);
        assert!(fs::read_to_string(&fallback).unwrap().ends_with("/../x.log: [1.000000000, {\"k\":\"v\"}]\n"));
        assert_eq!(c.path_refused.get(), 1);
        balanced(&c, 1);
    }

    #[test]
    fn unwritable_destination_counts_errors_and_drops_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        fs::create_dir(&ro).unwrap();
        let mut perms = fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        fs::set_permissions(&ro, perms).unwrap();
        // root ignores directory permissions: then use a regular file where
        // a directory is expected, which fails for everybody.
        let target = if fs::File::create(ro.join("probe")).is_err() {
            ro.clone()
        } else {
            let f = dir.path().join("not-a-dir");
            fs::write(&f, "").unwrap();
            f
        };
        let mut out = output(&section(&[("Path", target.to_str().unwrap()), ("File", "x.log")]), Zone::Utc).unwrap();
        let c = OutputCounters::default();
        out.write(&rec("t", 1, &[("k", "v")]), &c);
        out.write(&rec("t", 1, &[("k", "v")]), &c);
        out.flush(&c);
        out.write(&rec("t", 1, &[("k", "v")]), &c);
        out.close(&c);
        assert_eq!(c.errors.get(), 2);
        assert_eq!(c.dropped_records.get(), 3);
        balanced(&c, 3);
    }

    #[test]
    fn mkdir_off_loses_the_buffer_like_fluent_bit_1_8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing/x.log");
        let mut out = output(&section(&[("File", p.to_str().unwrap()), ("Mkdir", "off")]), Zone::Utc).unwrap();
        let c = OutputCounters::default();
        out.write(&rec("t", 1, &[("k", "v")]), &c);
        out.close(&c);
        assert_eq!((c.errors.get(), c.dropped_records.get()), (1, 1));
        assert!(!p.exists());
    }

    #[test]
    fn csv_header_once_per_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let mut out = output(
            &section(&[("File", p.to_str().unwrap()), ("Format", "csv"), ("CSV_Column_Names", "on")]),
            Zone::Utc,
        )
        .unwrap();
        let c = OutputCounters::default();
        out.write(&rec("t", 1, &[("a", "1"), ("b", "2")]), &c);
        out.flush(&c);
        out.write(&rec("t", 2, &[("a", "3"), ("b", "4")]), &c);
        out.close(&c);
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "timestamp,\"a\",\"b\"\n1.000000000,\"1\",\"2\"\n2.000000000,\"3\",\"4\"\n"
        );
    }

    #[test]
    fn config_mistakes_are_refused_with_locations() {
        let errs =
            output(&section(&[("Pth", "/x"), ("Format", "msgpack"), ("Max_Open_Files", "0")]), Zone::Utc).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("t.conf:3: unknown key 'Pth' for output 'file'")
                && text[0].contains("did you mean 'Path'?"),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("t.conf:5: 'Max_Open_Files' must be at least 1")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("t.conf:4: 'Format msgpack' is not supported")), "{text:?}");

        let errs = output(&section(&[("Path", "/x"), ("File", "../y.log"), ("Fallback_File", "a/../../z")]), Zone::Utc)
            .unwrap_err();
        assert_eq!(errs.len(), 2);
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(|t| t.starts_with("t.conf:4: 'File' is not allowed: '..' component")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("t.conf:5: 'Fallback_File' is not allowed")), "{text:?}");

        let errs = output("[OUTPUT]\n    Name es\n", Zone::Utc).unwrap_err();
        assert!(errs[0].to_string().contains("unknown output plugin 'es'"), "{}", errs[0]);
        assert!(output("[OUTPUT]\n    Name null\n    Match *\n", Zone::Utc).is_ok());
    }

    #[test]
    fn null_counts_every_record_as_processed() {
        let mut out = output("[OUTPUT]\n    Name null\n", Zone::Utc).unwrap();
        assert_eq!(out.plugin(), "null");
        let c = OutputCounters::default();
        out.write(&rec("t", 1, &[]), &c);
        out.close(&c);
        assert_eq!(c.proc_records.get(), 1);
    }
}
