//! `security-svc ceremony …`: the command line of the guardian ceremony mediator
//! (`vottery_common::guardians::mediator`). It reaches the guardians' instances over HTTP with
//! their tokens from the environment, and reads and writes only public values.

mod decrypt;
mod files;
mod guardians;
mod run;
mod tally;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use guardians::GuardianArg;

pub const GUARDIANS_HELP: &str = "Guardians: each --guardian NAME=URL names a guardian (its id in \
the ceremony, the {guardian} segment of its routes) and its security-svc instance. The token \
for guardian NAME is read from the environment variable GUARDIAN_TOKEN_<NAME>, NAME upper-cased \
with every character other than a letter or digit made '_' (guardian-1 → GUARDIAN_TOKEN_GUARDIAN_1); \
it needs the guardian-ceremony operation (run) or guardian-decrypt (decrypt) on that name. \
Tokens are never written to any file.";

/// The ceremony subcommands.
#[derive(Debug, Subcommand)]
pub enum CeremonyCommand {
    /// Run a key ceremony, or resume the one in --state: create every guardian, check their
    /// public records, exchange and verify backups, finalize. Progress goes to stderr; the
    /// first guardian's signed ceremony record is printed as JSON.
    #[command(after_help = GUARDIANS_HELP)]
    Run(run::RunArgs),
    /// Show how far the ceremony in a state file got, as JSON.
    Status(run::StatusArgs),
    /// Encrypt small non-negative integers to the joint key of a ceremony record; prints the
    /// ciphertexts as a JSON list.
    Encrypt(tally::EncryptArgs),
    /// Add up ciphertexts homomorphically (their component-wise product); prints a JSON list
    /// holding the one ciphertext of the sum.
    Tally(tally::TallyArgs),
    /// Decrypt ciphertexts with the guardians at hand (at least the quorum; the others are
    /// compensated for), checking every proof; prints g^m and m for each as JSON.
    #[command(after_help = GUARDIANS_HELP)]
    Decrypt(decrypt::DecryptArgs),
}

/// The guardians to reach and how long a call may take.
#[derive(Debug, Args)]
pub struct GuardianArgs {
    /// A guardian and its instance, NAME=URL; repeat for each (in sequence order for `run`).
    #[arg(
        long = "guardian",
        value_name = "NAME=URL",
        env = "CEREMONY_GUARDIANS",
        value_delimiter = ','
    )]
    guardians: Vec<GuardianArg>,
    /// How long one call to a guardian may take, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "CEREMONY_TIMEOUT_SECS",
        default_value_t = 120
    )]
    timeout_secs: u64,
}

/// Runs one ceremony subcommand; its error goes to stderr with exit status 1.
pub async fn run(command: CeremonyCommand) -> ExitCode {
    let result = match command {
        CeremonyCommand::Run(args) => run::run(args).await,
        CeremonyCommand::Status(args) => run::status(&args),
        CeremonyCommand::Encrypt(args) => tally::encrypt(&args),
        CeremonyCommand::Tally(args) => tally::tally(&args),
        CeremonyCommand::Decrypt(args) => decrypt::decrypt(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("security-svc ceremony: {error}");
            ExitCode::FAILURE
        }
    }
}
