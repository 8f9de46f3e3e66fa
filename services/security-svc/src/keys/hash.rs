//! Hash algorithms named the way Vault names them (`sha2-256`, `sha3-512`, ...).

use std::fmt;
use std::str::FromStr;

use sha2::Digest;

/// A hash algorithm accepted by hash, sign, verify and HMAC routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// No hashing: the input already is the value to sign (RSA PKCS#1 v1.5 only).
    None,
    Sha2_224,
    Sha2_256,
    Sha2_384,
    Sha2_512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl HashAlgorithm {
    /// Every algorithm, `None` first.
    pub const ALL: [HashAlgorithm; 9] = [
        HashAlgorithm::None,
        HashAlgorithm::Sha2_224,
        HashAlgorithm::Sha2_256,
        HashAlgorithm::Sha2_384,
        HashAlgorithm::Sha2_512,
        HashAlgorithm::Sha3_224,
        HashAlgorithm::Sha3_256,
        HashAlgorithm::Sha3_384,
        HashAlgorithm::Sha3_512,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::None => "none",
            HashAlgorithm::Sha2_224 => "sha2-224",
            HashAlgorithm::Sha2_256 => "sha2-256",
            HashAlgorithm::Sha2_384 => "sha2-384",
            HashAlgorithm::Sha2_512 => "sha2-512",
            HashAlgorithm::Sha3_224 => "sha3-224",
            HashAlgorithm::Sha3_256 => "sha3-256",
            HashAlgorithm::Sha3_384 => "sha3-384",
            HashAlgorithm::Sha3_512 => "sha3-512",
        }
    }

    /// The digest of `input`; `None` returns the input unchanged.
    pub fn digest(self, input: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::None => input.to_vec(),
            HashAlgorithm::Sha2_224 => sha2::Sha224::digest(input).to_vec(),
            HashAlgorithm::Sha2_256 => sha2::Sha256::digest(input).to_vec(),
            HashAlgorithm::Sha2_384 => sha2::Sha384::digest(input).to_vec(),
            HashAlgorithm::Sha2_512 => sha2::Sha512::digest(input).to_vec(),
            HashAlgorithm::Sha3_224 => sha3::Sha3_224::digest(input).to_vec(),
            HashAlgorithm::Sha3_256 => sha3::Sha3_256::digest(input).to_vec(),
            HashAlgorithm::Sha3_384 => sha3::Sha3_384::digest(input).to_vec(),
            HashAlgorithm::Sha3_512 => sha3::Sha3_512::digest(input).to_vec(),
        }
    }

    /// Parses a name from a request; `None` and empty mean the default, SHA2-256.
    pub fn from_request(name: Option<&str>) -> Result<Self, UnknownHash> {
        match name.map(str::trim) {
            None | Some("") => Ok(HashAlgorithm::Sha2_256),
            Some(name) => name.parse(),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a supported hash algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHash(pub String);

impl FromStr for HashAlgorithm {
    type Err = UnknownHash;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "none" => HashAlgorithm::None,
            "sha2-224" => HashAlgorithm::Sha2_224,
            "sha2-256" => HashAlgorithm::Sha2_256,
            "sha2-384" => HashAlgorithm::Sha2_384,
            "sha2-512" => HashAlgorithm::Sha2_512,
            "sha3-224" => HashAlgorithm::Sha3_224,
            "sha3-256" => HashAlgorithm::Sha3_256,
            "sha3-384" => HashAlgorithm::Sha3_384,
            "sha3-512" => HashAlgorithm::Sha3_512,
            other => return Err(UnknownHash(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_the_expected_lengths() {
        for (name, len) in [
            ("sha2-224", 28),
            ("sha2-256", 32),
            ("sha2-384", 48),
            ("sha2-512", 64),
            ("sha3-224", 28),
            ("sha3-256", 32),
            ("sha3-384", 48),
            ("sha3-512", 64),
        ] {
            let algorithm: HashAlgorithm = name.parse().unwrap();
            assert_eq!(algorithm.digest(b"abc").len(), len, "{name}");
            assert_eq!(algorithm.as_str(), name);
        }
        assert_eq!(
            hex::encode(HashAlgorithm::Sha2_256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!("md5".parse::<HashAlgorithm>().is_err());
    }
}
