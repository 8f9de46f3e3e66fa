//! Signatures this instance has already found valid.
//!
//! A verification that succeeds is remembered as the SHA-256 of everything it depended on
//! (public key, key flags, options, context, input and signature), and the same question asked
//! again is answered from memory; see [`RememberedChecks`] for the bounds. Version rules
//! (`min_decryption_version`, deleted keys) are applied before the memory is asked.

use ring::digest::{Context, SHA256};
use vottery_common::remembered::{Digest, RememberedChecks};

use super::ops::{KeyFlags, OpError, SignOptions};

/// One verification, as everything its outcome depends on.
pub struct Question<'a> {
    pub public_key: &'a [u8],
    pub flags: KeyFlags,
    pub options: &'a SignOptions<'a>,
    pub input: &'a [u8],
    pub signature: &'a [u8],
}

impl Question<'_> {
    fn digest(&self) -> Digest {
        let mut context = Context::new(&SHA256);
        let mut field = |bytes: &[u8]| {
            context.update(&(bytes.len() as u64).to_be_bytes());
            context.update(bytes);
        };
        let options = self.options;
        field(self.public_key);
        field(&[
            u8::from(self.flags.derived),
            u8::from(self.flags.convergent),
            u8::from(options.prehashed),
            options.padding as u8,
            options.marshaling as u8,
        ]);
        field(options.hash.as_str().as_bytes());
        field(options.context.unwrap_or_default());
        field(self.input);
        field(self.signature);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        digest
    }
}

/// The valid signatures remembered by one unsealed instance.
#[derive(Debug)]
pub struct VerifiedSignatures {
    memory: RememberedChecks,
}

impl VerifiedSignatures {
    /// Remembers up to `capacity` verifications per generation; 0 remembers none.
    pub fn new(capacity: usize) -> Self {
        Self {
            memory: RememberedChecks::new(capacity),
        }
    }

    /// Whether the question's signature is valid: from memory when it was found valid before,
    /// else by `verify`, whose success is then remembered.
    pub fn check(
        &self,
        question: &Question<'_>,
        verify: impl FnOnce() -> Result<bool, OpError>,
    ) -> Result<bool, OpError> {
        self.memory.check(|| question.digest(), verify)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::keys::hash::HashAlgorithm;
    use crate::keys::ops::{Marshaling, RsaPadding};

    const OPTIONS: SignOptions<'static> = SignOptions {
        hash: HashAlgorithm::Sha2_256,
        prehashed: false,
        padding: RsaPadding::Pss,
        marshaling: Marshaling::Asn1,
        context: None,
    };

    fn question<'a>(
        options: &'a SignOptions<'a>,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> Question<'a> {
        Question {
            public_key: b"public key",
            flags: KeyFlags {
                derived: false,
                convergent: false,
            },
            options,
            input,
            signature,
        }
    }

    /// Runs `check` with a verifier that answers `outcome` and counts its calls.
    fn ask(
        memory: &VerifiedSignatures,
        question: &Question<'_>,
        outcome: bool,
        calls: &Cell<u32>,
    ) -> bool {
        memory
            .check(question, || {
                calls.set(calls.get() + 1);
                Ok(outcome)
            })
            .unwrap()
    }

    #[test]
    fn a_valid_signature_is_verified_once_and_then_remembered() {
        let memory = VerifiedSignatures::new(8);
        let calls = Cell::new(0);
        let asked = question(&OPTIONS, b"record", b"signature");
        assert!(ask(&memory, &asked, true, &calls));
        assert!(ask(&memory, &asked, true, &calls));
        assert!(ask(&memory, &asked, false, &calls), "answered from memory");
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn failures_are_never_remembered() {
        let memory = VerifiedSignatures::new(8);
        let calls = Cell::new(0);
        let asked = question(&OPTIONS, b"record", b"forged");
        assert!(!ask(&memory, &asked, false, &calls));
        assert!(!ask(&memory, &asked, false, &calls));
        assert_eq!(calls.get(), 2);
        assert!(memory.memory.is_empty());
        let error = memory.check(&asked, || Err(OpError::user("bad input")));
        assert!(error.is_err());
        assert!(memory.memory.is_empty());
    }

    #[test]
    fn any_changed_part_of_the_question_is_verified_again() {
        let memory = VerifiedSignatures::new(64);
        let calls = Cell::new(0);
        assert!(ask(
            &memory,
            &question(&OPTIONS, b"record", b"sig"),
            true,
            &calls
        ));
        let with_context = SignOptions {
            context: Some(b"tenant"),
            ..OPTIONS
        };
        let jws = SignOptions {
            marshaling: Marshaling::Jws,
            ..OPTIONS
        };
        let sha512 = SignOptions {
            hash: HashAlgorithm::Sha2_512,
            ..OPTIONS
        };
        let other_key = Question {
            public_key: b"another public key",
            ..question(&OPTIONS, b"record", b"sig")
        };
        let derived = Question {
            flags: KeyFlags {
                derived: true,
                convergent: false,
            },
            ..question(&OPTIONS, b"record", b"sig")
        };
        let variants = [
            question(&OPTIONS, b"recorD", b"sig"),
            question(&OPTIONS, b"record", b"siG"),
            // The same bytes split differently between input and signature.
            question(&OPTIONS, b"records", b"ig"),
            question(&with_context, b"record", b"sig"),
            question(&jws, b"record", b"sig"),
            question(&sha512, b"record", b"sig"),
            other_key,
            derived,
        ];
        for variant in &variants {
            assert!(!ask(&memory, variant, false, &calls));
        }
        assert_eq!(calls.get(), 1 + variants.len() as u32);
    }
}
