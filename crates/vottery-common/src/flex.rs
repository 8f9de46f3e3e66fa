//! Lenient field decoding in the style of Vault's request framework.
//!
//! Vault accepts `"5"` where it documents an integer, `"true"` for a boolean and `"1h"` for a
//! duration in seconds. Vault clients rely on that, so the transit and sys request types decode
//! their fields through these helpers.

use serde::Deserialize;
use serde::de::{self, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrText {
    Bool(bool),
    Text(String),
}

/// An optional integer given as a JSON number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Option::<NumberOrText>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrText::Int(value)) => Ok(Some(value)),
        Some(NumberOrText::Float(value)) if value.fract() == 0.0 && value.abs() < 9.0e15 => {
            Ok(Some(value as i64))
        }
        Some(NumberOrText::Float(value)) => Err(de::Error::custom(format!(
            "expected an integer, got {value}"
        ))),
        Some(NumberOrText::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(NumberOrText::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected an integer, got {text:?}"))),
    }
}

/// An optional boolean given as a JSON boolean or `"true"`/`"false"`/`"1"`/`"0"`.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Option::<BoolOrText>::deserialize(deserializer)? {
        None => Ok(None),
        Some(BoolOrText::Bool(value)) => Ok(Some(value)),
        Some(BoolOrText::Text(text)) => match text.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "t" | "1" => Ok(Some(true)),
            "false" | "f" | "0" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!(
                "expected a boolean, got {text:?}"
            ))),
        },
    }
}

/// An optional duration in whole seconds, given as a number of seconds or as text such as
/// `"90"`, `"90s"`, `"15m"`, `"1h"`, `"1h30m"` or `"7d"`.
pub fn opt_duration_secs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    match Option::<NumberOrText>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrText::Int(value)) => Ok(Some(value)),
        Some(NumberOrText::Float(value)) => Ok(Some(value as i64)),
        Some(NumberOrText::Text(text)) => parse_duration_secs(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("invalid duration {text:?}"))),
    }
}

/// Parses `"90"`, `"90s"`, `"15m"`, `"1h30m"`, `"7d"` into seconds.
pub fn parse_duration_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let amount: i64 = digits.parse().ok()?;
        digits.clear();
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(amount.checked_mul(unit)?)?;
    }
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "opt_i64")]
        number: Option<i64>,
        #[serde(default, deserialize_with = "opt_bool")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "opt_duration_secs")]
        period: Option<i64>,
    }

    fn parse(json: &str) -> Result<Fields, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_booleans_and_durations_accept_vault_spellings() {
        let fields = parse(r#"{"number":"7","flag":"true","period":"1h30m"}"#).unwrap();
        assert_eq!(fields.number, Some(7));
        assert_eq!(fields.flag, Some(true));
        assert_eq!(fields.period, Some(5_400));
        let fields = parse(r#"{"number":3,"flag":false,"period":86400}"#).unwrap();
        assert_eq!(
            (fields.number, fields.flag, fields.period),
            (Some(3), Some(false), Some(86_400))
        );
        let fields = parse("{}").unwrap();
        assert_eq!(
            (fields.number, fields.flag, fields.period),
            (None, None, None)
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        assert!(parse(r#"{"number":"seven"}"#).is_err());
        assert!(parse(r#"{"number":1.5}"#).is_err());
        assert!(parse(r#"{"flag":"maybe"}"#).is_err());
        assert!(parse(r#"{"period":"1y"}"#).is_err());
        assert!(parse(r#"{"period":"10"}"#).is_ok());
    }
}
