//! The stateful part of the classic reader: one [`Reader`] per load walks a
//! file and everything it `@INCLUDE`s, collecting sections in file order
//! (included sections spliced in at the `@INCLUDE` line) and every error.
//!
//! Invariants: property values are stored raw while reading and expanded
//! once at the end ([`Reader::finish`]), after every `@SET` of every file
//! read has taken effect — Fluent Bit 1.8 runs all meta commands before it
//! applies any section, so a variable set below its use, or in an included
//! file, still counts. `@INCLUDE` paths are expanded when met, with the
//! variables known at that point (the including file's own `@SET`s always
//! are: they run before any of its other lines). A file is read at most
//! once per load, and at most [`MAX_FILES`] files are read.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::line::{classify, Line};
use crate::config::vars::Vars;
use crate::config::{ConfigError, Location, Property, Section};

/// Section names a configuration may contain, upper-cased.
pub(super) const KNOWN_SECTIONS: &[&str] =
    &["SERVICE", "CUSTOM", "INPUT", "FILTER", "OUTPUT", "PARSER", "MULTILINE_PARSER"];

/// Files one load may read (Fluent Bit's `FLB_CF_FILE_NUM_LIMIT`).
pub(super) const MAX_FILES: usize = 1000;

/// Larger files are refused rather than read into memory (Fluent Bit's
/// line limit is 32 MiB too).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// What to do with a well-formed section whose name is not in [`KNOWN_SECTIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnknownSections {
    /// Main configuration: refused, like Fluent Bit's "unexpected section".
    Error,
    /// Parsers files: Fluent Bit's parser loader skips other sections.
    Ignore,
}

/// A file being read, for cycle detection and messages.
struct Open {
    canonical: PathBuf,
    shown: PathBuf,
}

/// Where the current file's properties go.
#[derive(Clone, Copy)]
enum Target {
    /// Before the first section header.
    None,
    /// Under a header that was refused (already reported): dropped quietly.
    Skipped,
    /// Index into `Reader::sections`.
    Section(usize),
}

/// The indentation fixed by a file's first indented property.
struct Indent {
    text: String,
    line: u32,
}

pub(super) struct Reader {
    vars: Vars,
    unknown: UnknownSections,
    sections: Vec<Section>,
    errors: Vec<ConfigError>,
    /// Every file read so far: canonical path and where it was included from
    /// (`None` for a top-level file).
    seen: Vec<(PathBuf, Option<Location>)>,
    stack: Vec<Open>,
    /// The [`MAX_FILES`] error is given once, not once per extra file.
    limit_reported: bool,
}

impl Reader {
    pub(super) fn new(vars: Vars, unknown: UnknownSections) -> Self {
        Reader {
            vars,
            unknown,
            sections: Vec::new(),
            errors: Vec::new(),
            seen: Vec::new(),
            stack: Vec::new(),
            limit_reported: false,
        }
    }

