//! The `vault:v<N>:<base64>` form of ciphertexts, signatures and HMACs, and base64 helpers.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const PREFIX: &str = "vault:v";

/// What a versioned value is, for error messages (`invalid ciphertext: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Ciphertext,
    Signature,
    Hmac,
}

impl ValueKind {
    fn noun(self) -> &'static str {
        match self {
            ValueKind::Ciphertext => "ciphertext",
            ValueKind::Signature => "signature",
            ValueKind::Hmac => "HMAC",
        }
    }
}

/// A parsed `vault:v<N>:<payload>`; the payload is still encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versioned<'a> {
    pub version: u32,
    pub payload: &'a str,
}

/// Formats `vault:v<version>:<base64 of payload>`, encoding straight into the result.
pub fn versioned_b64(version: u32, payload: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(PREFIX.len() + 11 + payload.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    let _ = write!(out, "{version}:");
    STANDARD.encode_string(payload, &mut out);
    out
}

/// Formats `vault:v<version>:<payload>`.
pub fn format_versioned(version: u32, payload: &str) -> String {
    format!("{PREFIX}{version}:{payload}")
}

/// Splits a versioned value, with Vault's error messages.
pub fn parse_versioned(value: &str, kind: ValueKind) -> Result<Versioned<'_>, String> {
    let noun = kind.noun();
    let rest = value
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("invalid {noun}: no prefix"))?;
    let (version, payload) = rest
        .split_once(':')
        .ok_or_else(|| format!("invalid {noun}: wrong number of fields"))?;
    let version: u32 = version
        .parse()
        .map_err(|_| format!("invalid {noun}: version number could not be decoded"))?;
    // Vault treats v0 as v1.
    Ok(Versioned {
        version: version.max(1),
        payload,
    })
}

/// Decodes standard base64 (padded, as Vault clients send it; unpadded accepted too).
pub fn decode_b64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text).or_else(|error| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| error)
    })
}

pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn encode_b64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode_b64_url(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
}

/// Decodes an optional base64 request field; absent and empty both mean "no value".
pub fn decode_optional(field: Option<&str>) -> Result<Option<Vec<u8>>, base64::DecodeError> {
    match field {
        None | Some("") => Ok(None),
        Some(text) => decode_b64(text).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_round_trip() {
        let text = format_versioned(12, "AAEC");
        assert_eq!(versioned_b64(12, &[0, 1, 2]), text);
        assert_eq!(text, "vault:v12:AAEC");
        let parsed = parse_versioned(&text, ValueKind::Ciphertext).unwrap();
        assert_eq!(
            parsed,
            Versioned {
                version: 12,
                payload: "AAEC"
            }
        );
    }

    #[test]
    fn malformed_values_get_vaults_messages() {
        let err = |text| parse_versioned(text, ValueKind::Ciphertext).unwrap_err();
        assert_eq!(err("abc"), "invalid ciphertext: no prefix");
        assert_eq!(
            err("vault:v1"),
            "invalid ciphertext: wrong number of fields"
        );
        assert_eq!(
            err("vault:vx:AA"),
            "invalid ciphertext: version number could not be decoded"
        );
        assert_eq!(
            parse_versioned("vault:v0:AA", ValueKind::Signature)
                .unwrap()
                .version,
            1
        );
        assert_eq!(
            parse_versioned("x", ValueKind::Hmac).unwrap_err(),
            "invalid HMAC: no prefix"
        );
    }

    #[test]
    fn base64_accepts_padded_and_unpadded() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert!(decode_b64("!!").is_err());
        assert_eq!(decode_optional(Some("")).unwrap(), None);
    }
}
