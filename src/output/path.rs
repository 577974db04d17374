//! Output paths: the dated templates of `Path`/`File` (a gatelog extension),
//! the checks that keep a path built from record data inside its root, and
//! opening a file without letting a symlink lead out of that root.
//!
//! Invariants: `%Y %m %d %H %M` and `%%` are the only conversions (anything
//! else is refused at config load) and render only digits, so dating a path
//! cannot introduce `/` or `..`; a path that came from record data (the tag)
//! is checked by [`check_component_path`] before any file is touched; when a
//! root is set, every directory between it and the file is resolved and
//! checked to be under the canonical root before the file is opened with
//! `O_NOFOLLOW`.

use crate::config::{ConfigError, Property};
use chrono::{Datelike, NaiveDateTime, Timelike};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Longest path accepted (Linux `PATH_MAX`).
pub(crate) const MAX_PATH: usize = 4096;
/// Longest single component accepted (Linux `NAME_MAX`).
pub(crate) const MAX_COMPONENT: usize = 255;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

/// A `Path` or `File` value with its date conversions compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathTemplate {
    parts: Vec<Part>,
    text: String,
}

impl PathTemplate {
    pub(crate) fn parse(p: &Property) -> Result<PathTemplate, ConfigError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = p.value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let part = match chars.next() {
                Some('%') => {
                    lit.push('%');
                    continue;
                }
                Some('Y') => Part::Year,
                Some('m') => Part::Month,
                Some('d') => Part::Day,
                Some('H') => Part::Hour,
                Some('M') => Part::Minute,
                other => {
                    let seq = other.map(|c| format!("%{c}")).unwrap_or_else(|| "a trailing %".into());
                    return Err(ConfigError::at(
                        &p.loc,
                        format!("'{}' has an unsupported date conversion {seq}", p.key),
                    )
                    .with_hint("only %Y %m %d %H %M are rendered (from the record time); write %% for a literal %"));
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            parts.push(part);
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(PathTemplate { parts, text: p.value.clone() })
    }

    /// The value as written in the config.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn is_dated(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    /// Append the rendering for the wall-clock time `wall`.
    pub(crate) fn render_into(&self, wall: &NaiveDateTime, out: &mut String) {
        fn two(out: &mut String, v: u32) {
            out.push(char::from(b'0' + (v / 10 % 10) as u8));
            out.push(char::from(b'0' + (v % 10) as u8));
        }
        for p in &self.parts {
            match p {
                Part::Literal(l) => out.push_str(l),
                Part::Year => {
                    let y = wall.year();
                    if (0..10000).contains(&y) {
                        two(out, y as u32 / 100);
                        two(out, y as u32 % 100);
                    } else {
                        out.push_str(itoa::Buffer::new().format(y));
                    }
                }
                Part::Month => two(out, wall.month()),
                Part::Day => two(out, wall.day()),
                Part::Hour => two(out, wall.hour()),
                Part::Minute => two(out, wall.minute()),
            }
        }
    }
}

/// Why a path built from record data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Empty,
    DotDot,
    Control,
    LongComponent,
    LongPath,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Empty => "empty path",
            Refusal::DotDot => "'..' component",
            Refusal::Control => "control character",
            Refusal::LongComponent => "component longer than 255 bytes",
            Refusal::LongPath => "path longer than 4096 bytes",
        }
    }
}

/// Check a path (or the part of one) that came from record data: not empty,
/// no `..` component, no control character (NUL included), components of at
/// most 255 bytes.
pub(crate) fn check_component_path(s: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return Err(Refusal::Empty);
    }
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(Refusal::Control);
    }
    for comp in s.split('/') {
        if comp == ".." {
            return Err(Refusal::DotDot);
        }
        if comp.len() > MAX_COMPONENT {
            return Err(Refusal::LongComponent);
        }
    }
    Ok(())
}

