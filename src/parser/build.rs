//! From a `[PARSER]` section to a [`Parser`]: every key is checked against
//! [`PARSER_OPTIONS`], every value is validated and compiled here (regex,
//! `Time_Format`, `Types`, decoders), so a parser that was built cannot fail
//! for configuration reasons at run time. All problems are reported at once,
//! each at its own line.

use super::{decode, regex::RegexParser, strptime::TimeFormat, time::TimeRule, types, Format, Parser};
use crate::config::schema::{check_keys, OptionSpec};
use crate::config::units::prop_bool;
use crate::config::{ConfigError, Property, Section};
use crate::ratelimit::RateLimiter;
use crate::zone::{parse_offset, Zone};

const fn opt(name: &'static str, default: Option<&'static str>, desc: &'static str) -> OptionSpec {
    OptionSpec { name, default, desc }
}

/// Keys of a `[PARSER]` section.
pub const PARSER_OPTIONS: &[OptionSpec] = &[
    opt("Name", None, "parser name, referenced by filters and inputs (required)"),
    opt("Format", None, "regex, json, ltsv, logfmt, or gatelog's rfc3164 (required)"),
    opt("Regex", None, "Onigmo/Ruby pattern; named groups become fields (Format regex)"),
    opt("Time_Key", Some("time"), "field holding the event time"),
    opt("Time_Format", None, "strptime format of the time field (%L = fraction)"),
    opt("Time_Keep", Some("off"), "keep the time field in the record (on by default for rfc3164)"),
    opt("Time_Strict", Some("on"), "the whole time field must match Time_Format"),
    opt("Time_Offset", None, "fixed offset for zone-less times, e.g. +0900 (replaces the zone)"),
    opt("Time_Zone", None, "gatelog: IANA zone for zone-less times (default: TZ)"),
    opt(
        "Time_System_Timezone",
        Some("off"),
        "accepted for compatibility; gatelog always reads zone-less times in TZ unless Time_Zone/Time_Offset",
    ),
    opt("Types", None, "casts: 'key:integer key2:float key3:bool key4:hex key5:string'"),
    opt("Skip_Empty_Values", Some("on"), "omit named groups that matched an empty string (regex)"),
    opt("Decode_Field", None, "'<decoder> <field> [try_next|do_next]'; json merges keys into the record"),
    opt("Decode_Field_As", None, "'<decoder> <field> [try_next|do_next]'; replaces the field's value"),
    opt("logfmt_no_bare_keys", Some("off"), "logfmt: a key without '=value' fails the line"),
];

const FORMATS: &str = "regex, json, ltsv, logfmt, rfc3164, raw";

fn bool_or(section: &Section, key: &str, default: bool, errors: &mut Vec<ConfigError>) -> bool {
    match section.get(key) {
        None => default,
        Some(p) => prop_bool(p).unwrap_or_else(|e| {
            errors.push(e);
            default
        }),
    }
}

/// The first value of `key`; a repeated single-valued key is reported, as
/// only the first counts (Fluent Bit's lookup also returns the first).
fn single<'a>(section: &'a Section, key: &'a str) -> Option<&'a Property> {
    let mut all = section.get_all(key);
    let first = all.next()?;
    if let Some(again) = all.next() {
        tracing::warn!(at = %again.loc, key = %again.key, first = %first.loc, "key repeated in [PARSER]; the first value is used");
    }
    Some(first)
}

