//! `ceremony encrypt` and `ceremony tally`: working with the joint key alone, no guardian
//! involved.

use std::path::PathBuf;

use clap::Args;
use vottery_common::guardians::CeremonyRecord;
use vottery_common::guardians::mediator;
use vottery_election::ElGamalCiphertext;

use super::files::{print_json, read_json};

/// `ceremony encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The ceremony record (`ceremony run`'s output), or `-` for standard input.
    #[arg(long, value_name = "FILE", env = "CEREMONY_RECORD")]
    record: PathBuf,
    /// The values to encrypt, comma-separated (0 and 1 for votes).
    #[arg(
        long,
        value_name = "N,N,…",
        env = "CEREMONY_VALUES",
        value_delimiter = ',',
        required = true
    )]
    values: Vec<u64>,
}

/// `ceremony tally`.
#[derive(Debug, Args)]
pub struct TallyArgs {
    /// A JSON list of ciphertexts (`ceremony encrypt`'s output), or `-` for standard input.
    #[arg(long, value_name = "FILE", env = "CEREMONY_CIPHERTEXTS")]
    ciphertexts: PathBuf,
}

pub fn encrypt(args: &EncryptArgs) -> Result<(), String> {
    let record: CeremonyRecord = read_json(&args.record, "ceremony record")?;
    let ciphertexts = mediator::encrypt(&args.values, &record.joint_key.joint_public_key)
        .map_err(|error| error.to_string())?;
    print_json(&ciphertexts)
}

pub fn tally(args: &TallyArgs) -> Result<(), String> {
    let ciphertexts: Vec<ElGamalCiphertext> = read_json(&args.ciphertexts, "list of ciphertexts")?;
    let sum = mediator::accumulate(&ciphertexts).map_err(|error| error.to_string())?;
    print_json(&[sum])
}