    /// Read a file from disk (with its includes). `included_at` is the
    /// `@INCLUDE` line, `None` for a top-level file.
    pub(super) fn read_path(&mut self, path: &Path, included_at: Option<&Location>) {
        if self.seen.len() >= MAX_FILES {
            if self.limit_reported {
                return;
            }
            self.limit_reported = true;
            self.errors.push(
                ConfigError::new(included_at, format!("more than {MAX_FILES} configuration files to read"))
                    .with_hint("check for an @INCLUDE glob that matches far more files than intended"),
            );
            return;
        }
        let canonical = match fs::canonicalize(path) {
            Ok(c) => c,
            Err(e) => {
                self.errors.push(ConfigError::new(included_at, format!("cannot open '{}': {e}", path.display())));
                return;
            }
        };
        if !self.check_not_seen(&canonical, path, included_at) {
            return;
        }
        let size = fs::metadata(&canonical).map(|m| m.len()).unwrap_or(0);
        if size > MAX_FILE_BYTES {
            self.errors.push(ConfigError::new(
                included_at,
                format!("'{}' is {size} bytes; configuration files are limited to {MAX_FILE_BYTES}", path.display()),
            ));
            return;
        }
        let bytes = match fs::read(&canonical) {
            Ok(b) => b,
            Err(e) => {
                self.errors.push(ConfigError::new(included_at, format!("cannot read '{}': {e}", path.display())));
                return;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let lossy = matches!(text, std::borrow::Cow::Owned(_));
        let dir = parent_dir(path);
        self.seen.push((canonical.clone(), included_at.cloned()));
        self.stack.push(Open { canonical, shown: path.to_path_buf() });
        self.read_text(&text, Arc::new(path.to_path_buf()), &dir, lossy);
        self.stack.pop();
    }

    /// Read text held in memory as if it were the file `name` in `dir`.
    pub(super) fn read_memory(&mut self, text: &str, name: &Path, dir: &Path) {
        // If `name` is a real file, an @INCLUDE of it is a cycle.
        let canonical = fs::canonicalize(name).ok();
        if let Some(c) = &canonical {
            self.seen.push((c.clone(), None));
            self.stack.push(Open { canonical: c.clone(), shown: name.to_path_buf() });
        }
        self.read_text(text, Arc::new(name.to_path_buf()), dir, false);
        if canonical.is_some() {
            self.stack.pop();
        }
    }

    /// Expand every property value and hand back the sections, the
    /// variables (for later files of the same load) and every error.
    pub(super) fn finish(mut self) -> (Vec<Section>, Vars, Vec<ConfigError>) {
        for section in &mut self.sections {
            if section.props.is_empty() {
                tracing::debug!(section = %section.name, location = %section.loc, "section has no properties");
            }
            for prop in &mut section.props {
                prop.value = self.vars.expand_at(&prop.value, &prop.loc);
            }
        }
        (self.sections, self.vars, self.errors)
    }

    /// `false` (and an error) if `canonical` is already being read (a
    /// cycle) or was read before in this load.
    fn check_not_seen(&mut self, canonical: &Path, shown: &Path, included_at: Option<&Location>) -> bool {
        if let Some(pos) = self.stack.iter().position(|o| o.canonical == canonical) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|o| o.shown.display().to_string())
                .chain(std::iter::once(shown.display().to_string()))
                .collect();
            self.errors.push(
                ConfigError::new(included_at, format!("include cycle: {}", chain.join(" -> ")))
                    .with_hint("remove the @INCLUDE that leads back to a file that is already being read"),
            );
            return false;
        }
        if let Some((_, first)) = self.seen.iter().find(|(c, _)| c == canonical) {
            let first = match first {
                Some(loc) => format!("first included at {loc}"),
                None => "it is a top-level configuration file".to_owned(),
            };
            self.errors.push(
                ConfigError::new(included_at, format!("'{}' is included twice ({first})", shown.display()))
                    .with_hint("include every file once"),
            );
            return false;
        }
        true
    }

