//! `ceremony decrypt`: threshold decryption by the guardians at hand, every proof checked.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use vottery_common::guardians::CeremonyRecord;
use vottery_common::guardians::mediator::{self, DEFAULT_MAX_PLAINTEXT, DecryptOptions};
use vottery_election::{ElGamalCiphertext, ElementModP, ElementModQ};

use super::GuardianArgs;
use super::files::{print_json, read_json};
use super::guardians::connector;

/// `ceremony decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    guardians: GuardianArgs,
    /// The ceremony record (`ceremony run`'s output).
    #[arg(long, value_name = "FILE", env = "CEREMONY_RECORD")]
    record: PathBuf,
    /// A JSON list of ciphertexts (`encrypt` or `tally` output), or `-` for standard input.
    #[arg(long, value_name = "FILE", env = "CEREMONY_CIPHERTEXTS")]
    ciphertexts: PathBuf,
    /// The election's extended base hash Q̄ (hex) that every proof is bound to; the ceremony's
    /// commitment hash when omitted.
    #[arg(long, value_name = "HEX", env = "CEREMONY_EXTENDED_BASE_HASH")]
    extended_base_hash: Option<String>,
    /// The largest plaintext to look for.
    #[arg(long, value_name = "N", env = "CEREMONY_MAX_PLAINTEXT", default_value_t = DEFAULT_MAX_PLAINTEXT)]
    max_plaintext: u64,
}

/// One line of `ceremony decrypt`'s answer.
#[derive(Debug, Serialize)]
struct Decrypted {
    index: usize,
    g_m: ElementModP,
    m: u64,
}

pub async fn decrypt(args: DecryptArgs) -> Result<(), String> {
    let record: CeremonyRecord = read_json(&args.record, "ceremony record")?;
    let ciphertexts: Vec<ElGamalCiphertext> = read_json(&args.ciphertexts, "list of ciphertexts")?;
    let extended_base_hash = match &args.extended_base_hash {
        Some(hex) => {
            ElementModQ::from_hex(hex).map_err(|error| format!("--extended-base-hash: {error}"))?
        }
        None => record.joint_key.commitment_hash,
    };
    let given = &args.guardians.guardians;
    let timeout = Duration::from_secs(args.guardians.timeout_secs);
    let connector = connector(given.iter().map(|g| g.name.as_str()), timeout)?;
    let available = given
        .iter()
        .map(|guardian| connector.client(&guardian.name, &guardian.url))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    let options = DecryptOptions {
        max_plaintext: args.max_plaintext,
    };
    let decryptions = mediator::decrypt(
        &record,
        &available,
        &ciphertexts,
        &extended_base_hash,
        &options,
    )
    .await
    .map_err(|error| error.to_string())?;
    let answer: Vec<Decrypted> = decryptions
        .into_iter()
        .enumerate()
        .map(|(index, decryption)| Decrypted {
            index,
            g_m: decryption.g_m,
            m: decryption.m,
        })
        .collect();
    print_json(&answer)
}
