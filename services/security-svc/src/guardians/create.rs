//! Creating a guardian: its secret polynomial of degree k−1 (sealed at once) and its public
//! record. Idempotent: the same request again answers the stored guardian; another one is 409.

use chrono::Utc;
use vottery_common::guardians::{CreateGuardian, GuardianStage, GuardianStatus};
use vottery_election::{ElectionPolynomial, ElectionPublicKey};

use super::blocking;
use super::error::GuardianError;
use super::guardian::Guardian;
use super::input::{GuardianName, check_create};
use super::secrets::SecretOwner;
use super::store::{self, GuardianRow};
use crate::keys::store::KeyStore;

/// Whether the answer made the guardian or found it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Existing,
}

fn same_parameters(guardian: &Guardian, request: &CreateGuardian) -> bool {
    guardian.ceremony_id == request.ceremony_id
        && guardian.sequence_order == request.sequence_order
        && guardian.number_of_guardians == request.number_of_guardians
        && guardian.quorum == request.quorum
}

fn existing(
    guardian: &Guardian,
    request: &CreateGuardian,
) -> Result<GuardianStatus, GuardianError> {
    if same_parameters(guardian, request) {
        Ok(guardian.status())
    } else {
        Err(GuardianError::conflict(
            "guardian",
            format!(
                "guardian {} already exists with other ceremony parameters (ceremony {}, sequence order {}, {} guardians, quorum {})",
                guardian.name,
                guardian.ceremony_id,
                guardian.sequence_order,
                guardian.number_of_guardians,
                guardian.quorum
            ),
        ))
    }
}

/// Creates guardian `name`, or answers the one already there.
pub async fn create(
    keys: &KeyStore,
    name: &GuardianName,
    request: CreateGuardian,
) -> Result<(GuardianStatus, Outcome), GuardianError> {
    check_create(&request)?;
    match Guardian::load(keys, name).await {
        Ok(guardian) => return Ok((existing(&guardian, &request)?, Outcome::Existing)),
        Err(GuardianError::NotFound(_)) => {}
        Err(error) => return Err(error),
    }
    let root = keys.barrier();
    let guardian_id = name.as_str().to_owned();
    let ceremony_id = request.ceremony_id.clone();
    let (quorum, sequence_order) = (request.quorum, request.sequence_order);
    let (sealed_polynomial, public_record) = blocking(move || {
        let polynomial = ElectionPolynomial::generate(quorum);
        let public_record = ElectionPublicKey::new(&guardian_id, sequence_order, &polynomial);
        let owner = SecretOwner {
            guardian: &guardian_id,
            ceremony_id: &ceremony_id,
        };
        Ok((owner.seal_polynomial(&root, &polynomial)?, public_record))
    })
    .await?;
    let now = Utc::now();
    let row = GuardianRow {
        name: name.as_str().to_owned(),
        ceremony_id: request.ceremony_id.clone(),
        sequence_order: request.sequence_order as i32,
        number_of_guardians: request.number_of_guardians as i32,
        quorum: request.quorum as i32,
        stage: GuardianStage::Created.as_str().to_owned(),
        sealed_polynomial,
        public_record: serde_json::to_value(&public_record)
            .map_err(|error| GuardianError::Internal(error.to_string()))?,
        public_records: None,
        backups: None,
        ceremony_record: None,
        created_at: now,
        updated_at: now,
    };
    let inserted = {
        let mut conn = keys.connection().await?;
        store::insert(&mut conn, &row).await?
    };
    // A concurrent create of the same name won: answer as a repeat.
    let guardian = Guardian::load(keys, name).await?;
    if inserted {
        tracing::info!(
            guardian = %name,
            ceremony = %request.ceremony_id,
            sequence_order = request.sequence_order,
            number_of_guardians = request.number_of_guardians,
            quorum = request.quorum,
            "guardian created"
        );
        Ok((guardian.status(), Outcome::Created))
    } else {
        Ok((existing(&guardian, &request)?, Outcome::Existing))
    }
}