    fn read_text(&mut self, text: &str, file: Arc<PathBuf>, dir: &Path, lossy: bool) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<(Location, Line<'_>)> = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| {
                let loc = Location { file: file.clone(), line: u32::try_from(i + 1).unwrap_or(u32::MAX) };
                (loc, classify(l.strip_suffix('\r').unwrap_or(l)))
            })
            .collect();

        // Every @SET of the file first, wherever it is written (Fluent Bit
        // runs meta commands before any section).
        for (_, line) in &lines {
            if let Line::Meta { command, args } = line {
                if command.eq_ignore_ascii_case("SET") {
                    if let Some((key, value)) = parse_set(args) {
                        self.vars.set(key, value);
                    }
                }
            }
        }

        let mut target = Target::None;
        let mut indent: Option<Indent> = None;
        for (loc, line) in &lines {
            match *line {
                Line::Blank | Line::Comment => {}
                _ if lossy && line_has_replacement(line) => {
                    self.errors
                        .push(ConfigError::at(loc, "line is not valid UTF-8").with_hint("save the file as UTF-8"));
                }
                Line::Section { name, trailing } => target = self.section(name, trailing, loc),
                Line::UnclosedSection => {
                    self.errors.push(
                        ConfigError::at(loc, "section header has no closing ']'")
                            .with_hint("write the header as [NAME], e.g. [INPUT]"),
                    );
                    target = Target::Skipped;
                }
                Line::Meta { command, args } => {
                    if command.eq_ignore_ascii_case("INCLUDE") {
                        self.include(args, loc, dir);
                    } else if command.eq_ignore_ascii_case("SET") {
                        // Applied above; reported here so errors stay in line order.
                        if parse_set(args).is_none() {
                            self.errors.push(
                                ConfigError::at(loc, format!("malformed @SET '{args}'"))
                                    .with_hint("write @SET NAME=value"),
                            );
                        }
                    } else {
                        self.errors.push(
                            ConfigError::at(loc, format!("unknown command '@{command}'"))
                                .with_hint("the commands are @INCLUDE <file> and @SET <NAME>=<value>"),
                        );
                    }
                }
                Line::Entry { indent: found, key, value } => {
                    self.entry(target, &mut indent, found, key, value, loc);
                }
            }
        }
    }

    fn section(&mut self, name: &str, trailing: &str, loc: &Location) -> Target {
        let upper = name.trim_matches(is_blank).to_ascii_uppercase();
        if !trailing.is_empty() {
            tracing::warn!(location = %loc, ignored = trailing, "text after the section header is ignored");
        }
        if KNOWN_SECTIONS.contains(&upper.as_str()) {
            self.sections.push(Section { name: upper, loc: loc.clone(), props: Vec::new() });
            return Target::Section(self.sections.len() - 1);
        }
        match self.unknown {
            UnknownSections::Error => self.errors.push(
                ConfigError::at(loc, format!("unknown section [{name}]"))
                    .with_hint(format!("valid sections: {}", KNOWN_SECTIONS.join(", "))),
            ),
            UnknownSections::Ignore => {
                tracing::warn!(location = %loc, section = name, "section ignored in a parsers file");
            }
        }
        Target::Skipped
    }

    fn entry(
        &mut self,
        target: Target,
        indent: &mut Option<Indent>,
        found: &str,
        key: &str,
        value: &str,
        loc: &Location,
    ) {
        let idx = match target {
            Target::Skipped => return,
            Target::None => {
                self.errors.push(
                    ConfigError::at(loc, format!("property '{key}' is outside any section"))
                        .with_hint("put properties under a section header such as [SERVICE] or [INPUT]"),
                );
                return;
            }
            Target::Section(i) => i,
        };
        if found.is_empty() {
            let (message, hint) = if key.starts_with('@') {
                (
                    format!("unknown command '{key}'"),
                    "the commands are @INCLUDE <file> and @SET <NAME>=<value>".to_owned(),
                )
            } else {
                let example = indent.as_ref().map_or_else(|| "4 spaces".to_owned(), |i| describe(&i.text));
                (format!("property '{key}' is not indented"), format!("indent it with {example}"))
            };
            self.errors.push(ConfigError::at(loc, message).with_hint(hint));
            return;
        }
        if let Err(e) = check_indent(indent, found, loc) {
            self.errors.push(e);
            return;
        }
        if key.starts_with('[') {
            self.errors.push(
                ConfigError::at(loc, format!("section header '{key}' is indented"))
                    .with_hint("start section headers at column 0"),
            );
            return;
        }
        if key.starts_with('@') {
            self.errors.push(
                ConfigError::at(loc, format!("command '{key}' is indented"))
                    .with_hint("start @INCLUDE and @SET lines at column 0"),
            );
            return;
        }
        if value.is_empty() {
            self.errors.push(
                ConfigError::at(loc, format!("key '{key}' has no value"))
                    .with_hint(format!("write '{key} <value>' on one line, or delete the line")),
            );
            return;
        }
        if let Some(section) = self.sections.get_mut(idx) {
            section.props.push(Property { key: key.to_owned(), value: value.to_owned(), loc: loc.clone() });
        }
    }

    fn include(&mut self, raw: &str, loc: &Location, dir: &Path) {
        let given = self.vars.expand_at(raw, loc);
        if given.is_empty() {
            self.errors.push(ConfigError::at(loc, "@INCLUDE without a file").with_hint("write @INCLUDE <file>"));
            return;
        }
        let files = if given.contains('*') {
            match glob_files(&given, dir) {
                Ok(files) if files.is_empty() => {
                    self.errors.push(
                        ConfigError::at(loc, format!("@INCLUDE pattern '{given}' matches no file"))
                            .with_hint(format!("relative patterns are tried as given, then from '{}'", dir.display())),
                    );
                    return;
                }
                Ok(files) => files,
                Err(message) => {
                    self.errors.push(ConfigError::at(loc, message));
                    return;
                }
            }
        } else {
            match find_file(&given, dir) {
                Some(path) => vec![path],
                None => {
                    self.errors.push(
                        ConfigError::at(loc, format!("included file '{given}' not found"))
                            .with_hint(format!("relative paths are tried as given, then from '{}'", dir.display())),
                    );
                    return;
                }
            }
        };
        for file in files {
            self.read_path(&file, Some(loc));
        }
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `NAME=value` of an `@SET`, both trimmed. The value is taken literally:
/// `${...}` in it is expanded where the variable is used (no re-expansion).
fn parse_set(args: &str) -> Option<(&str, &str)> {
    let (key, value) = args.split_once('=')?;
    let key = key.trim_matches(is_blank);
    (!key.is_empty()).then(|| (key, value.trim_matches(is_blank)))
}

fn line_has_replacement(line: &Line<'_>) -> bool {
    let has = |s: &str| s.contains('\u{fffd}');
    match *line {
        Line::Blank | Line::Comment | Line::UnclosedSection => false,
        Line::Section { name, trailing } => has(name) || has(trailing),
        Line::Meta { command, args } => has(command) || has(args),
        Line::Entry { key, value, .. } => has(key) || has(value),
    }
}

/// Directory a file's relative includes are tried from.
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `given` as is if it exists, else relative to `dir`.
fn find_file(given: &str, dir: &Path) -> Option<PathBuf> {
    let p = Path::new(given);
    if p.exists() {
        return Some(p.to_path_buf());
    }
    let alt = dir.join(p);
    (p.is_relative() && alt.exists()).then_some(alt)
}

/// Regular files matching `pattern` (as given, else relative to `dir`),
/// sorted so the include order does not depend on the directory listing.
fn glob_files(pattern: &str, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let run = |pat: &str| -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob(pat).map_err(|e| format!("bad @INCLUDE pattern '{pat}': {e}"))?;
        let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
        files.sort();
        Ok(files)
    };
    let files = run(pattern)?;
    if !files.is_empty() || Path::new(pattern).is_absolute() {
        return Ok(files);
    }
    // The directory part is literal: escape it so a `[` in it is not a class.
    let base = glob::Pattern::escape(&dir.to_string_lossy());
    run(&format!("{}/{pattern}", base.trim_end_matches('/')))
}

