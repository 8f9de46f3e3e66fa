//! The typed text columns of the stored user record (status, user type, admin role,
//! subscription status): read into their domain enums and written back as the same text.
//!
//! The columns' value checks were added `NOT VALID`, so rows the customer's tables held before
//! user-svc may carry other text. Such a value is kept exactly as stored ([`Stored::Other`]):
//! a record's signature covers the stored text, and rewriting it would change the record.

use std::fmt;
use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Serialize, Serializer};

use crate::domain::roles::{AdminRole, SubscriptionStatus, UserType};
use crate::domain::status::Status;

/// A domain enum stored as text.
pub trait StoredText: Copy + fmt::Debug + 'static {
    /// The stored text of a value.
    fn as_str(self) -> &'static str;
    /// The value a stored text names, if any.
    fn from_text(text: &str) -> Option<Self>;
}

macro_rules! stored_text {
    ($($type:ty),*) => {$(
        impl StoredText for $type {
            fn as_str(self) -> &'static str {
                <$type>::as_str(self)
            }

            fn from_text(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}

stored_text!(Status, UserType, AdminRole, SubscriptionStatus);

/// The value of a typed text column: a known value, or text written before user-svc that names
/// none, kept as it is.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum Stored<T: StoredText> {
    Known(T),
    Other(String),
}

impl<T: StoredText> Stored<T> {
    /// Reads stored text.
    pub fn from_text(text: &str) -> Self {
        match T::from_text(text) {
            Some(value) => Stored::Known(value),
            None => Stored::Other(text.to_owned()),
        }
    }

    /// The text as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Stored::Known(value) => value.as_str(),
            Stored::Other(text) => text,
        }
    }

    /// The known value, if the text names one.
    pub fn known(&self) -> Option<T> {
        match self {
            Stored::Known(value) => Some(*value),
            Stored::Other(_) => None,
        }
    }
}

impl<T: StoredText> From<T> for Stored<T> {
    fn from(value: T) -> Self {
        Stored::Known(value)
    }
}

impl<T: StoredText> Serialize for Stored<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<T: StoredText> FromSql<Text, Pg> for Stored<T> {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        Ok(Self::from_text(&text))
    }
}

impl<T: StoredText> ToSql<Text, Pg> for Stored<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.as_str().as_bytes())?;
        Ok(serialize::IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_text_is_typed_and_other_text_is_kept_as_stored() {
        assert_eq!(
            Stored::<Status>::from_text("active"),
            Stored::Known(Status::Active)
        );
        let legacy = Stored::<AdminRole>::from_text("Super Admin");
        assert_eq!(legacy.known(), None);
        assert_eq!(legacy.as_str(), "Super Admin");
        assert_eq!(
            serde_json::to_string(&Stored::from(UserType::IndividualCreator)).unwrap(),
            "\"individual_creator\""
        );
    }
}
