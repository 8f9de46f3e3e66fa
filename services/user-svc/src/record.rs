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

use crate::domain::roles::{AdminRole, SubscriptionStatus, UserType};
use crate::domain::status::Status;
use crate::schema::vottery_users;
use crate::stored::Stored;

fn timestamp<S: Serializer>(
    value: &Option<NaiveDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_str(&signed_timestamp(value)),
        None => serializer.serialize_none(),
    }
}

/// A timestamp as the signed form writes it: `%Y-%m-%dT%H:%M:%S%.6fZ`, with the fields written
/// directly for the years PostgreSQL's timestamps hold in four digits (chrono's formatter
/// parses its pattern on every call); any other value goes through chrono itself.
fn signed_timestamp(value: &NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (value.year(), value.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return value.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        value.month(),
        value.day(),
        value.hour(),
        value.minute(),
        value.second(),
        nanos / 1_000
    )
}

/// The columns user-svc writes. Everything here but the signature is signed.
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = vottery_users, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct OwnedColumns {
    pub sngine_email: String,
    pub sngine_phone: String,
    pub email_bidx: Option<String>,
    pub phone_bidx: Option<String>,
    pub status: Option<Stored<Status>>,
    pub user_type: Option<Stored<UserType>>,
    pub admin_role: Option<Stored<AdminRole>>,
    pub subscription_status: Option<Stored<SubscriptionStatus>>,
    pub subscription_plan: Option<String>,
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
    /// The PII is encrypted under the user's own context key (erasable by destroying it).
    pub pii_erasable: bool,
    pub row_version: i64,
    pub record_signature: Option<String>,
}

/// A whole row as read.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
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

/// The signed form: identity, creation time and the owned columns, with its members declared in
/// RFC 8785 order (keys sorted by code unit). Its members are strings, integers below 2^53,
/// booleans and nulls only, which serde_json writes exactly as RFC 8785 does, so its compact serialisation
/// is the canonical form without a generic canonicaliser's re-sorting (a test holds the two
/// equal).
#[derive(Serialize)]
struct SignedForm<'a> {
    admin_role: &'a Option<Stored<AdminRole>>,
    avatar_url: &'a Option<String>,
    bio: &'a Option<String>,
    city: &'a Option<String>,
    country: &'a Option<String>,
    #[serde(serialize_with = "timestamp")]
    created_at: &'a Option<NaiveDateTime>,
    date_of_birth: &'a Option<String>,
    email_bidx: &'a Option<String>,
    first_name: &'a Option<String>,
    gender: &'a Option<String>,
    id: i32,
    language: &'a Option<String>,
    last_name: &'a Option<String>,
    notifications_enabled: Option<bool>,
    phone_bidx: &'a Option<String>,
    pii_encrypted: bool,
    /// Left out while false, so that records signed before the column existed still verify.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pii_erasable: bool,
    row_version: i64,
    sngine_email: &'a str,
    sngine_phone: &'a str,
    status: &'a Option<Stored<Status>>,
    #[serde(serialize_with = "timestamp")]
    subscription_expires_at: &'a Option<NaiveDateTime>,
    subscription_plan: &'a Option<String>,
    subscription_status: &'a Option<Stored<SubscriptionStatus>>,
    timezone: &'a Option<String>,
    user_type: &'a Option<Stored<UserType>>,
}

impl<'a> SignedForm<'a> {
    fn of(id: i32, created_at: &'a Option<NaiveDateTime>, owned: &'a OwnedColumns) -> Self {
        // Destructured so that a column added to OwnedColumns cannot be left unsigned silently.
        let OwnedColumns {
            sngine_email,
            sngine_phone,
            email_bidx,
            phone_bidx,
            status,
            user_type,
            admin_role,
            subscription_status,
            subscription_plan,
            subscription_expires_at,
            first_name,
            last_name,
            date_of_birth,
            gender,
            country,
            city,
            timezone,
            bio,
            avatar_url,
            language,
            notifications_enabled,
            pii_encrypted,
            pii_erasable,
            row_version,
            record_signature: _,
        } = owned;
        Self {
            admin_role,
            avatar_url,
            bio,
            city,
            country,
            created_at,
            date_of_birth,
            email_bidx,
            first_name,
            gender,
            id,
            language,
            last_name,
            notifications_enabled: *notifications_enabled,
            phone_bidx,
            pii_encrypted: *pii_encrypted,
            pii_erasable: *pii_erasable,
            row_version: *row_version,
            sngine_email,
            sngine_phone,
            status,
            subscription_expires_at,
            subscription_plan,
            subscription_status,
            timezone,
            user_type,
        }
    }
}

/// Room for a typical signed form (five ciphertexts, two blind indexes, the profile) without
/// growing the buffer while it is written.
const SIGNED_FORM_CAPACITY: usize = 2048;

/// SHA-256 of the RFC 8785 canonical JSON of a record's signed form.
pub fn record_digest(
    id: i32,
    created_at: &Option<NaiveDateTime>,
    owned: &OwnedColumns,
) -> [u8; 32] {
    // Serialising plain strings, numbers and booleans cannot fail.
    let mut canonical = Vec::with_capacity(SIGNED_FORM_CAPACITY);
    serde_json::to_writer(&mut canonical, &SignedForm::of(id, created_at, owned))
        .unwrap_or_default();
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
            status: Some(Status::Pending.into()),
            user_type: Some(UserType::Voter.into()),
            admin_role: None,
            subscription_status: Some(SubscriptionStatus::Free.into()),
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
            pii_erasable: true,
            row_version: 1,
            record_signature: None,
        }
    }

    /// The signed form written directly is byte for byte what an RFC 8785 canonicaliser makes
    /// of it, for values with escapes, control characters, non-ASCII text and empty fields.
    #[test]
    fn the_signed_form_is_rfc_8785_canonical() {
        let created = Some(now_micros());
        let mut full = owned();
        full.admin_role = Some(AdminRole::Manager.into());
        full.status = Some(Stored::from_text("Banned \"legacy\""));
        full.first_name = Some("Zoë \"Q\" \\ \u{1} \u{1f} \u{7f} \t\n\r\u{8}\u{c} 名前 😀".into());
        full.bio = Some("\u{2028}\u{2029}</script>".into());
        full.subscription_expires_at = Some(now_micros());
        full.notifications_enabled = None;
        // RFC 8785 writes numbers as doubles; versions are exact up to 2^53 writes of a row.
        full.row_version = 1 << 53;
        for (id, owned) in [(7, owned()), (-1, full)] {
            let form = SignedForm::of(id, &created, &owned);
            let direct = serde_json::to_vec(&form).unwrap();
            let canonical = serde_json_canonicalizer::to_vec(&form).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(canonical).unwrap()
            );
        }
    }

    /// Timestamps written field by field are what chrono's formatter writes, at the edges of
    /// the fields and of the years written directly.
    #[test]
    fn signed_timestamps_are_chrono_formatted() {
        use chrono::NaiveDate;
        let at = |y, mo, d, h, mi, s, micros| {
            NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_micro_opt(h, mi, s, micros)
                .unwrap()
        };
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap();
        for value in [
            at(2026, 12, 6, 16, 8, 7, 123_456),
            at(1970, 1, 1, 0, 0, 0, 0),
            at(9999, 12, 31, 23, 59, 59, 999_999),
            at(0, 1, 1, 0, 0, 0, 1),
            at(10_000, 1, 1, 0, 0, 0, 0),
            at(-44, 3, 15, 12, 0, 0, 0),
            now_micros(),
            leap,
        ] {
            assert_eq!(
                signed_timestamp(&value),
                value.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
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