/// Open `path` for appending (created `0666 & ~umask`). With `root`, the
/// directories below the root are walked one by one (created `0755` when
/// `mkdir`), each resolved and required to stay under the canonical root,
/// and the file itself must not be a symlink. Without a root, missing
/// parents are created with `mkdir -p` when `mkdir`.
pub(crate) fn open_append(path: &str, root: Option<&str>, mkdir: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    let Some(root) = root else {
        return match opts.open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && mkdir => {
                if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                    DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
                }
                opts.open(path)
            }
            other => other,
        };
    };
    // `path` is `root` + "/" + rel, as built by the caller.
    let rel = path.get(root.len()..).unwrap_or("").trim_start_matches('/');
    let (dirs, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", rel),
    };
    let dir = confined_dir(Path::new(root), dirs, mkdir)?;
    opts.custom_flags(libc::O_NOFOLLOW).open(dir.join(name))
}

/// Resolve `root/dirs` one component at a time, creating missing ones when
/// `mkdir`, and refuse any step that leaves the canonical root.
fn confined_dir(root: &Path, dirs: &str, mkdir: bool) -> io::Result<PathBuf> {
    if mkdir && !root.exists() {
        DirBuilder::new().recursive(true).mode(0o755).create(root)?;
    }
    let canon_root = fs::canonicalize(root)?;
    let mut cur = canon_root.clone();
    for comp in dirs.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let next = cur.join(comp);
        match fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                let target = fs::canonicalize(&next)?;
                if !target.starts_with(&canon_root) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is a symlink leading out of the output root {}",
                            next.display(),
                            canon_root.display()
                        ),
                    ));
                }
                cur = target;
            }
            Ok(md) if md.is_dir() => cur = next,
            Ok(_) => return Err(io::Error::other(format!("{} is not a directory", next.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound && mkdir => {
                match DirBuilder::new().mode(0o755).create(&next) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => cur = next,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use chrono::NaiveDate;
    use std::sync::Arc;

    fn prop(v: &str) -> Property {
        Property {
            key: "File".into(),
            value: v.into(),
            loc: Location { file: Arc::new(PathBuf::from("t.conf")), line: 7 },
        }
    }

    #[test]
    fn date_conversions_render_from_wall_clock() {
        let t = PathTemplate::parse(&prop("logs/%Y-%m%d/%H%M-100%%.log")).unwrap();
        assert!(t.is_dated());
        let wall = NaiveDate::from_ymd_opt(2024, 11, 3).unwrap().and_hms_opt(7, 5, 0).unwrap();
        let mut out = String::new();
        t.render_into(&wall, &mut out);
        assert_eq!(out, "logs/2024-1103/0705-100%.log");
        let mut out = String::new();
        PathTemplate::parse(&prop("a%%b")).unwrap().render_into(&wall, &mut out);
        assert_eq!(out, "a%b");
    }

    #[test]
    fn unknown_conversion_is_refused_with_location() {
        let e = PathTemplate::parse(&prop("x-%y.log")).unwrap_err();
        assert!(e.to_string().starts_with("t.conf:7: 'File' has an unsupported date conversion %y"), "{e}");
        assert!(PathTemplate::parse(&prop("x%")).is_err());
    }

    #[test]
    fn record_paths_are_checked() {
        assert_eq!(check_component_path("/log/2024-1123/a.log"), Ok(()));
        assert_eq!(check_component_path("kube.*"), Ok(()));
        assert_eq!(check_component_path("a/../b"), Err(Refusal::DotDot));
        assert_eq!(check_component_path(".."), Err(Refusal::DotDot));
        assert_eq!(check_component_path("a/..b/c"), Ok(()));
        assert_eq!(check_component_path("a\0b"), Err(Refusal::Control));
        assert_eq!(check_component_path("a\nb"), Err(Refusal::Control));
        assert_eq!(check_component_path(&"x".repeat(256)), Err(Refusal::LongComponent));
        assert_eq!(check_component_path(""), Err(Refusal::Empty));
    }

    #[test]
    fn symlink_out_of_root_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        let r = root.path().to_str().unwrap();
        let err = open_append(&format!("{r}/evil/x.log"), Some(r), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(!outside.path().join("x.log").exists());
        // A symlinked file in the root is refused too (O_NOFOLLOW).
        std::os::unix::fs::symlink(outside.path().join("y.log"), root.path().join("y.log")).unwrap();
        assert!(open_append(&format!("{r}/y.log"), Some(r), true).is_err());
        // A symlink that stays inside the root is fine; missing dirs are created.
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        open_append(&format!("{r}/alias/new/z.log"), Some(r), true).unwrap();
        assert!(root.path().join("real/new/z.log").exists());
    }
}