pub(crate) fn from_section(section: &Section) -> Result<Parser, Vec<ConfigError>> {
    let name = section.value("name").map(str::trim).unwrap_or("");
    let mut errors = check_keys(section, if name.is_empty() { "?" } else { name }, &[PARSER_OPTIONS]);
    if name.is_empty() {
        errors.push(ConfigError::at(&section.loc, "[PARSER] section without a Name").with_hint("add 'Name my_parser'"));
    }

    let format_prop = single(section, "format");
    let format_name = format_prop.map(|p| p.value.trim().to_ascii_lowercase());
    let is_rfc3164 = format_name.as_deref() == Some("rfc3164");

    let skip_empty = bool_or(section, "skip_empty_values", true, &mut errors);
    let regex = single(section, "regex");
    let format = match (format_prop, format_name.as_deref()) {
        (None, _) => {
            errors.push(
                ConfigError::at(&section.loc, format!("parser '{name}' has no Format"))
                    .with_hint(format!("add 'Format <{}>'", FORMATS.replace(", ", "|"))),
            );
            None
        }
        (Some(p), Some("regex")) => match regex {
            None => {
                errors.push(
                    ConfigError::at(&p.loc, format!("parser '{name}' has Format regex but no Regex"))
                        .with_hint("add 'Regex ^(?<field>...)$'"),
                );
                None
            }
            Some(r) => match RegexParser::compile(&r.value, skip_empty) {
                Ok(re) => Some(Format::Regex(re)),
                Err(msg) => {
                    errors.push(ConfigError::at(&r.loc, format!("Regex of parser '{name}': {msg}")).with_hint(
                        "patterns use Onigmo (Ruby) syntax minus lookaround, backreferences, atomic groups \
                         and possessive quantifiers",
                    ));
                    None
                }
            },
        },
        (Some(_), Some("json")) => Some(Format::Json),
        (Some(_), Some("ltsv")) => Some(Format::Ltsv),
        (Some(_), Some("logfmt")) => {
            Some(Format::Logfmt { no_bare_keys: bool_or(section, "logfmt_no_bare_keys", false, &mut errors) })
        }
        (Some(_), Some("rfc3164")) => Some(Format::Rfc3164),
        (Some(_), Some("raw")) => Some(Format::Raw),
        (Some(p), _) => {
            errors.push(
                ConfigError::at(&p.loc, format!("unknown Format '{}' for parser '{name}'", p.value.trim()))
                    .with_hint(format!("valid formats: {FORMATS}")),
            );
            None
        }
    };
    if let (Some(r), Some(f)) = (regex, format_name.as_deref()) {
        if f != "regex" {
            tracing::warn!(at = %r.loc, parser = name, "Regex is ignored for Format {f}");
        }
    }

    let time_format = match single(section, "time_format") {
        Some(p) if is_rfc3164 => {
            errors.push(
                ConfigError::at(&p.loc, "Time_Format does not apply to Format rfc3164")
                    .with_hint("remove it: rfc3164 reads the BSD or RFC 3339 header time itself"),
            );
            None
        }
        Some(p) => match TimeFormat::compile(p.value.trim()) {
            Ok(f) => Some(f),
            Err(msg) => {
                errors.push(
                    ConfigError::at(&p.loc, format!("Time_Format '{}': {msg}", p.value.trim()))
                        .with_hint("supported: %Y %y %m %d %e %H %M %S %L %b %B %a %j %p %I %z %Z %s %T %D %F %R %%"),
                );
                None
            }
        },
        None => None,
    };

    let offset = single(section, "time_offset").and_then(|p| {
        let v = p.value.trim();
        match parse_offset(v).and_then(chrono::FixedOffset::east_opt) {
            Some(o) => Some((p, Zone::Fixed(o))),
            None => {
                errors.push(
                    ConfigError::at(&p.loc, format!("Time_Offset '{v}' is not an offset"))
                        .with_hint("write +HHMM or -HH:MM, e.g. +0900"),
                );
                None
            }
        }
    });
    let zone = single(section, "time_zone").and_then(|p| {
        let v = p.value.trim();
        match Zone::parse(v) {
            Some(z) => Some((p, z)),
            None => {
                errors.push(
                    ConfigError::at(&p.loc, format!("Time_Zone '{v}' is not a known zone"))
                        .with_hint("write an IANA name such as Asia/Tokyo, or UTC"),
                );
                None
            }
        }
    });
    if let (Some((o, _)), Some((z, _))) = (&offset, &zone) {
        errors.push(
            ConfigError::at(
                &z.loc,
                format!("parser '{name}' sets both Time_Offset (line {}) and Time_Zone", o.loc.line),
            )
            .with_hint("keep one: Time_Zone follows daylight saving, Time_Offset is fixed"),
        );
    }
    // Accepted and validated; gatelog's default is already the process zone.
    bool_or(section, "time_system_timezone", false, &mut errors);

    let time = TimeRule {
        key: single(section, "time_key").map(|p| p.value.trim().to_owned()).unwrap_or_else(|| "time".to_owned()),
        format: time_format,
        keep: bool_or(section, "time_keep", is_rfc3164, &mut errors),
        strict: bool_or(section, "time_strict", true, &mut errors),
        zone: offset.map(|(_, z)| z).or(zone.map(|(_, z)| z)),
    };

    let types = match single(section, "types") {
        Some(p) => types::parse_types(p).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        }),
        None => Vec::new(),
    };

    let mut decoders = Vec::new();
    for p in &section.props {
        let replace = if p.key.eq_ignore_ascii_case("decode_field_as") {
            true
        } else if p.key.eq_ignore_ascii_case("decode_field") {
            false
        } else {
            continue;
        };
        match decode::DecodeRule::from_property(p, replace) {
            Ok(r) => decoders.push(r),
            Err(e) => errors.push(e),
        }
    }

    match format {
        Some(format) if errors.is_empty() => {
            Ok(Parser { name: name.to_owned(), format, time, types, decoders, time_warn: RateLimiter::default() })
        }
        _ => Err(errors),
    }
}
