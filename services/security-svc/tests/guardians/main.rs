//! Guardians across processes: every guardian is its own security-svc process with its own
//! database, seal and tokens, and the mediator (library and command line) drives them over
//! loopback HTTP, as trustees on separate machines would be driven.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod instances;
mod proxy;

mod ceremonies;
mod cli;
mod faults;
mod interop;

use vottery_common::guardians::CeremonyRecord;
use vottery_common::guardians::mediator::{
    CeremonyState, DecryptOptions, Decryption, GuardianClient, MediatorError, Progress, decrypt,
    run_ceremony,
};
use vottery_election::{ElGamalCiphertext, ElementModQ, Hashable, hash_elems};

use instances::{Instance, Scratch, connector, endpoints};

/// Runs a whole ceremony of `instances` (in sequence order) through the library; answers the
/// record and the progress lines.
pub async fn run_to_end(
    instances: &[Instance],
    quorum: u32,
    scratch: &Scratch,
) -> (CeremonyRecord, Vec<Progress>) {
    let mut state = CeremonyState::new("election-2027", quorum, endpoints(instances)).unwrap();
    let mut steps = Vec::new();
    let record = run_ceremony(
        &mut state,
        &scratch.path("state.json"),
        &connector(instances),
        &mut |step| steps.push(step.clone()),
    )
    .await
    .unwrap_or_else(|error| panic!("the ceremony fails: {error}"));
    (record, steps)
}

/// Decrypts `ciphertexts` of the test election of `record` with the guardians at hand and the
/// default options.
pub async fn decrypt_with(
    record: &CeremonyRecord,
    available: &[GuardianClient],
    ciphertexts: &[ElGamalCiphertext],
) -> Result<Vec<Decryption>, MediatorError> {
    let hash = extended_base_hash(record);
    decrypt(
        record,
        available,
        ciphertexts,
        &hash,
        &DecryptOptions::default(),
    )
    .await
}

/// A test election's extended base hash.
pub fn extended_base_hash(record: &CeremonyRecord) -> ElementModQ {
    hash_elems(&[
        Hashable::Str("vottery test election"),
        Hashable::Q(&record.joint_key.commitment_hash),
    ])
}
