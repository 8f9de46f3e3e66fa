//! The ceremony's state: every public value the mediator has gathered, saved atomically after
//! each round so that a run that stopped resumes with the next round.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vottery_election::{
    ElectionPartialKeyBackup, ElectionPartialKeyVerification, ElectionPublicKey,
};

use super::MediatorError;
use crate::guardians::{CeremonyRecord, MAX_GUARDIANS};

/// A guardian of the ceremony as the mediator reaches it. Its token is not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianEndpoint {
    /// The guardian's name: its path segment and its id in every record.
    pub name: String,
    /// Its security-svc instance's base URL.
    pub url: String,
}

/// The last round the mediator completed; a resumed run starts with the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Round {
    /// Nothing done yet.
    Planned,
    /// Every guardian exists and its public record passed the mediator's checks.
    PublicRecordsVerified,
    /// Every guardian made its backups for the others.
    BackupsShared,
    /// Every backup was verified by its recipient.
    BackupsVerified,
    /// Every guardian computed the joint key and signed its ceremony record.
    Finalized,
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Round::Planned => "planned",
            Round::PublicRecordsVerified => "public records verified",
            Round::BackupsShared => "backups shared",
            Round::BackupsVerified => "backups verified",
            Round::Finalized => "finalized",
        })
    }
}

/// Everything the mediator learned so far: public messages only, saved after every round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeremonyState {
    pub ceremony_id: String,
    pub quorum: u32,
    /// The guardians in sequence order (the first is 1).
    pub guardians: Vec<GuardianEndpoint>,
    pub round: Round,
    /// Every guardian's public record, in sequence order.
    #[serde(default)]
    pub public_records: Vec<ElectionPublicKey>,
    /// Every backup, by sender then recipient; each is encrypted to its recipient.
    #[serde(default)]
    pub backups: Vec<ElectionPartialKeyBackup>,
    /// Every recipient's verification of every backup sent to it.
    #[serde(default)]
    pub verifications: Vec<ElectionPartialKeyVerification>,
    /// Each guardian's signed ceremony record, in sequence order.
    #[serde(default)]
    pub records: Vec<CeremonyRecord>,
}

impl CeremonyState {
    /// A ceremony not yet started: `quorum` of `guardians` (in sequence order) will decrypt.
    pub fn new(
        ceremony_id: &str,
        quorum: u32,
        guardians: Vec<GuardianEndpoint>,
    ) -> Result<Self, MediatorError> {
        let invalid = |reason: String| Err(MediatorError::InvalidCeremony(reason));
        let count = guardians.len();
        if ceremony_id.is_empty() {
            return invalid("the ceremony id is empty".into());
        }
        if count == 0 || count > MAX_GUARDIANS as usize {
            return invalid(format!(
                "{count} guardians; a ceremony has 1 to {MAX_GUARDIANS}"
            ));
        }
        if quorum == 0 || quorum as usize > count {
            return invalid(format!(
                "quorum {quorum} of {count} guardians; it must be 1 to {count}"
            ));
        }
        let names: BTreeSet<&str> = guardians.iter().map(|g| g.name.as_str()).collect();
        if names.len() != count {
            return invalid("a guardian is named twice".into());
        }
        Ok(Self {
            ceremony_id: ceremony_id.to_owned(),
            quorum,
            guardians,
            round: Round::Planned,
            public_records: Vec::new(),
            backups: Vec::new(),
            verifications: Vec::new(),
            records: Vec::new(),
        })
    }

    /// The state saved at `path`, or `None` when there is no file there.
    pub fn load(path: &Path) -> Result<Option<Self>, MediatorError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(state_error(path, error)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|error| state_error(path, error))
    }

    /// Writes the state to `path` atomically: a temporary file beside it, synced, renamed over.
    pub fn save(&self, path: &Path) -> Result<(), MediatorError> {
        let text = serde_json::to_vec_pretty(self).map_err(|error| state_error(path, error))?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Makes the rename itself durable; not every file system allows it.
                let _ = std::fs::File::open(parent).and_then(|dir| dir.sync_all());
            }
            Ok(())
        };
        write().map_err(|error| state_error(path, error))
    }

    /// n, the number of guardians.
    pub fn number_of_guardians(&self) -> u32 {
        self.guardians.len() as u32
    }

    /// The ceremony record of the first guardian, once finalized.
    pub fn record(&self) -> Option<&CeremonyRecord> {
        self.records.first()
    }

    /// Points guardian `name` at a new URL (its instance moved); an unknown name is refused.
    pub fn set_url(&mut self, name: &str, url: &str) -> Result<(), MediatorError> {
        let guardian = self
            .guardians
            .iter_mut()
            .find(|guardian| guardian.name == name)
            .ok_or_else(|| MediatorError::UnknownGuardian {
                guardian: name.to_owned(),
                ceremony_id: self.ceremony_id.clone(),
            })?;
        guardian.url = url.to_owned();
        Ok(())
    }
}

fn state_error(path: &Path, error: impl fmt::Display) -> MediatorError {
    MediatorError::StateFile {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guardians(names: &[&str]) -> Vec<GuardianEndpoint> {
        names
            .iter()
            .map(|name| GuardianEndpoint {
                name: (*name).to_owned(),
                url: format!("http://127.0.0.1:1/{name}"),
            })
            .collect()
    }

    #[test]
    fn a_ceremony_needs_an_id_distinct_guardians_and_a_quorum_within_them() {
        assert!(CeremonyState::new("e", 2, guardians(&["a", "b", "c"])).is_ok());
        assert!(CeremonyState::new("", 2, guardians(&["a", "b"])).is_err());
        assert!(CeremonyState::new("e", 0, guardians(&["a", "b"])).is_err());
        assert!(CeremonyState::new("e", 3, guardians(&["a", "b"])).is_err());
        assert!(CeremonyState::new("e", 1, guardians(&["a", "a"])).is_err());
        assert!(CeremonyState::new("e", 1, Vec::new()).is_err());
    }

    #[test]
    fn the_state_is_saved_whole_and_read_back_and_a_missing_file_is_no_state() {
        let dir = std::env::temp_dir().join(format!("mediator-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert_eq!(CeremonyState::load(&path).unwrap(), None);
        let mut state = CeremonyState::new("e", 2, guardians(&["a", "b", "c"])).unwrap();
        state.save(&path).unwrap();
        state.round = Round::BackupsShared;
        state.set_url("b", "http://127.0.0.1:2").unwrap();
        assert!(state.set_url("z", "http://127.0.0.1:2").is_err());
        state.save(&path).unwrap();
        assert_eq!(CeremonyState::load(&path).unwrap(), Some(state));
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(
            CeremonyState::load(&path),
            Err(MediatorError::StateFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
