//! The Fluent Bit classic (`.conf`) format: a main file with its
//! `@INCLUDE`s and `@SET`s read into [`Document`] sections (`read_file`,
//! `read_str`), then the parsers it needs gathered from `Parsers_File`
//! entries, `-R` files and the document itself (`load`).
//!
//! Invariants: sections come out in file order with includes spliced in at
//! their `@INCLUDE` line; names are upper-cased, keys kept as written,
//! values `${VAR}`-expanded and otherwise byte for byte (tabs included, no
//! escapes); every problem found is returned, each with `file:line`. Where
//! gatelog is deliberately more lenient than Fluent Bit 1.8 (tab as the
//! key/value separator, comments at any indentation, blank-only lines,
//! `[PARSER]` in the main file, sorted globs) the spot says so.

mod line;
mod reader;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use self::reader::{parent_dir, Reader, UnknownSections};
use super::vars::Vars;
use super::{resolve_path, ConfigError, ConfigErrors, Document, Section};

/// Read a main config file with everything it includes. Sections of any of
/// the known kinds (SERVICE, CUSTOM, INPUT, FILTER, OUTPUT, PARSER,
/// MULTILINE_PARSER) are returned in file order (includes spliced in at the
/// @INCLUDE position). `base_dir` = directory of `path`.
pub fn read_file(path: &Path) -> Result<Document, ConfigErrors> {
    let mut reader = Reader::new(Vars::new(), UnknownSections::Error);
    reader.read_path(path, None);
    finish(reader, parent_dir(path))
}

/// Same for text held in memory (the embedded default config); `name` is
/// used in Locations, relative @INCLUDE is resolved against `base_dir`.
pub fn read_str(text: &str, name: &Path, base_dir: &Path) -> Result<Document, ConfigErrors> {
    read_str_with(text, name, base_dir, Vars::new())
}

/// [`read_str`] with given variables (tests use a fixed environment).
pub(crate) fn read_str_with(text: &str, name: &Path, base_dir: &Path, vars: Vars) -> Result<Document, ConfigErrors> {
    let mut reader = Reader::new(vars, UnknownSections::Error);
    reader.read_memory(text, name, base_dir);
    finish(reader, base_dir.to_path_buf())
}

