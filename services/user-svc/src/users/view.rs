//! Turns stored rows into responses: PII decrypted in one batched call, signatures checked
//! together, `age` derived, contacts masked for low ranks. A value that fails to
//! decrypt (a ciphertext from another row or column) is reported, never shown. A user whose
//! PII key was destroyed (erased, the row not yet deleted, or read from a restored backup)
//! reads with those fields null and `erased: true`, not as an integrity failure.

use chrono::{NaiveDate, NaiveDateTime};
use vottery_common::problem::FieldError;
use vottery_common::users::{SignatureCheck, UserView};

use super::actor::Contacts;
use super::pii::{Pii, is_legacy, scope_of, sealed_fields};
use crate::domain::contact::{Email, Phone};
use crate::domain::profile::age;
use crate::domain::roles::{SubscriptionStatus, UserType};
use crate::domain::status::Status;
use crate::error::ApiError;
use crate::record::UserRow;
use crate::stored::{Stored, StoredText};
use crate::vault::{PiiScope, SIGNATURE_ALGORITHM, SealedField, Vault, is_erased, key_version};

/// A typed column's text as stored, or the column's default when it is null.
fn stored_text<T: StoredText>(value: &Option<Stored<T>>, default: T) -> String {
    value
        .as_ref()
        .map_or(default.as_str(), Stored::as_str)
        .to_owned()
}

fn utc(value: Option<NaiveDateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    value.map(|value| value.and_utc())
}

/// What the checks of a stored record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Its signature verifies and every ciphertext decrypts (or the service has just written
    /// and signed it).
    Intact,
    /// Its signature does not verify (or it has none), and the columns named in `withheld`
    /// did not decrypt for their row and column.
    Failed { withheld: Vec<FieldError> },
}

impl Integrity {
    /// The outcome of a signature check and the columns that did not decrypt.
    fn of(signature_valid: bool, withheld: Vec<FieldError>) -> Self {
        if signature_valid && withheld.is_empty() {
            Integrity::Intact
        } else {
            Integrity::Failed { withheld }
        }
    }
}

/// Builds the view of one row from its plaintext PII and what its checks found, with the
/// contacts shown as the reader may see them.
pub fn build(
    row: &UserRow,
    pii: Pii,
    integrity: Integrity,
    contacts: Contacts,
    today: NaiveDate,
) -> UserView {
    let owned = &row.owned;
    let (signature_valid, integrity_errors) = match integrity {
        Integrity::Intact => (true, Vec::new()),
        Integrity::Failed { withheld } => (false, withheld),
    };
    let date_of_birth = pii
        .date_of_birth
        .as_deref()
        .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
    let (email, phone) = shown_contacts(pii.email.clone(), pii.phone.clone(), contacts);
    UserView {
        id: row.id,
        sngine_email: email,
        sngine_phone: phone,
        email_verified_at: utc(row.email_verified_at),
        phone_verified_at: utc(row.phone_verified_at),
        biometric_registered_at: utc(row.biometric_registered_at),
        status: stored_text(&owned.status, Status::Pending),
        last_login: utc(row.last_login),
        user_type: stored_text(&owned.user_type, UserType::Voter),
        admin_role: owned
            .admin_role
            .as_ref()
            .map(|role| role.as_str().to_owned()),
        subscription_status: stored_text(&owned.subscription_status, SubscriptionStatus::Free),
        subscription_plan: owned.subscription_plan.clone(),
        subscription_expires_at: utc(owned.subscription_expires_at),
        first_name: pii.first_name.clone(),
        last_name: pii.last_name.clone(),
        date_of_birth,
        age: date_of_birth.map(|born| age(born, today)),
        gender: owned.gender.clone(),
        country: owned.country.clone(),
        city: owned.city.clone(),
        timezone: owned.timezone.clone(),
        bio: owned.bio.clone(),
        avatar_url: owned.avatar_url.clone(),
        language: owned.language.clone(),
        notifications_enabled: owned.notifications_enabled,
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        version: owned.row_version,
        signature: signature_check(row, signature_valid),
        contacts_masked: contacts == Contacts::Masked,
        erased: pii.erased,
        integrity_errors,
    }
}

