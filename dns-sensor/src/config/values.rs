//! How the settings file writes values: durations, sizes, ports, counts; the
//! deserializers that check them, so a bad value's error names its line.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::Nanos;

pub(crate) fn nanos(d: Duration) -> Nanos {
    d.as_nanos().min(Nanos::MAX as u128) as Nanos
}

/// Parses a duration the way the settings file and the command line write it:
/// `"4h"`, `"15m"`, `"1h 30m"`, `"90s"`, or `"0"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write e.g. \"4h\", \"15m\", \"90s\")")
    })
}

pub(crate) fn any_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn positive_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let d = any_duration(de)?;
    if d.is_zero() {
        return Err(serde::de::Error::custom("must be longer than zero"));
    }
    Ok(d)
}

pub(crate) fn positive_u64<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    match u64::deserialize(de)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

/// Most sample names an alert may list: they are kept for every domain of every slot.
pub const MAX_SAMPLE_NAMES: usize = 100;

pub(crate) fn sample_count<'de, D: Deserializer<'de>>(de: D) -> Result<usize, D::Error> {
    match usize::deserialize(de)? {
        n if n > MAX_SAMPLE_NAMES => Err(serde::de::Error::custom(format!(
            "must be at most {MAX_SAMPLE_NAMES}"
        ))),
        n => Ok(n),
    }
}

pub(crate) fn positive_usize<'de, D: Deserializer<'de>>(de: D) -> Result<usize, D::Error> {
    match usize::deserialize(de)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

/// Parses a size as the settings file writes it: a whole number of bytes, or a number
/// with a binary unit (`KiB`, `MiB`, `GiB`, `TiB`; spaces allowed), e.g. `"1GiB"`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: write e.g. \"1GiB\" or \"512MiB\""))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {text:?}: use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

pub(crate) fn byte_size<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    let text = String::deserialize(de)?;
    match parse_byte_size(&text).map_err(serde::de::Error::custom)? {
        // Below this even a few domains per slot would not fit.
        n if n < 1 << 20 => Err(serde::de::Error::custom("must be at least 1MiB")),
        n => Ok(n),
    }
}

pub(crate) fn port_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<u16>, D::Error> {
    let ports = Vec::<u16>::deserialize(de)?;
    if ports.is_empty() {
        return Err(serde::de::Error::custom("at least one port is needed"));
    }
    if ports.contains(&0) {
        return Err(serde::de::Error::custom("port 0 is not a port"));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(14_400));
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon").is_err());
    }
}
