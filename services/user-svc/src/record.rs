//! The stored user record, and the canonical form its signature covers.
//!
//! The signature covers every column user-svc owns (identity, contacts, blind indexes, status,
//! roles, subscription, profile, row version) in their stored form, ciphertexts included,
//! canonicalised with RFC 8785 and hashed with SHA-256. Left out: `updated_at` (kept by a
//! trigger), and the columns the auth- and biometric-services write themselves (`last_login`,
//! `email_verified_at`, `phone_verified_at`, `biometric_registered_at`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use ring::digest;
use serde::{Serialize, Serializer};

use crate::schema::vottery_users;

fn timestamp<S: Serializer>(
    value: &Option<NaiveDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => {
            serializer.serialize_str(&value.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        }
        None => serializer.serialize_none(),
    }
}

/// The columns user-svc writes. Everything here but the signature is signed.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = vottery_users, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct OwnedColumns {
    pub sngine_email: String,
    pub sngine_phone: String,
    pub email_bidx: Option<String>,
    pub phone_bidx: Option<String>,
    pub status: Option<String>,
    pub user_type: Option<String>,
    pub admin_role: Option<String>,
    pub subscription_status: Option<String>,
    pub subscription_plan: Option<String>,
    #[serde(serialize_with = "timestamp")]
    pub subscription_expires_at: Option<NaiveDateTime>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub gender: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub language: Option<String>,
    pub notifications_enabled: Option<bool>,
    pub pii_encrypted: bool,
    pub row_version: i64,
    #[serde(skip)]
    pub record_signature: Option<String>,
}

/// A whole row as read.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = vottery_users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: i32,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub email_verified_at: Option<NaiveDateTime>,
    pub phone_verified_at: Option<NaiveDateTime>,
    pub biometric_registered_at: Option<NaiveDateTime>,
    pub last_login: Option<NaiveDateTime>,
    #[diesel(embed)]
    pub owned: OwnedColumns,
}

/// A new row: its id (taken from the sequence first, since the ciphertexts are bound to it).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = vottery_users)]
pub struct NewUserRow {
    pub id: i32,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    #[diesel(embed)]
    pub owned: OwnedColumns,
}

/// The signed form: identity, creation time and the owned columns.
#[derive(Serialize)]
struct SignedForm<'a> {
    id: i32,
    #[serde(serialize_with = "timestamp")]
    created_at: &'a Option<NaiveDateTime>,
    #[serde(flatten)]
    owned: &'a OwnedColumns,
}

/// SHA-256 of the RFC 8785 canonical JSON of a record's signed form.
pub fn record_digest(
    id: i32,
    created_at: &Option<NaiveDateTime>,
    owned: &OwnedColumns,
) -> [u8; 32] {
    let form = SignedForm {
        id,
        created_at,
        owned,
    };
    // Serialising plain strings, numbers and booleans cannot fail.
    let canonical = serde_json_canonicalizer::to_vec(&form).unwrap_or_default();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, &canonical).as_ref());
    out
}

impl UserRow {
    pub fn digest(&self) -> [u8; 32] {
        record_digest(self.id, &self.created_at, &self.owned)
    }
}

/// Now, truncated to the microseconds PostgreSQL stores, so signed and stored values agree.
pub fn now_micros() -> NaiveDateTime {
    use chrono::Timelike;
    let now = chrono::Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> OwnedColumns {
        OwnedColumns {
            sngine_email: "vault:v1:abc".into(),
            sngine_phone: "vault:v1:def".into(),
            email_bidx: Some("vault:v1:e".into()),
            phone_bidx: Some("vault:v1:p".into()),
            status: Some("pending".into()),
            user_type: Some("voter".into()),
            admin_role: None,
            subscription_status: Some("free".into()),
            subscription_plan: None,
            subscription_expires_at: None,
            first_name: None,
            last_name: None,
            date_of_birth: None,
            gender: None,
            country: Some("US".into()),
            city: None,
            timezone: Some("UTC".into()),
            bio: None,
            avatar_url: None,
            language: Some("en".into()),
            notifications_enabled: Some(true),
            pii_encrypted: true,
            row_version: 1,
            record_signature: None,
        }
    }

    #[test]
    fn the_digest_covers_every_owned_column_but_the_signature() {
        let created = Some(now_micros());
        let base = record_digest(7, &created, &owned());
        assert_eq!(base, record_digest(7, &created, &owned()));
        assert_ne!(base, record_digest(8, &created, &owned()));
        let mut changed = owned();
        changed.country = Some("DE".into());
        assert_ne!(base, record_digest(7, &created, &changed));
        let mut changed = owned();
        changed.row_version = 2;
        assert_ne!(base, record_digest(7, &created, &changed));
        let mut signed = owned();
        signed.record_signature = Some("vault:v1:sig".into());
        assert_eq!(base, record_digest(7, &created, &signed));
    }
}
