//! Value units as Fluent Bit reads them: booleans (`on/off/true/false/yes/no`),
//! sizes with decimal multipliers (`32k` = 32000, like `flb_utils_size_to_bytes`),
//! and durations in seconds with optional `s/m/h/d` units.

use super::{ConfigError, Property};

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// `5MB`, `32K`, `10m`, `1G`, `4096`: K/M/G are decimal, as in Fluent Bit.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let num: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

/// `1`, `0.5`, `30s`, `2m`, `2H`, `1d` → seconds.
pub fn parse_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    let end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v >= 0.0).then_some(v)
}

pub fn prop_bool(p: &Property) -> Result<bool, ConfigError> {
    parse_bool(&p.value).ok_or_else(|| {
        ConfigError::at(&p.loc, format!("'{}' must be a boolean, got '{}'", p.key, p.value))
            .with_hint("use on/off, true/false or yes/no")
    })
}

pub fn prop_size(p: &Property) -> Result<u64, ConfigError> {
    parse_size(&p.value).ok_or_else(|| {
        ConfigError::at(&p.loc, format!("'{}' must be a size, got '{}'", p.key, p.value))
            .with_hint("write a number of bytes with an optional K, M or G (decimal), e.g. 32K")
    })
}

pub fn prop_seconds(p: &Property) -> Result<f64, ConfigError> {
    parse_seconds(&p.value).ok_or_else(|| {
        ConfigError::at(&p.loc, format!("'{}' must be a duration, got '{}'", p.key, p.value))
            .with_hint("write seconds, e.g. 1, 0.5, 30s, 2m or 1h")
    })
}

pub fn prop_u64(p: &Property) -> Result<u64, ConfigError> {
    p.value
        .trim()
        .parse()
        .map_err(|_| ConfigError::at(&p.loc, format!("'{}' must be a whole number, got '{}'", p.key, p.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_decimal_like_fluent_bit() {
        assert_eq!(parse_size("32k"), Some(32_000));
        assert_eq!(parse_size("5MB"), Some(5_000_000));
        assert_eq!(parse_size("32768"), Some(32768));
        assert_eq!(parse_size("1.5M"), Some(1_500_000));
        assert_eq!(parse_size("12X"), None);
    }

    #[test]
    fn durations_and_bools() {
        assert_eq!(parse_seconds("2H"), Some(7200.0));
        assert_eq!(parse_seconds("0.5"), Some(0.5));
        assert_eq!(parse_bool("On"), Some(true));
        assert_eq!(parse_bool("NO"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
