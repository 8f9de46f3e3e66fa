//! `ceremony run` and `ceremony status`: a key ceremony driven round by round, its state saved
//! after each so that a run stopped anywhere resumes where it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use vottery_common::guardians::mediator::{self, CeremonyState, GuardianEndpoint, Round};
use vottery_election::ElectionJointKey;

use super::GuardianArgs;
use super::files::print_json;
use super::guardians::connector;

/// `ceremony run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    guardians: GuardianArgs,
    /// The ceremony's id, the same on every guardian; needed to start one.
    #[arg(long, env = "CEREMONY_ID")]
    ceremony_id: Option<String>,
    /// How many guardians a decryption needs (k); needed to start a ceremony.
    #[arg(long, env = "CEREMONY_QUORUM")]
    quorum: Option<u32>,
    #[command(flatten)]
    state: StateFile,
}

/// `ceremony status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    state: StateFile,
}

/// The ceremony's state file.
#[derive(Debug, Args)]
struct StateFile {
    /// The state file: `run` creates it when missing and resumes from it when present (its
    /// guardians' URLs replaced by those given); `status` reads it. It holds public values only.
    #[arg(
        long = "state",
        value_name = "FILE",
        env = "CEREMONY_STATE",
        default_value = "ceremony-state.json"
    )]
    path: PathBuf,
}

pub async fn run(args: RunArgs) -> Result<(), String> {
    let mut state = prepare(&args)?;
    let timeout = Duration::from_secs(args.guardians.timeout_secs);
    let connector = connector(state.guardians.iter().map(|g| g.name.as_str()), timeout)?;
    let record = mediator::run_ceremony(&mut state, &args.state.path, &connector, &mut |step| {
        eprintln!("{step}")
    })
    .await
    .map_err(|error| error.to_string())?;
    eprintln!(
        "ceremony {} finalized on {} guardians (quorum {}); state in {}",
        state.ceremony_id,
        state.guardians.len(),
        state.quorum,
        args.state.path.display()
    );
    print_json(&record)
}

/// The state to run: the saved one (with the URLs given), or a new one saved before round 1.
fn prepare(args: &RunArgs) -> Result<CeremonyState, String> {
    let given = &args.guardians.guardians;
    let Some(mut state) = load(&args.state.path)? else {
        let ceremony_id = args
            .ceremony_id
            .as_deref()
            .ok_or("--ceremony-id is needed to start a ceremony")?;
        let quorum = args
            .quorum
            .ok_or("--quorum is needed to start a ceremony")?;
        let guardians = given
            .iter()
            .map(|guardian| GuardianEndpoint {
                name: guardian.name.clone(),
                url: guardian.url.clone(),
            })
            .collect();
        let state = CeremonyState::new(ceremony_id, quorum, guardians)
            .map_err(|error| error.to_string())?;
        state
            .save(&args.state.path)
            .map_err(|error| error.to_string())?;
        return Ok(state);
    };
    if args
        .ceremony_id
        .as_ref()
        .is_some_and(|id| *id != state.ceremony_id)
    {
        return Err(format!(
            "{} holds ceremony {}, not {}",
            args.state.path.display(),
            state.ceremony_id,
            args.ceremony_id.as_deref().unwrap_or_default()
        ));
    }
    if args.quorum.is_some_and(|quorum| quorum != state.quorum) {
        return Err(format!(
            "{} holds a ceremony with quorum {}",
            args.state.path.display(),
            state.quorum
        ));
    }
    if !given.is_empty() {
        let names: Vec<&str> = given.iter().map(|g| g.name.as_str()).collect();
        let saved: Vec<&str> = state.guardians.iter().map(|g| g.name.as_str()).collect();
        if names != saved {
            return Err(format!(
                "{} holds guardians {} in that order; --guardian names {}",
                args.state.path.display(),
                saved.join(", "),
                names.join(", ")
            ));
        }
        for guardian in given {
            state
                .set_url(&guardian.name, &guardian.url)
                .map_err(|error| error.to_string())?;
        }
    }
    Ok(state)
}

fn load(path: &Path) -> Result<Option<CeremonyState>, String> {
    CeremonyState::load(path).map_err(|error| error.to_string())
}

/// What `ceremony status` prints.
#[derive(Debug, Serialize)]
struct Status<'a> {
    ceremony_id: &'a str,
    number_of_guardians: usize,
    quorum: u32,
    round: Round,
    finalized: bool,
    guardians: &'a [GuardianEndpoint],
    joint_key: Option<&'a ElectionJointKey>,
}

pub fn status(args: &StatusArgs) -> Result<(), String> {
    let state = load(&args.state.path)?.ok_or_else(|| {
        format!(
            "{} does not exist: no ceremony run yet",
            args.state.path.display()
        )
    })?;
    print_json(&Status {
        ceremony_id: &state.ceremony_id,
        number_of_guardians: state.guardians.len(),
        quorum: state.quorum,
        round: state.round,
        finalized: state.round == Round::Finalized,
        guardians: &state.guardians,
        joint_key: state.record().map(|record| &record.joint_key),
    })
}
