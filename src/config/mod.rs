//! Configuration: the Fluent Bit classic format read into sections with
//! `file:line` on every property (`classic`), `${VAR}` expansion (`vars`),
//! value units (`units`), and the option tables every plugin checks its
//! section against (`schema`). Typed, validated settings are built from the
//! sections by each plugin's own `from_section`; any mistake becomes a
//! [`ConfigError`] naming the file, the line and the fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod classic;
pub mod schema;
pub mod units;
pub mod vars;

/// Where a section or property was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    /// 1-based.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A configuration mistake: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub loc: Option<Location>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(loc: Option<&Location>, message: impl Into<String>) -> Self {
        ConfigError { loc: loc.cloned(), message: message.into(), hint: None }
    }

    pub fn at(loc: &Location, message: impl Into<String>) -> Self {
        ConfigError::new(Some(loc), message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (fix: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found, so `--dry-run` can print them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// One `Key value` line, value already `${VAR}`-expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// As written (keys compare case-insensitively).
    pub key: String,
    pub value: String,
    pub loc: Location,
}

/// One `[NAME]` section with its properties in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Upper-cased: `SERVICE`, `INPUT`, `FILTER`, `OUTPUT`, `PARSER`, `MULTILINE_PARSER`.
    pub name: String,
    pub loc: Location,
    pub props: Vec<Property>,
}

impl Section {
    /// First property named `key` (case-insensitive), as Fluent Bit's
    /// property lookups do.
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.props.iter().find(|p| p.key.eq_ignore_ascii_case(key))
    }

    /// Every property named `key`, in order (multi-valued: `Parser`, `Rule`).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Property> + 'a {
        self.props.iter().filter(move |p| p.key.eq_ignore_ascii_case(key))
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|p| p.value.as_str())
    }

    /// The `Name` property, lower-cased (plugin names are case-insensitive).
    pub fn plugin_name(&self) -> Option<String> {
        self.value("name").map(|n| n.to_ascii_lowercase())
    }
}

/// A whole configuration: the main file with its includes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub sections: Vec<Section>,
    /// Directory of the main file; relative `Parsers_File`, `script` … are
    /// tried as given first and then relative to it.
    pub base_dir: PathBuf,
}

impl Document {
    pub fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.name == name)
    }
}

/// Resolve a path the way Fluent Bit does: as given if it exists (or is
/// absolute), else relative to `base_dir`.
pub fn resolve_path(given: &str, base_dir: &Path) -> PathBuf {
    let p = Path::new(given);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let alt = base_dir.join(p);
    if alt.exists() {
        alt
    } else {
        p.to_path_buf()
    }
}
