//! The PII columns of a stored user: which hold a value, how plaintext and ciphertext move in
//! and out of them, and which contacts carry a blind index. Shared by the write paths and the
//! `encrypt-existing` and `rewrap` commands.

use crate::domain::contact::{Email, Phone};
use crate::record::{OwnedColumns, UserRow};
use crate::vault::{PiiColumn, PiiScope, SealedField};

/// PII in plaintext, for one row.
#[derive(Debug, Clone, Default)]
pub struct Pii {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    /// The user was erased: their PII key is destroyed and every value above is gone for good.
    pub erased: bool,
}

impl Pii {
    /// Sets (or, with `None`, clears) the plaintext of one column.
    pub fn set(&mut self, column: PiiColumn, value: Option<String>) {
        let slot = match column {
            PiiColumn::Email => &mut self.email,
            PiiColumn::Phone => &mut self.phone,
            PiiColumn::FirstName => &mut self.first_name,
            PiiColumn::LastName => &mut self.last_name,
            PiiColumn::DateOfBirth => &mut self.date_of_birth,
        };
        *slot = value;
    }

    /// The PII of a row written before this service, whose columns hold plaintext.
    pub fn of_legacy_row(row: &UserRow) -> Self {
        let mut pii = Self::default();
        for (column, value) in legacy_values(row) {
            pii.set(column, value);
        }
        pii
    }
}

/// Whether a row's PII columns still hold plaintext (written before this service).
pub fn is_legacy(row: &UserRow) -> bool {
    !row.owned.pii_encrypted
}

/// The key a row's PII is (or, for a legacy row, will be) encrypted under: its user's own
/// context key, or, for a row encrypted before per-user keys, the shared key.
pub fn scope_of(row: &UserRow) -> PiiScope {
    if row.owned.pii_encrypted && !row.owned.pii_erasable {
        PiiScope::Shared
    } else {
        PiiScope::PerUser
    }
}

/// The PII columns of a legacy row, as stored (plaintext).
pub fn legacy_values(row: &UserRow) -> [(PiiColumn, Option<String>); 5] {
    let owned = &row.owned;
    [
        (PiiColumn::Email, Some(owned.sngine_email.clone())),
        (PiiColumn::Phone, Some(owned.sngine_phone.clone())),
        (PiiColumn::FirstName, owned.first_name.clone()),
        (PiiColumn::LastName, owned.last_name.clone()),
        (PiiColumn::DateOfBirth, owned.date_of_birth.clone()),
    ]
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

/// The encrypted PII columns of several rows that hold a value, each with its row's index.
pub fn sealed_fields_by_row<'a>(rows: &[&'a UserRow]) -> Vec<(usize, SealedField<'a>)> {
    rows.iter()
        .enumerate()
        .flat_map(|(index, row)| {
            sealed_fields(row)
                .into_iter()
                .map(move |field| (index, field))
        })
        .collect()
}

/// Stores a value (a ciphertext, or for a clear `None`) in a PII column. The contact columns
/// cannot be null: clearing one stores the empty text.
pub fn set_column(owned: &mut OwnedColumns, column: PiiColumn, value: Option<String>) {
    match column {
        PiiColumn::Email => owned.sngine_email = value.unwrap_or_default(),
        PiiColumn::Phone => owned.sngine_phone = value.unwrap_or_default(),
        PiiColumn::FirstName => owned.first_name = value,
        PiiColumn::LastName => owned.last_name = value,
        PiiColumn::DateOfBirth => owned.date_of_birth = value,
    }
}

/// A contact that carries a blind index, so that it can be looked up and kept unique while
/// stored encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexedContact {
    Email,
    Phone,
}

impl IndexedContact {
    /// Both indexed contacts, in the order their indexes are computed and stored.
    pub const BOTH: [IndexedContact; 2] = [IndexedContact::Email, IndexedContact::Phone];

    /// The blind-index input: the normalised value, or (for legacy rows that do not parse) the
    /// trimmed (and, for an email, lower-cased) text.
    pub fn index_input(self, plain: &str) -> String {
        match self {
            IndexedContact::Email => Email::parse(plain)
                .map(|email| email.as_str().to_owned())
                .unwrap_or_else(|_| plain.trim().to_lowercase()),
            IndexedContact::Phone => Phone::parse(plain)
                .map(|phone| phone.as_str().to_owned())
                .unwrap_or_else(|_| plain.trim().to_owned()),
        }
    }

    /// The blind-index input of a legacy row's stored (plaintext) contact.
    pub fn legacy_index_input(self, owned: &OwnedColumns) -> String {
        match self {
            IndexedContact::Email => self.index_input(&owned.sngine_email),
            IndexedContact::Phone => self.index_input(&owned.sngine_phone),
        }
    }

    /// Stores the contact's blind index.
    pub fn set_index(self, owned: &mut OwnedColumns, index: String) {
        match self {
            IndexedContact::Email => owned.email_bidx = Some(index),
            IndexedContact::Phone => owned.phone_bidx = Some(index),
        }
    }
}