fn finish(reader: Reader, base_dir: PathBuf) -> Result<Document, ConfigErrors> {
    let (sections, _vars, errors) = reader.finish();
    if errors.is_empty() {
        Ok(Document { sections, base_dir })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Everything a run needs: the main document plus every parser section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The main document without its `[PARSER]` / `[MULTILINE_PARSER]`
    /// sections (those moved to `parser_sections`).
    pub doc: Document,
    /// In load order: `-R` files, then `Parsers_File` entries, then the
    /// main document's own. Duplicate names are the consumer's to resolve
    /// (Fluent Bit keeps the first).
    pub parser_sections: Vec<Section>,
}

/// Gather every parser section: from `extra_parsers` (the CLI's `-R`
/// files, loaded first as Fluent Bit loads them while parsing arguments;
/// missing = error), from each `[SERVICE] Parsers_File` in order (relative
/// paths tried as given, then relative to the main file's directory;
/// missing = error at that line), and from `[PARSER]` / `[MULTILINE_PARSER]`
/// sections in the main document (gatelog accepts them there; Fluent Bit
/// 1.8 refuses them). A file named twice is read once.
pub fn load(mut doc: Document, extra_parsers: &[PathBuf]) -> Result<Loaded, ConfigErrors> {
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut parser_sections = Vec::new();
    let mut seen = HashSet::new();
    let mut vars = Vars::new();

    for path in extra_parsers {
        if !path.exists() {
            errors.push(
                ConfigError::new(None, format!("parsers file '{}' (given with -R) not found", path.display()))
                    .with_hint("fix the -R path"),
            );
            continue;
        }
        vars = read_parsers_file(path, vars, &mut seen, &mut parser_sections, &mut errors);
    }

    let entries: Vec<_> = doc.sections_named("SERVICE").flat_map(|s| s.get_all("Parsers_File")).cloned().collect();
    for prop in entries {
        let path = resolve_path(&prop.value, &doc.base_dir);
        if !path.exists() {
            errors.push(ConfigError::at(&prop.loc, format!("parsers file '{}' not found", prop.value)).with_hint(
                format!(
                    "fix the path; a relative one is tried from the current directory, then from '{}'",
                    doc.base_dir.display()
                ),
            ));
            continue;
        }
        vars = read_parsers_file(&path, vars, &mut seen, &mut parser_sections, &mut errors);
    }

    let (parsers, rest): (Vec<Section>, Vec<Section>) =
        doc.sections.into_iter().partition(|s| is_parser_section(&s.name));
    doc.sections = rest;
    parser_sections.extend(parsers);

    if errors.is_empty() {
        Ok(Loaded { doc, parser_sections })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn is_parser_section(name: &str) -> bool {
    name == "PARSER" || name == "MULTILINE_PARSER"
}

/// Read one parsers file (with its own includes and `@SET`s), keeping its
/// parser sections; returns the variables for the next file.
fn read_parsers_file(
    path: &Path,
    vars: Vars,
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<Section>,
    errors: &mut Vec<ConfigError>,
) -> Vars {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        if !seen.insert(canonical) {
            tracing::debug!(path = %path.display(), "parsers file named twice; read once");
            return vars;
        }
    }
    let mut reader = Reader::new(vars, UnknownSections::Ignore);
    reader.read_path(path, None);
    let (sections, vars, errs) = reader.finish();
    errors.extend(errs);
    for s in sections {
        if is_parser_section(&s.name) {
            out.push(s);
        } else {
            tracing::warn!(section = %s.name, location = %s.loc, "section ignored in a parsers file");
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(rel)
    }

    fn props(s: &Section) -> Vec<(&str, &str)> {
        s.props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect()
    }

    #[test]
    fn sidecar_config_loads_with_its_exact_template() {
        let doc = read_file(&fixture("sidecar/fluent-bit.conf")).expect("sidecar config loads");
        let names: Vec<&str> = doc.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["SERVICE", "INPUT", "FILTER", "FILTER", "FILTER", "OUTPUT"]);
        assert_eq!(doc.base_dir, fixture("sidecar"));
        let output = &doc.sections[5];
        assert_eq!(
            output.value("template"),
            Some(
                "time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\t\
                 remote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}"
            )
        );
        assert_eq!(props(&doc.sections[4])[2], ("Rule", "vhost ^(.*)$ /log/output/path/$log_file_path true"));
        assert_eq!(doc.sections[0].value("HTTP_PORT"), Some("2020"));
        assert_eq!(doc.sections[1].value("Tag"), Some("kube.*"));
        let rule = doc.sections[4].get("rule").map(|p| p.loc.to_string());
        assert_eq!(rule, Some(format!("{}:35", fixture("sidecar/fluent-bit.conf").display())));
    }

    #[test]
    fn sidecar_parsers_file_resolves_relative_to_the_main_file() {
        // The test's working directory is the crate root, where no
        // `parsers.conf` exists: the main file's directory must be tried.
        let doc = read_file(&fixture("sidecar/fluent-bit.conf")).expect("loads");
        let loaded = load(doc, &[]).expect("parsers load");
        assert_eq!(loaded.doc.sections.len(), 6);
        let names: Vec<&str> = loaded.parser_sections.iter().filter_map(|s| s.value("Name")).collect();
        assert_eq!(names, ["nginx_access_log", "syslog-rfc3164-local", "json"]);
        assert!(loaded.parser_sections.iter().all(|s| s.name == "PARSER"));
        assert_eq!(
            loaded.parser_sections[1].value("Regex"),
            Some(
                r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$"
            )
        );
        assert_eq!(loaded.parser_sections[1].value("Time_Format"), Some("%b %d %H:%M:%S"));
    }

    #[test]
    fn parsers_from_all_sources_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::write(d.join("a.conf"), "[PARSER]\n    Name a\n    Format json\n").expect("write");
        fs::write(
            d.join("b.conf"),
            "[MULTILINE_PARSER]\n    Name b\n    Type regex\n[INPUT]\n    Name x\n[FOO]\n    Name y\n",
        )
        .expect("write");
        fs::write(d.join("r.conf"), "[PARSER]\n    Name r\n    Format json\n").expect("write");
        let main = "[SERVICE]\n    Parsers_File a.conf\n    Parsers_File b.conf\n    Parsers_File a.conf\n\
                    [PARSER]\n    Name inline\n    Format json\n[INPUT]\n    Name syslog\n";
        let doc = read_str(main, &d.join("main.conf"), d).expect("reads");
        let loaded = load(doc, &[d.join("r.conf")]).expect("loads");
        let names: Vec<&str> = loaded.parser_sections.iter().filter_map(|s| s.value("Name")).collect();
        assert_eq!(names, ["r", "a", "b", "inline"]);
        assert_eq!(loaded.parser_sections[2].name, "MULTILINE_PARSER");
        let kept: Vec<&str> = loaded.doc.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kept, ["SERVICE", "INPUT"]);
    }

    #[test]
    fn missing_parsers_files_are_errors_at_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let main = "[SERVICE]\n    Parsers_File nope.conf\n    Parsers_File /no/such/parsers.conf\n";
        let doc = read_str(main, &d.join("main.conf"), d).expect("reads");
        let errs = load(doc, &[d.join("missing-r.conf")]).expect_err("missing files").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("parsers file '") && text[0].contains("missing-r.conf' (given with -R) not found"));
        let main = d.join("main.conf");
        assert!(
            text[1].starts_with(&format!("{}:2: parsers file 'nope.conf' not found", main.display())),
            "{}",
            text[1]
        );
        assert!(text[2].starts_with(&format!("{}:3: parsers file '/no/such/parsers.conf'", main.display())));
    }

    #[test]
    fn set_variables_of_the_main_file_reach_parsers_file_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::write(d.join("p.conf"), "[PARSER]\n    Name p\n    Format json\n").expect("write");
        let main = "@SET PF=p.conf\n[SERVICE]\n    Parsers_File ${PF}\n";
        let loaded = load(read_str(main, &d.join("main.conf"), d).expect("reads"), &[]).expect("loads");
        assert_eq!(loaded.parser_sections.len(), 1);
    }
}
