//! One line of the classic format, classified with nom. Pure and stateless:
//! indentation rules, sections and includes are the reader's business.
//!
//! Invariants: the input is one line with its `\n` / `\r\n` already removed;
//! "blank" means space or tab only; nothing is unescaped (a `\t` in a value
//! stays backslash + `t`, quotes are literal).

use nom::bytes::complete::{take_till, take_till1, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::{opt, rest};
use nom::sequence::{preceded, tuple};
use nom::IResult;

/// What one line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// Empty, or blanks only. (Fluent Bit lets a blanks-only line fix the
    /// file's indentation; gatelog ignores it, like an empty line.)
    Blank,
    /// First non-blank character is `#`, at any indentation. There are no
    /// end-of-line comments.
    Comment,
    /// `[NAME]` at column 0; `name` is the text up to the first `]`,
    /// `trailing` whatever follows it (ignored, as Fluent Bit does).
    Section { name: &'a str, trailing: &'a str },
    /// `[` at column 0 with no `]`.
    UnclosedSection,
    /// `@COMMAND args` at column 0; `args` trimmed.
    Meta { command: &'a str, args: &'a str },
    /// `<indent>KEY VALUE`: `indent` is the leading run of spaces and tabs,
    /// `value` is trimmed of spaces and tabs at both ends and empty when the
    /// line has only a key.
    Entry { indent: &'a str, key: &'a str, value: &'a str },
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn section(input: &str) -> IResult<&str, Line<'_>> {
    let (input, (name, close)) = preceded(char('['), tuple((take_till(|c| c == ']'), opt(char(']')))))(input)?;
    let line = match close {
        Some(_) => Line::Section { name, trailing: input.trim_matches(is_blank) },
        None => Line::UnclosedSection,
    };
    Ok(("", line))
}

fn meta(input: &str) -> IResult<&str, Line<'_>> {
    let (_, (command, _, args)) =
        preceded(char('@'), tuple((take_till1(is_blank), take_while(is_blank), rest)))(input)?;
    Ok(("", Line::Meta { command, args: args.trim_end_matches(is_blank) }))
}

/// Key and value split at the first run of spaces *or tabs*. Fluent Bit
/// splits at the first space only, so `Key<TAB>value` is refused there;
/// gatelog accepts it because a tab-aligned config is an obvious intent.
/// Tabs inside the value are kept byte for byte (the sidecar's `Template`
/// separates its fields with real tabs).
fn entry(input: &str) -> IResult<&str, Line<'_>> {
    let (_, (indent, key, _, value)) =
        tuple((take_while(is_blank), take_till1(is_blank), take_while(is_blank), rest))(input)?;
    Ok(("", Line::Entry { indent, key, value: value.trim_end_matches(is_blank) }))
}

fn comment(input: &str) -> IResult<&str, Line<'_>> {
    let (input, _) = tuple((take_while(is_blank), char('#')))(input)?;
    Ok((input, Line::Comment))
}

fn blank(input: &str) -> IResult<&str, Line<'_>> {
    let (input, _) = take_while1(is_blank)(input)?;
    if input.is_empty() {
        Ok((input, Line::Blank))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Space)))
    }
}

/// Classify one line.
pub(super) fn classify(line: &str) -> Line<'_> {
    if line.is_empty() {
        return Line::Blank;
    }
    let parsed = nom::branch::alt((blank, comment, section, meta, entry))(line);
    match parsed {
        Ok((_, l)) => l,
        // Unreachable for a non-empty line (`entry` accepts any line with a
        // non-blank character, `blank` every other), but never panic on input.
        Err(_) => Line::Blank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_and_comments() {
        assert_eq!(classify(""), Line::Blank);
        assert_eq!(classify(" \t "), Line::Blank);
        assert_eq!(classify("# top"), Line::Comment);
        assert_eq!(classify("    # indented"), Line::Comment);
        assert_eq!(classify("\t#"), Line::Comment);
    }

    #[test]
    fn sections() {
        assert_eq!(classify("[INPUT]"), Line::Section { name: "INPUT", trailing: "" });
        assert_eq!(classify("[filter]  # x"), Line::Section { name: "filter", trailing: "# x" });
        assert_eq!(classify("[]"), Line::Section { name: "", trailing: "" });
        assert_eq!(classify("[INPUT"), Line::UnclosedSection);
    }

    #[test]
    fn metas() {
        assert_eq!(classify("@INCLUDE a.conf "), Line::Meta { command: "INCLUDE", args: "a.conf" });
        assert_eq!(classify("@set\tX=1"), Line::Meta { command: "set", args: "X=1" });
        assert_eq!(classify("@SET"), Line::Meta { command: "SET", args: "" });
    }

    #[test]
    fn entries_keep_inner_tabs_and_hashes() {
        assert_eq!(
            classify("    Template  a:{a}\tb:{b}\t "),
            Line::Entry { indent: "    ", key: "Template", value: "a:{a}\tb:{b}" }
        );
        assert_eq!(
            classify("\tKey\tvalue # not a comment"),
            Line::Entry { indent: "\t", key: "Key", value: "value # not a comment" }
        );
        assert_eq!(classify("  Regex ^\\t$"), Line::Entry { indent: "  ", key: "Regex", value: "^\\t$" });
        assert_eq!(classify("  Lonely  "), Line::Entry { indent: "  ", key: "Lonely", value: "" });
        assert_eq!(classify("Name x"), Line::Entry { indent: "", key: "Name", value: "x" });
        assert_eq!(classify("    [INPUT]"), Line::Entry { indent: "    ", key: "[INPUT]", value: "" });
    }
}
