//! Who may call which operation on which keys. Callers present a token (`X-Vault-Token` or
//! `Authorization: Bearer`); tokens come from configuration, each bound to a policy, plus the
//! root token handed out at init. Tokens are looked up by SHA-256 digest, never compared as text.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use actix_web::HttpRequest;
use ring::digest;
use secrecy::ExposeSecret;

use crate::configuration::TokenSettings;

/// Every operation a policy can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Read,
    List,
    Delete,
    Config,
    Rotate,
    Trim,
    Encrypt,
    Decrypt,
    Rewrap,
    DataKey,
    Sign,
    Verify,
    Hmac,
    Hash,
    Random,
    Export,
    Seal,
    /// The key-ceremony steps of a guardian, and reading it (the key is the guardian's name).
    GuardianCeremony,
    /// Partial and compensated decryptions by a guardian (the key is the guardian's name).
    GuardianDecrypt,
    /// Destroying one context's data key of a `context_keys` key.
    DestroyContext,
}

impl Operation {
    pub const ALL: [Operation; 21] = [
        Operation::Create,
        Operation::Read,
        Operation::List,
        Operation::Delete,
        Operation::Config,
        Operation::Rotate,
        Operation::Trim,
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::Rewrap,
        Operation::DataKey,
        Operation::Sign,
        Operation::Verify,
        Operation::Hmac,
        Operation::Hash,
        Operation::Random,
        Operation::Export,
        Operation::Seal,
        Operation::GuardianCeremony,
        Operation::GuardianDecrypt,
        Operation::DestroyContext,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::Config => "config",
            Operation::Rotate => "rotate",
            Operation::Trim => "trim",
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::Rewrap => "rewrap",
            Operation::DataKey => "datakey",
            Operation::Sign => "sign",
            Operation::Verify => "verify",
            Operation::Hmac => "hmac",
            Operation::Hash => "hash",
            Operation::Random => "random",
            Operation::Export => "export",
            Operation::Seal => "seal",
            Operation::GuardianCeremony => "guardian-ceremony",
            Operation::GuardianDecrypt => "guardian-decrypt",
            Operation::DestroyContext => "destroy-context",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Operations that name no key (granted regardless of key patterns).
    pub fn is_keyless(self) -> bool {
        matches!(
            self,
            Operation::List | Operation::Hash | Operation::Random | Operation::Seal
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|operation| operation.as_str() == text)
            .ok_or_else(|| format!("unknown operation {text:?}"))
    }
}

/// A key-name pattern: literal text with `*` matching any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern(String);

impl KeyPattern {
    pub fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    pub fn matches(&self, name: &str) -> bool {
        fn glob(pattern: &[u8], name: &[u8]) -> bool {
            match pattern.split_first() {
                None => name.is_empty(),
                Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
                Some((first, rest)) => name.first() == Some(first) && glob(rest, &name[1..]),
            }
        }
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

/// The operations a token may perform and the keys it may perform them on.
#[derive(Debug, Clone)]
pub struct Policy {
    operations: u32,
    keys: Vec<KeyPattern>,
}

impl Policy {
    /// Everything, on every key (the root token).
    pub fn root() -> Self {
        Self {
            operations: u32::MAX,
            keys: vec![KeyPattern::new("*")],
        }
    }

    /// Builds a policy from names (`"*"` for all operations) and key patterns.
    pub fn from_names(operations: &[String], keys: &[String]) -> Result<Self, String> {
        let mut bits = 0;
        for name in operations {
            bits |= if name == "*" {
                u32::MAX
            } else {
                name.parse::<Operation>()?.bit()
            };
        }
        Ok(Self {
            operations: bits,
            keys: keys
                .iter()
                .map(|pattern| KeyPattern::new(pattern))
                .collect(),
        })
    }

    /// Whether `operation` on `key` (absent for key-less operations) is allowed.
    pub fn allows(&self, operation: Operation, key: Option<&str>) -> bool {
        if self.operations & operation.bit() == 0 {
            return false;
        }
        match key {
            None => true,
            Some(_) if operation.is_keyless() => true,
            Some(name) => self.keys.iter().any(|pattern| pattern.matches(name)),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's configured name (`root` for the root token); safe to log.
    pub name: String,
    pub policy: Policy,
}

/// The configured tokens, by digest.
#[derive(Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Arc<Caller>>,
}

/// SHA-256 of a token: how tokens are stored and looked up.
pub fn token_digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl Tokens {
    pub fn from_settings(
        tokens: &std::collections::BTreeMap<String, TokenSettings>,
    ) -> Result<Self, String> {
        let mut by_digest = HashMap::new();
        for (name, token) in tokens {
            let secret = token.secret.expose_secret();
            if secret.is_empty() {
                continue;
            }
            let policy = Policy::from_names(&token.operations, &token.keys)
                .map_err(|error| format!("token {name}: {error}"))?;
            by_digest.insert(
                token_digest(secret),
                Arc::new(Caller {
                    name: name.clone(),
                    policy,
                }),
            );
        }
        Ok(Self { by_digest })
    }

    /// The caller for a presented token: a configured one, or the root token.
    /// `root_digest` is consulted only when no configured token matches.
    pub fn resolve(
        &self,
        token: &str,
        root_digest: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Arc<Caller>> {
        let digest = token_digest(token);
        if let Some(caller) = self.by_digest.get(&digest) {
            return Some(Arc::clone(caller));
        }
        match root_digest() {
            // Digests are compared, never tokens: timing reveals nothing about a token.
            Some(root) if root == digest.as_slice() => Some(Arc::new(Caller {
                name: "root".into(),
                policy: Policy::root(),
            })),
            _ => None,
        }
    }
}

/// The token a request presents: `X-Vault-Token`, else `Authorization: Bearer <token>`.
pub fn presented_token(req: &HttpRequest) -> Option<&str> {
    if let Some(token) = req
        .headers()
        .get("x-vault-token")
        .and_then(|value| value.to_str().ok())
    {
        let token = token.trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(operations: &[&str], keys: &[&str]) -> Policy {
        let owned = |items: &[&str]| {
            items
                .iter()
                .map(|item| (*item).to_owned())
                .collect::<Vec<_>>()
        };
        Policy::from_names(&owned(operations), &owned(keys)).unwrap()
    }

    #[test]
    fn patterns_match_with_wildcards() {
        assert!(KeyPattern::new("*").matches("anything"));
        assert!(KeyPattern::new("vottery-users-*").matches("vottery-users-pii"));
        assert!(!KeyPattern::new("vottery-users-*").matches("vottery-other"));
        assert!(KeyPattern::new("a*c").matches("abbbc"));
        assert!(!KeyPattern::new("exact").matches("exactly"));
    }

    #[test]
    fn policies_grant_operations_on_matching_keys_only() {
        let service = policy(
            &["encrypt", "decrypt", "hmac", "sign", "verify"],
            &["users-*"],
        );
        assert!(service.allows(Operation::Encrypt, Some("users-pii")));
        assert!(!service.allows(Operation::Encrypt, Some("billing")));
        assert!(!service.allows(Operation::Rotate, Some("users-pii")));
        assert!(!service.allows(Operation::Delete, Some("users-pii")));
        assert!(!service.allows(Operation::Seal, None));
        let admin = policy(&["*"], &["*"]);
        assert!(admin.allows(Operation::Seal, None) && admin.allows(Operation::Trim, Some("x")));
        assert!(Policy::from_names(&["fly".into()], &[]).is_err());
    }

    #[test]
    fn guardian_operations_are_granted_per_guardian_name() {
        let trustee = policy(&["guardian-ceremony", "guardian-decrypt"], &["guardian-1"]);
        assert!(trustee.allows(Operation::GuardianCeremony, Some("guardian-1")));
        assert!(trustee.allows(Operation::GuardianDecrypt, Some("guardian-1")));
        assert!(!trustee.allows(Operation::GuardianDecrypt, Some("guardian-2")));
        assert!(!trustee.allows(Operation::Encrypt, Some("guardian-1")));
        let ceremony_only = policy(&["guardian-ceremony"], &["*"]);
        assert!(!ceremony_only.allows(Operation::GuardianDecrypt, Some("guardian-1")));
        assert!(Policy::root().allows(Operation::GuardianDecrypt, Some("any")));
        assert!(policy(&["*"], &["*"]).allows(Operation::GuardianCeremony, Some("any")));
        let service = policy(&["encrypt", "decrypt", "sign"], &["*"]);
        assert!(!service.allows(Operation::GuardianCeremony, Some("guardian-1")));
    }
}
