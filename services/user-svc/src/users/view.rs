//! Turns stored rows into responses: PII decrypted in one batched call, signatures checked
//! together, `age` derived, contacts masked for low ranks. A value that fails to
//! decrypt (a ciphertext from another row or column) is reported, never shown.

use chrono::{NaiveDate, NaiveDateTime};
use vottery_common::problem::FieldError;
use vottery_common::users::{SignatureCheck, UserView};

use crate::domain::contact::{Email, Phone};
use crate::domain::profile::age;
use crate::error::ApiError;
use crate::record::UserRow;
use crate::vault::{PiiColumn, SIGNATURE_ALGORITHM, SealedField, Vault, key_version};

/// PII in plaintext, for one row.
#[derive(Debug, Clone, Default)]
pub struct Pii {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
}

impl Pii {
    fn slot(&mut self, column: PiiColumn) -> &mut Option<String> {
        match column {
            PiiColumn::Email => &mut self.email,
            PiiColumn::Phone => &mut self.phone,
            PiiColumn::FirstName => &mut self.first_name,
            PiiColumn::LastName => &mut self.last_name,
            PiiColumn::DateOfBirth => &mut self.date_of_birth,
        }
    }
}

/// The encrypted PII columns of a row that hold a value.
pub fn sealed_fields(row: &UserRow) -> Vec<SealedField<'_>> {
    let owned = &row.owned;
    [
        (PiiColumn::Email, Some(owned.sngine_email.as_str())),
        (PiiColumn::Phone, Some(owned.sngine_phone.as_str())),
        (PiiColumn::FirstName, owned.first_name.as_deref()),
        (PiiColumn::LastName, owned.last_name.as_deref()),
        (PiiColumn::DateOfBirth, owned.date_of_birth.as_deref()),
    ]
    .into_iter()
    .filter_map(|(column, value)| {
        value.map(|ciphertext| SealedField {
            user_id: row.id,
            column,
            ciphertext,
        })
    })
    .collect()
}

/// A row whose PII was written before this service: the columns hold plaintext.
fn plaintext_pii(row: &UserRow) -> Pii {
    Pii {
        email: Some(row.owned.sngine_email.clone()),
        phone: Some(row.owned.sngine_phone.clone()),
        first_name: row.owned.first_name.clone(),
        last_name: row.owned.last_name.clone(),
        date_of_birth: row.owned.date_of_birth.clone(),
    }
}

fn utc(value: Option<NaiveDateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    value.map(|value| value.and_utc())
}

/// Builds the view of one row from its plaintext PII and signature check.
pub fn build(
    row: &UserRow,
    pii: Pii,
    signature_valid: bool,
    masked: bool,
    integrity_errors: Vec<FieldError>,
    today: NaiveDate,
) -> UserView {
    let owned = &row.owned;
    let date_of_birth = pii
        .date_of_birth
        .as_deref()
        .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
    let (email, phone) = if masked {
        (
            pii.email.as_deref().map(Email::masked),
            pii.phone.as_deref().map(Phone::masked),
        )
    } else {
        (pii.email, pii.phone)
    };
    UserView {
        id: row.id,
        sngine_email: email,
        sngine_phone: phone,
        email_verified_at: utc(row.email_verified_at),
        phone_verified_at: utc(row.phone_verified_at),
        biometric_registered_at: utc(row.biometric_registered_at),
        status: owned.status.clone().unwrap_or_else(|| "pending".into()),
        last_login: utc(row.last_login),
        user_type: owned.user_type.clone().unwrap_or_else(|| "voter".into()),
        admin_role: owned.admin_role.clone(),
        subscription_status: owned
            .subscription_status
            .clone()
            .unwrap_or_else(|| "free".into()),
        subscription_plan: owned.subscription_plan.clone(),
        subscription_expires_at: utc(owned.subscription_expires_at),
        first_name: pii.first_name,
        last_name: pii.last_name,
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
        signature: SignatureCheck {
            valid: signature_valid,
            key_version: owned.record_signature.as_deref().and_then(key_version),
            algorithm: SIGNATURE_ALGORITHM.into(),
        },
        contacts_masked: masked,
        integrity_errors,
    }
}

/// Renders rows with one decrypt call and one signature check for all of them together.
pub async fn render(
    vault: &Vault,
    request_id: &str,
    rows: &[UserRow],
    masked: bool,
    today: NaiveDate,
) -> Result<Vec<UserView>, ApiError> {
    let mut sealed = Vec::new();
    let mut owners = Vec::new();
    let mut signed = Vec::new();
    let mut signed_rows = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        if row.owned.pii_encrypted {
            for field in sealed_fields(row) {
                owners.push(index);
                sealed.push(field);
            }
        }
        if let Some(signature) = row.owned.record_signature.as_deref() {
            signed.push((row.digest(), signature));
            signed_rows.push(index);
        }
    }
    let (decrypted, verified) = tokio::try_join!(
        vault.decrypt(request_id, &sealed),
        vault.verify(request_id, &signed)
    )?;

    let mut pii: Vec<Pii> = rows
        .iter()
        .map(|row| {
            if row.owned.pii_encrypted {
                Pii::default()
            } else {
                plaintext_pii(row)
            }
        })
        .collect();
    let mut errors: Vec<Vec<FieldError>> = vec![Vec::new(); rows.len()];
    for ((index, field), result) in owners.iter().zip(&sealed).zip(decrypted) {
        match result {
            Ok(value) => *pii[*index].slot(field.column) = Some(value),
            Err(reason) => {
                tracing::warn!(
                    user_id = field.user_id,
                    column = field.column.column(),
                    %reason,
                    "stored ciphertext does not decrypt for its row and column"
                );
                errors[*index].push(FieldError::new(
                    field.column.column(),
                    "the stored value does not belong to this record and was withheld",
                ));
            }
        }
    }
    let mut valid = vec![false; rows.len()];
    for (index, ok) in signed_rows.into_iter().zip(verified) {
        valid[index] = ok;
        if !ok {
            tracing::warn!(
                user_id = rows[index].id,
                "user record fails its signature check"
            );
        }
    }
    Ok(rows
        .iter()
        .zip(pii)
        .zip(errors)
        .zip(valid)
        .map(|(((row, pii), errors), valid)| {
            build(row, pii, valid && errors.is_empty(), masked, errors, today)
        })
        .collect())
}
