//! A stored guardian read back: its ceremony parameters, stage and public state, typed. The
//! sealed polynomial stays sealed here; [`super::secrets`] opens it when a step needs it.

use serde::de::DeserializeOwned;
use vottery_common::guardians::{CeremonyRecord, GuardianStage, GuardianStatus};
use vottery_election::{ElectionPartialKeyBackup, ElectionPublicKey};

use super::error::GuardianError;
use super::secrets::SecretOwner;
use super::store::GuardianRow;

/// One guardian hosted by this instance.
#[derive(Debug, Clone)]
pub struct Guardian {
    pub name: String,
    pub ceremony_id: String,
    pub sequence_order: u32,
    pub number_of_guardians: u32,
    pub quorum: u32,
    pub stage: GuardianStage,
    pub sealed_polynomial: Vec<u8>,
    pub public_record: ElectionPublicKey,
    /// Every guardian's record, in sequence order, from `backups_shared` on.
    pub public_records: Option<Vec<ElectionPublicKey>>,
    /// The backups this guardian made, from `backups_shared` on.
    pub backups: Option<Vec<ElectionPartialKeyBackup>>,
    pub ceremony_record: Option<CeremonyRecord>,
}

fn column<T: DeserializeOwned>(
    name: &str,
    column: &str,
    value: serde_json::Value,
) -> Result<T, GuardianError> {
    serde_json::from_value(value).map_err(|error| {
        GuardianError::Internal(format!(
            "guardian {name}: stored {column} unreadable: {error}"
        ))
    })
}

impl TryFrom<GuardianRow> for Guardian {
    type Error = GuardianError;

    fn try_from(row: GuardianRow) -> Result<Self, Self::Error> {
        let name = row.name;
        let stage = GuardianStage::parse(&row.stage).ok_or_else(|| {
            GuardianError::Internal(format!("guardian {name}: unknown stage {}", row.stage))
        })?;
        Ok(Self {
            ceremony_id: row.ceremony_id,
            sequence_order: row.sequence_order as u32,
            number_of_guardians: row.number_of_guardians as u32,
            quorum: row.quorum as u32,
            stage,
            sealed_polynomial: row.sealed_polynomial,
            public_record: column(&name, "public_record", row.public_record)?,
            public_records: row
                .public_records
                .map(|value| column(&name, "public_records", value))
                .transpose()?,
            backups: row
                .backups
                .map(|value| column(&name, "backups", value))
                .transpose()?,
            ceremony_record: row
                .ceremony_record
                .map(|value| column(&name, "ceremony_record", value))
                .transpose()?,
            name,
        })
    }
}

impl Guardian {
    /// Whose secrets these are, for the barrier's associated data.
    pub fn secret_owner(&self) -> SecretOwner<'_> {
        SecretOwner {
            guardian: &self.name,
            ceremony_id: &self.ceremony_id,
        }
    }

    /// The view `GET /v1/guardians/{guardian}` answers.
    pub fn status(&self) -> GuardianStatus {
        GuardianStatus {
            guardian_id: self.name.clone(),
            ceremony_id: self.ceremony_id.clone(),
            sequence_order: self.sequence_order,
            number_of_guardians: self.number_of_guardians,
            quorum: self.quorum,
            stage: self.stage,
            public_record: self.public_record.clone(),
            joint_key: self
                .ceremony_record
                .as_ref()
                .map(|record| record.joint_key.clone()),
        }
    }

    /// The public records once shared; a 409 naming the backups step before.
    pub fn shared_records(&self) -> Result<&[ElectionPublicKey], GuardianError> {
        match &self.public_records {
            Some(records) if self.stage >= GuardianStage::BackupsShared => Ok(records),
            _ => Err(GuardianError::missing_step(
                "backups",
                format!(
                    "guardian {} has not shared its backups yet: POST /v1/guardians/{}/backups first",
                    self.name, self.name
                ),
            )),
        }
    }

    /// The signed ceremony record; a 409 naming the finalize step before.
    pub fn finalized(&self) -> Result<&CeremonyRecord, GuardianError> {
        match &self.ceremony_record {
            Some(record) if self.stage == GuardianStage::Finalized => Ok(record),
            _ => Err(GuardianError::missing_step(
                "finalize",
                format!(
                    "guardian {} is not finalized (stage {}): POST /v1/guardians/{}/finalize first",
                    self.name, self.stage, self.name
                ),
            )),
        }
    }

    /// Another guardian's public record, by name.
    pub fn record_of(&self, owner_id: &str) -> Option<&ElectionPublicKey> {
        self.public_records
            .as_ref()?
            .iter()
            .find(|record| record.owner_id == owner_id)
    }
}

impl Guardian {
    /// Reads the guardian named `name`; 404 when this instance hosts none.
    pub async fn load(
        keys: &crate::keys::store::KeyStore,
        name: &super::input::GuardianName,
    ) -> Result<Self, GuardianError> {
        let mut conn = keys.connection().await?;
        super::store::find(&mut conn, name.as_str())
            .await?
            .ok_or_else(|| GuardianError::NotFound(name.to_string()))?
            .try_into()
    }
    /// Inside a transaction: reads and locks (`FOR UPDATE`) the guardian named `name`, so that
    /// one request at a time moves it on; 404 when this instance hosts none.
    pub async fn lock(
        conn: &mut diesel_async::AsyncPgConnection,
        name: &super::input::GuardianName,
    ) -> Result<Self, GuardianError> {
        super::store::lock(conn, name.as_str())
            .await?
            .ok_or_else(|| GuardianError::NotFound(name.to_string()))?
            .try_into()
    }
}
