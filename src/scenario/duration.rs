//! Simulated durations as people write them in scenario files: `"0s"`,
//! `"20s"`, `"15m"`, `"1h30m"`, `"500ms"`.
//!
//! Every time in a scenario is *simulated* time: "retry in 15 minutes" means
//! fifteen minutes on the simulation's clock, which the conductor may play
//! back in a few real seconds (see `conductor`).

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of simulated time, parsed from text like `"1m30s"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub Duration);

impl SimDuration {
    pub fn from_secs(secs: u64) -> Self {
        SimDuration(Duration::from_secs(secs))
    }

    /// Parses `"90s"`, `"1h30m"`, `"250ms"` or a bare `"0"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(SimDuration(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        if rest.is_empty() {
            return Err("an empty duration".into());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("\"{text}\""));
            }
            let number: u64 = rest[..digits].parse().map_err(|_| format!("\"{text}\""))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(number),
                "s" => Duration::from_secs(number),
                "m" => Duration::from_secs(number.saturating_mul(60)),
                "h" => Duration::from_secs(number.saturating_mul(3600)),
                "d" => Duration::from_secs(number.saturating_mul(86_400)),
                _ => return Err(format!("\"{text}\"")),
            };
            total = total.saturating_add(part);
        }
        Ok(SimDuration(total))
    }
}

impl fmt::Display for SimDuration {
    /// Writes the shortest exact form: `1h30m`, `20s`, `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return write!(f, "0s");
        }
        let (h, m, s, rest_ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        if rest_ms > 0 {
            write!(f, "{rest_ms}ms")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SimDuration::parse(&text)
            .map_err(|found| serde::de::Error::custom(format!("found {found}, expected a duration like \"20s\", \"15m\", \"1h30m\" or \"500ms\"")))
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for SimDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SimDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(0|([0-9]+(ms|s|m|h|d))+)$",
            "description": "Simulated time, e.g. \"20s\", \"15m\", \"1h30m\", \"500ms\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, ms, shown) in [
            ("0", 0, "0s"),
            ("20s", 20_000, "20s"),
            ("1m30s", 90_000, "1m30s"),
            ("2h", 7_200_000, "2h"),
            ("1h0m5s", 3_605_000, "1h5s"),
            ("250ms", 250, "250ms"),
        ] {
            let d = SimDuration::parse(text).unwrap();
            assert_eq!(d.0.as_millis(), ms, "{text}");
            assert_eq!(d.to_string(), shown);
        }
        for bad in ["", "s", "20", "20 s", "1x", "-5s", "5sec"] {
            assert!(SimDuration::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