/// Check a property line's indentation against the file's, fixing the
/// file's on its first indented property.
fn check_indent(indent: &mut Option<Indent>, found: &str, loc: &Location) -> Result<(), ConfigError> {
    if found.contains(' ') && found.contains('\t') {
        return Err(ConfigError::at(loc, format!("indentation mixes tabs and spaces ({})", describe(found)))
            .with_hint("indent with spaces only or with tabs only"));
    }
    let Some(expected) = indent.as_ref() else {
        *indent = Some(Indent { text: found.to_owned(), line: loc.line });
        return Ok(());
    };
    if expected.text == found {
        return Ok(());
    }
    let kind = |s: &str| s.starts_with('\t');
    let message = if kind(&expected.text) == kind(found) {
        format!("invalid indentation: {} where this file uses {}", describe(found), describe(&expected.text))
    } else {
        format!(
            "inconsistent use of tab and space: {} where this file uses {}",
            describe(found),
            describe(&expected.text)
        )
    };
    Err(ConfigError::at(loc, message).with_hint(format!(
        "indent every property of this file exactly like line {} ({})",
        expected.line,
        describe(&expected.text)
    )))
}

/// "4 spaces", "1 tab".
fn describe(indent: &str) -> String {
    let spaces = indent.chars().filter(|&c| c == ' ').count();
    let tabs = indent.chars().filter(|&c| c == '\t').count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (spaces, tabs) {
        (s, 0) => plural(s, "space"),
        (0, t) => plural(t, "tab"),
        (s, t) => format!("{} and {}", plural(s, "space"), plural(t, "tab")),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::super::{read_file, read_str_with};
    use crate::config::vars::Vars;
    use crate::config::{ConfigErrors, Document};

    fn vars() -> Vars {
        Vars::with_env([("ENV_HOST", "web-1")])
    }

    fn read(text: &str) -> Result<Document, ConfigErrors> {
        read_str_with(text, Path::new("t.conf"), Path::new("."), vars())
    }

    fn errors(text: &str) -> Vec<String> {
        read(text).expect_err("should fail").0.iter().map(ToString::to_string).collect()
    }

    fn values(doc: &Document) -> Vec<(String, &str, &str)> {
        doc.sections
            .iter()
            .flat_map(|s| s.props.iter().map(move |p| (s.name.clone(), p.key.as_str(), p.value.as_str())))
            .collect()
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn comments_blank_lines_and_hash_in_values() {
        let doc =
            read("# top\n\n[input]\n  # comment at another indent\n    Name syslog # not a comment\n \t\n    Tag #x\n")
                .expect("reads");
        assert_eq!(values(&doc), [("INPUT".into(), "Name", "syslog # not a comment"), ("INPUT".into(), "Tag", "#x")]);
        assert_eq!(doc.sections[0].props[1].loc.line, 7);
    }

    #[test]
    fn crlf_lines_and_tab_separators() {
        let doc =
            read("[OUTPUT]\r\n    Name\tfile\r\n    Template a:{a}\tb:{b}\r\n    Path \\t\"q\"\r\n").expect("reads");
        assert_eq!(
            values(&doc),
            [
                ("OUTPUT".into(), "Name", "file"),
                ("OUTPUT".into(), "Template", "a:{a}\tb:{b}"),
                ("OUTPUT".into(), "Path", "\\t\"q\""),
            ]
        );
    }

    #[test]
    fn duplicate_keys_kept_in_order_and_empty_sections_fine() {
        let doc = read("[SERVICE]\n[FILTER]\n  Rule a\n  rule b\n  Rule c\n").expect("reads");
        assert!(doc.sections[0].props.is_empty());
        let rules: Vec<&str> = doc.sections[1].get_all("RULE").map(|p| p.value.as_str()).collect();
        assert_eq!(rules, ["a", "b", "c"]);
    }

    #[test]
    fn indentation_errors_name_the_line_and_expected_indent() {
        let text = "[INPUT]\n    Name syslog\n  Tag x\n\tPath y\n     Mode z\nParser p\n \tX y\n    Ok yes\n";
        assert_eq!(
            errors(text),
            [
                "t.conf:3: invalid indentation: 2 spaces where this file uses 4 spaces \
                 (fix: indent every property of this file exactly like line 2 (4 spaces))",
                "t.conf:4: inconsistent use of tab and space: 1 tab where this file uses 4 spaces \
                 (fix: indent every property of this file exactly like line 2 (4 spaces))",
                "t.conf:5: invalid indentation: 5 spaces where this file uses 4 spaces \
                 (fix: indent every property of this file exactly like line 2 (4 spaces))",
                "t.conf:6: property 'Parser' is not indented (fix: indent it with 4 spaces)",
                "t.conf:7: indentation mixes tabs and spaces (1 space and 1 tab) \
                 (fix: indent with spaces only or with tabs only)",
            ]
        );
    }

    #[test]
    fn syntax_errors_are_all_collected_with_file_and_line() {
        let text = "Name early\n[INPUT]\n    Name\n[BOGUS]\n    Ignored here\n[OUTPUT\n    Also ignored\n\
                    @FOO bar\n[FILTER]\n    [INPUT]\n    @SET X=1\n@SET novalue\n";
        let errs = errors(text);
        assert_eq!(
            errs,
            [
                "t.conf:1: property 'Name' is outside any section \
                 (fix: put properties under a section header such as [SERVICE] or [INPUT])",
                "t.conf:3: key 'Name' has no value (fix: write 'Name <value>' on one line, or delete the line)",
                "t.conf:4: unknown section [BOGUS] \
                 (fix: valid sections: SERVICE, CUSTOM, INPUT, FILTER, OUTPUT, PARSER, MULTILINE_PARSER)",
                "t.conf:6: section header has no closing ']' (fix: write the header as [NAME], e.g. [INPUT])",
                "t.conf:8: unknown command '@FOO' (fix: the commands are @INCLUDE <file> and @SET <NAME>=<value>)",
                "t.conf:10: section header '[INPUT]' is indented (fix: start section headers at column 0)",
                "t.conf:11: command '@SET' is indented (fix: start @INCLUDE and @SET lines at column 0)",
                "t.conf:12: malformed @SET 'novalue' (fix: write @SET NAME=value)",
            ]
        );
    }

    #[test]
    fn set_applies_before_and_after_its_line_and_env_follows() {
        let text = "[INPUT]\n    Path ${DIR}/sock\n@set DIR = /tmp/x\n    Tag ${DIR}.${ENV_HOST}\n\
                    @SET ENV_HOST=overridden\n    Mode ${MODE:-unix_udp}\n    Parser ${UNSET}x\n    Lit $5 ${\n";
        let doc = read(text).expect("reads");
        assert_eq!(
            values(&doc),
            [
                ("INPUT".into(), "Path", "/tmp/x/sock"),
                ("INPUT".into(), "Tag", "/tmp/x.overridden"),
                ("INPUT".into(), "Mode", "unix_udp"),
                ("INPUT".into(), "Parser", "x"),
                ("INPUT".into(), "Lit", "$5 ${"),
            ]
        );
        let doc = read("[INPUT]\n    Tag ${ENV_HOST}-${MODE:-udp}\n").expect("reads");
        assert_eq!(doc.sections[0].value("Tag"), Some("web-1-udp"));
    }

    #[test]
    fn invalid_utf8_is_an_error_only_outside_comments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.conf");
        fs::write(&path, b"# caf\xe9\n[INPUT]\n    Name caf\xe9\n").expect("write");
        let errs = read_file(&path).expect_err("bad byte").0;
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!("{}:3: line is not valid UTF-8 (fix: save the file as UTF-8)", path.display())
        );
    }

    #[test]
    fn include_relative_to_the_including_file_spliced_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // Each file fixes its own indentation.
        write(d, "sub/inputs.conf", "[INPUT]\n\tName syslog\n@INCLUDE more.conf\n");
        write(d, "sub/more.conf", "[INPUT]\n  Name dummy\n");
        let main = write(
            d,
            "main.conf",
            "@SET SUB=sub\n[SERVICE]\n    Flush 1\n@include ${SUB}/inputs.conf\n    Grace 2\n[OUTPUT]\n    Name null\n",
        );
        let doc = read_file(&main).expect("reads");
        let names: Vec<(&str, Option<&str>)> =
            doc.sections.iter().map(|s| (s.name.as_str(), s.value("name"))).collect();
        assert_eq!(
            names,
            [("SERVICE", None), ("INPUT", Some("syslog")), ("INPUT", Some("dummy")), ("OUTPUT", Some("null"))]
        );
        // A property after the @INCLUDE still belongs to the including file's section.
        assert_eq!(doc.sections[0].value("Grace"), Some("2"));
        assert_eq!(doc.sections[2].props[0].loc.to_string(), format!("{}:2", d.join("sub/more.conf").display()));
        assert_eq!(doc.base_dir, d);
    }

    #[test]
    fn include_glob_is_sorted_and_skips_non_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write(d, "conf.d/b.conf", "[OUTPUT]\n    Name b\n");
        write(d, "conf.d/a.conf", "[OUTPUT]\n    Name a\n");
        write(d, "conf.d/c.txt", "[OUTPUT]\n    Name c\n");
        let main = write(d, "main.conf", "@INCLUDE conf.d/*.conf\n");
        let doc = read_file(&main).expect("reads");
        let names: Vec<&str> = doc.sections.iter().filter_map(|s| s.value("Name")).collect();
        assert_eq!(names, ["a", "b"]);

        let main = write(d, "empty.conf", "@INCLUDE nothing/*.conf\n");
        let errs = read_file(&main).expect_err("no match").0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .starts_with(&format!("{}:1: @INCLUDE pattern 'nothing/*.conf' matches no file", main.display())));
    }

    #[test]
    fn include_cycle_twice_and_missing_are_errors_at_the_include_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let a = write(d, "a.conf", "[INPUT]\n    Name a\n@INCLUDE b.conf\n");
        let b = write(d, "b.conf", "[INPUT]\n    Name b\n\n@INCLUDE a.conf\n");
        let errs = read_file(&a).expect_err("cycle").0;
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!(
                "{}:4: include cycle: {} -> {} -> {} \
                 (fix: remove the @INCLUDE that leads back to a file that is already being read)",
                b.display(),
                a.display(),
                b.display(),
                d.join("a.conf").display()
            )
        );

        write(d, "x.conf", "[INPUT]\n    Name x\n");
        let twice = write(d, "twice.conf", "@INCLUDE x.conf\n@INCLUDE x.conf\n");
        let errs = read_file(&twice).expect_err("twice").0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(&format!(
            "{t}:2: '{x}' is included twice (first included at {t}:1)",
            t = twice.display(),
            x = d.join("x.conf").display()
        )));

        let missing = write(d, "missing.conf", "[INPUT]\n    Name m\n@INCLUDE nope.conf\n");
        let errs = read_file(&missing).expect_err("missing").0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .starts_with(&format!("{}:3: included file 'nope.conf' not found", missing.display())));
    }

    #[test]
    fn more_than_max_files_is_one_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for i in 0..super::MAX_FILES {
            write(d, &format!("conf.d/{i:04}.conf"), "[INPUT]\n    Name x\n");
        }
        let main = write(d, "main.conf", "@INCLUDE conf.d/*.conf\n");
        let errs = read_file(&main).expect_err("too many").0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .starts_with(&format!("{}:1: more than 1000 configuration files to read", main.display())));
    }

    #[test]
    fn missing_main_file_is_an_error() {
        let errs = read_file(Path::new("/no/such/fluent-bit.conf")).expect_err("missing").0;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with("cannot open '/no/such/fluent-bit.conf': "));
    }
}
