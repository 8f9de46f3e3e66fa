//! The mediator of a guardian key ceremony and of threshold decryption: a client of several
//! security-svc instances that moves public messages between them, checks every proof they
//! publish, and combines their partial decryptions. It holds no secret: tokens are handed to it
//! by its caller and never written to its state file.
//!
//! * [`run_ceremony`] drives the rounds (create, backups, verifications, finalize), saving a
//!   [`CeremonyState`] after each so that a mediator that crashed resumes where it stopped.
//! * [`decrypt`] gathers partial decryptions from the guardians at hand (compensating for the
//!   missing ones), checks every Chaum–Pedersen proof, combines them and takes the discrete log.
//! * [`encrypt`] and [`accumulate`] work with the joint key alone.

mod ceremony;
mod client;
mod decryption;
mod state;
mod tally;

use std::time::Duration;

pub use ceremony::{Progress, ProgressSink, run_ceremony};
pub use client::{Connector, GuardianClient};
pub use decryption::{
    CollectedShares, DecryptOptions, Decryption, collect_shares, combine_shares, decrypt,
    verify_shares,
};
pub use state::{CeremonyState, GuardianEndpoint, Round};
pub use tally::{accumulate, encrypt};

/// The largest plaintext the discrete log looks for unless told otherwise.
pub const DEFAULT_MAX_PLAINTEXT: u64 = 10_000_000;

/// How long one call to a guardian may take unless told otherwise: a full batch of 1,000
/// ciphertexts with proofs takes a few seconds on a loaded instance.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong calling one guardian's instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Connection refused, timed out, or the instance reported that it is unavailable.
    #[error("unavailable ({0})")]
    Unavailable(String),
    /// The instance answers but holds no keys until unsealed.
    #[error("sealed")]
    Sealed,
    /// The token is missing, unknown, or not allowed this guardian or operation.
    #[error("permission denied (check the guardian's token)")]
    Forbidden,
    /// The instance refused the request; its problem details.
    #[error("refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// The instance failed.
    #[error("failed ({status}): {detail}")]
    Failed { status: u16, detail: String },
    /// A success whose body is not what the route answers.
    #[error("answered a body this mediator cannot read: {0}")]
    Unreadable(String),
}

/// Why the mediator stopped. Every error about one guardian names it.
#[derive(Debug, thiserror::Error)]
pub enum MediatorError {
    /// A call to a guardian failed.
    #[error("guardian {guardian}: {source}")]
    Call {
        guardian: String,
        #[source]
        source: CallError,
    },
    /// No token was given for a guardian.
    #[error("guardian {guardian}: no token given")]
    MissingToken { guardian: String },
    /// A guardian's public record fails its checks (a Schnorr proof, its owner or position).
    #[error("guardian {guardian}: its public record is refused: {reason}")]
    InvalidPublicRecord { guardian: String, reason: String },
    /// A guardian answered something that does not fit the ceremony.
    #[error("guardian {guardian}: unexpected answer: {reason}")]
    UnexpectedAnswer { guardian: String, reason: String },
    /// A backup failed its recipient's verification, and again after it was fetched and
    /// delivered once more.
    #[error(
        "the backup from guardian {sender} to guardian {recipient} failed verification, also when sent again"
    )]
    BackupRejected { sender: String, recipient: String },
    /// A guardian computed another joint key or commitment hash than the public records give.
    #[error("guardian {guardian}: its {what} differs from the one the public records give")]
    JointKeyMismatch {
        guardian: String,
        what: &'static str,
    },
    /// A guardian's ceremony record is not the ceremony's, or its signature is malformed.
    #[error("guardian {guardian}: its ceremony record {reason}")]
    InvalidRecord { guardian: String, reason: String },
    /// A guardian's partial decryption fails its Chaum–Pedersen proof.
    #[error("guardian {guardian}: the partial decryption of ciphertext {index} fails its proof")]
    InvalidShare { guardian: String, index: usize },
    /// A guardian's compensated share for a missing guardian fails its proof.
    #[error(
        "guardian {guardian}: the compensated decryption for missing guardian {missing} of ciphertext {index} fails its proof"
    )]
    InvalidCompensatedShare {
        guardian: String,
        missing: String,
        index: usize,
    },
    /// A guardian's recovery key for a missing guardian is not the one the public records give.
    #[error(
        "guardian {guardian}: its recovery public key for missing guardian {missing} does not match the public records"
    )]
    RecoveryKeyMismatch { guardian: String, missing: String },
    /// A guardian that the ceremony record does not list.
    #[error("guardian {guardian} is not a guardian of ceremony {ceremony_id}")]
    UnknownGuardian {
        guardian: String,
        ceremony_id: String,
    },
    /// Fewer guardians at hand than the quorum.
    #[error("{available} guardians available, but decryption needs the quorum of {quorum}")]
    NotEnoughGuardians { available: usize, quorum: u32 },
    /// The decrypted value is outside the range the discrete log searches.
    #[error("ciphertext {index} decrypts to no value from 0 to {max}")]
    PlaintextOutOfRange { index: usize, max: u64 },
    /// The ceremony's parameters are unusable.
    #[error("invalid ceremony: {0}")]
    InvalidCeremony(String),
    /// The state file cannot be read or written.
    #[error("state file {path}: {reason}")]
    StateFile { path: String, reason: String },
    /// Nothing to encrypt with or to add up.
    #[error("{0}")]
    InvalidInput(String),
    /// A task of the mediator itself failed.
    #[error("the mediator failed: {0}")]
    Internal(String),
}

impl MediatorError {
    /// The guardian the error is about, if it is about one (the sender for a rejected backup).
    pub fn guardian(&self) -> Option<&str> {
        match self {
            MediatorError::Call { guardian, .. }
            | MediatorError::MissingToken { guardian }
            | MediatorError::InvalidPublicRecord { guardian, .. }
            | MediatorError::UnexpectedAnswer { guardian, .. }
            | MediatorError::JointKeyMismatch { guardian, .. }
            | MediatorError::InvalidRecord { guardian, .. }
            | MediatorError::InvalidShare { guardian, .. }
            | MediatorError::InvalidCompensatedShare { guardian, .. }
            | MediatorError::RecoveryKeyMismatch { guardian, .. }
            | MediatorError::UnknownGuardian { guardian, .. } => Some(guardian),
            MediatorError::BackupRejected { sender, .. } => Some(sender),
            _ => None,
        }
    }
}

pub(crate) fn unexpected(guardian: &str, reason: impl Into<String>) -> MediatorError {
    MediatorError::UnexpectedAnswer {
        guardian: guardian.to_owned(),
        reason: reason.into(),
    }
}