/// Email and phone as the reader may see them.
fn shown_contacts(
    email: Option<String>,
    phone: Option<String>,
    contacts: Contacts,
) -> (Option<String>, Option<String>) {
    match contacts {
        Contacts::Shown => (email, phone),
        Contacts::Masked => (
            email.as_deref().map(Email::masked),
            phone.as_deref().map(Phone::masked),
        ),
    }
}

/// What the answer says about a record's signature.
fn signature_check(row: &UserRow, valid: bool) -> SignatureCheck {
    SignatureCheck {
        valid,
        key_version: row.owned.record_signature.as_deref().and_then(key_version),
        algorithm: SIGNATURE_ALGORITHM.into(),
    }
}

/// Renders rows with one decrypt call and one signature check for all of them together.
pub async fn render(
    vault: &Vault,
    request_id: &str,
    rows: &[UserRow],
    contacts: Contacts,
    today: NaiveDate,
) -> Result<Vec<UserView>, ApiError> {
    let checks = Checks::of(rows);
    let (decrypted, verified) = tokio::try_join!(
        vault.decrypt_scoped(request_id, &checks.sealed),
        vault.verify(request_id, &checks.signed)
    )?;
    let (pii, withheld) = checks.decrypted(rows, decrypted);
    let valid = checks.verified(rows, verified);
    Ok(rows
        .iter()
        .zip(pii)
        .zip(withheld)
        .zip(valid)
        .map(|(((row, pii), withheld), valid)| {
            build(row, pii, Integrity::of(valid, withheld), contacts, today)
        })
        .collect())
}

/// What rendering rows asks security-svc: every ciphertext to decrypt and every signature to
/// check, each with the index of its row.
struct Checks<'a> {
    sealed: Vec<(PiiScope, SealedField<'a>)>,
    owners: Vec<usize>,
    signed: Vec<([u8; 32], &'a str)>,
    signed_rows: Vec<usize>,
}

impl<'a> Checks<'a> {
    fn of(rows: &'a [UserRow]) -> Self {
        let mut checks = Checks {
            sealed: Vec::new(),
            owners: Vec::new(),
            signed: Vec::new(),
            signed_rows: Vec::new(),
        };
        for (index, row) in rows.iter().enumerate() {
            if !is_legacy(row) {
                for field in sealed_fields(row) {
                    checks.owners.push(index);
                    checks.sealed.push((scope_of(row), field));
                }
            }
            if let Some(signature) = row.owned.record_signature.as_deref() {
                checks.signed.push((row.digest(), signature));
                checks.signed_rows.push(index);
            }
        }
        checks
    }

    /// Each row's plaintext, and the columns withheld because they did not decrypt for their
    /// row and column.
    fn decrypted(
        &self,
        rows: &[UserRow],
        decrypted: Vec<Result<String, String>>,
    ) -> (Vec<Pii>, Vec<Vec<FieldError>>) {
        let mut pii: Vec<Pii> = rows
            .iter()
            .map(|row| {
                if is_legacy(row) {
                    Pii::of_legacy_row(row)
                } else {
                    Pii::default()
                }
            })
            .collect();
        let mut withheld: Vec<Vec<FieldError>> = vec![Vec::new(); rows.len()];
        for ((index, (_, field)), result) in self.owners.iter().zip(&self.sealed).zip(decrypted) {
            match result {
                Ok(value) => pii[*index].set(field.column, Some(value)),
                Err(reason) if is_erased(&reason) => pii[*index].erased = true,
                Err(reason) => {
                    tracing::warn!(
                        user_id = field.user_id,
                        column = field.column.column(),
                        %reason,
                        "stored ciphertext does not decrypt for its row and column"
                    );
                    withheld[*index].push(FieldError::new(
                        field.column.column(),
                        "the stored value does not belong to this record and was withheld",
                    ));
                }
            }
        }
        (pii, withheld)
    }

    /// Whether each row's signature verifies (false for a row without one).
    fn verified(&self, rows: &[UserRow], verified: Vec<bool>) -> Vec<bool> {
        let mut valid = vec![false; rows.len()];
        for (index, ok) in self.signed_rows.iter().zip(verified) {
            valid[*index] = ok;
            if !ok {
                tracing::warn!(
                    user_id = rows[*index].id,
                    "user record fails its signature check"
                );
            }
        }
        valid
    }
}
