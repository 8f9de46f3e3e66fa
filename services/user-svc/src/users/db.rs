//! Queries on `vottery_users`. Every function takes a connection; callers own transactions.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use crate::audit::{self, AuditEvent};
use crate::record::{NewUserRow, OwnedColumns, UserRow};
use crate::schema::vottery_users as users;

/// Which unique value a failed insert or update collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    Email,
    Phone,
}

/// Reads a unique violation on the blind indexes.
pub fn duplicate_of(error: &Error) -> Option<Duplicate> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match info.constraint_name() {
                Some(name) if name.contains("email") => Some(Duplicate::Email),
                Some(name) if name.contains("phone") => Some(Duplicate::Phone),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Inserts a user and appends `event` to the user's audit chain, in one statement.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    row: &NewUserRow,
    event: &AuditEvent<'_>,
) -> QueryResult<UserRow> {
    audit::recording(
        diesel::insert_into(users::table)
            .values(row)
            .returning(UserRow::as_returning()),
        event,
    )?
    .get_result(conn)
    .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i32) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Up to two rows at once (the actor and the target of a request; pass one id twice for one
/// row). Written as `id = $1 OR id = $2` rather than `id = ANY($1)`: PostgreSQL keeps one
/// generic plan for the former, and re-plans the latter on every execution.
pub async fn find_pair(
    conn: &mut AsyncPgConnection,
    first: i32,
    second: i32,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::id.eq(first).or(users::id.eq(second)))
        .select(UserRow::as_select())
        .load(conn)
        .await
}

/// Writes the owned columns if the row is still at `expected_version`, and appends `event` to
/// the user's audit chain, in one statement; `None` (and nothing written) if the row moved on.
pub async fn update_if_version(
    conn: &mut AsyncPgConnection,
    id: i32,
    expected_version: i64,
    owned: &OwnedColumns,
    event: &AuditEvent<'_>,
) -> QueryResult<Option<UserRow>> {
    audit::recording(
        diesel::update(
            users::table
                .filter(users::id.eq(id))
                .filter(users::row_version.eq(expected_version)),
        )
        .set(owned)
        .returning(UserRow::as_returning()),
        event,
    )?
    .get_result(conn)
    .await
    .optional()
}

/// Deletes a user if still at `expected_version`; devices, sessions and biometrics cascade.
pub async fn delete_if_version(
    conn: &mut AsyncPgConnection,
    id: i32,
    expected_version: i64,
) -> QueryResult<bool> {
    diesel::delete(
        users::table
            .filter(users::id.eq(id))
            .filter(users::row_version.eq(expected_version)),
    )
    .execute(conn)
    .await
    .map(|deleted| deleted == 1)
}

/// Key of the advisory lock that serialises the writes that take an active manager away (a
/// demotion, a suspension, a deletion), so that two of them racing cannot remove the last one.
const MANAGERS_LOCK: i64 = 0x766f_7461_6d67_7273;

/// Takes the managers lock until the end of the current transaction.
pub async fn lock_managers(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    Prepared(
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MANAGERS_LOCK),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// The id of a user about to be created (taken before the insert: its ciphertexts are bound to
/// it), and which contact, if any, matches a row written before this service (plaintext, not
/// yet encrypted, so not covered by the blind indexes) by normalised email or E.164 phone.
/// One statement, so one round trip.
pub async fn reserve_user_id(
    conn: &mut AsyncPgConnection,
    email: &str,
    phone: &str,
) -> QueryResult<(i32, Option<Duplicate>)> {
    #[derive(QueryableByName)]
    struct Reserved {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
        /// Null: no match; true: the email matches; false: only the phone does.
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
        legacy_email: Option<bool>,
    }
    let digits = phone.trim_start_matches('+');
    let reserved = Prepared(
        diesel::sql_query(
            "SELECT nextval(pg_get_serial_sequence('vottery_users', 'id'))::int4 AS id, \
            (SELECT lower(btrim(sngine_email)) = $1 FROM vottery_users \
             WHERE NOT pii_encrypted AND (lower(btrim(sngine_email)) = $1 \
                OR regexp_replace(sngine_phone, '[^0-9]', '', 'g') IN ($2, '00' || $2)) \
             ORDER BY 1 DESC LIMIT 1) AS legacy_email",
        )
        .bind::<diesel::sql_types::Text, _>(email)
        .bind::<diesel::sql_types::Text, _>(digits),
    )
    .get_result::<Reserved>(conn)
    .await?;
    let duplicate = reserved.legacy_email.map(|email| {
        if email {
            Duplicate::Email
        } else {
            Duplicate::Phone
        }
    });
    Ok((reserved.id, duplicate))
}

/// Managers who are not suspended, other than `except`.
pub async fn other_active_managers(conn: &mut AsyncPgConnection, except: i32) -> QueryResult<i64> {
    users::table
        .filter(users::admin_role.eq("manager"))
        .filter(users::status.is_distinct_from("suspended"))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)
        .await
}

/// Filters of a list request, by indexed columns only.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<String>,
    pub user_type: Option<String>,
    pub admin_role: Option<String>,
    pub subscription_status: Option<String>,
    pub country: Option<String>,
    pub email_bidx: Option<String>,
}

fn filtered(filters: &Filters) -> users::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = users::table.into_boxed();
    if let Some(status) = &filters.status {
        query = query.filter(users::status.eq(status.clone()));
    }
    if let Some(user_type) = &filters.user_type {
        query = query.filter(users::user_type.eq(user_type.clone()));
    }
    if let Some(admin_role) = &filters.admin_role {
        query = query.filter(users::admin_role.eq(admin_role.clone()));
    }
    if let Some(subscription_status) = &filters.subscription_status {
        query = query.filter(users::subscription_status.eq(subscription_status.clone()));
    }
    if let Some(country) = &filters.country {
        query = query.filter(users::country.eq(country.clone()));
    }
    if let Some(bidx) = &filters.email_bidx {
        query = query.filter(users::email_bidx.eq(bidx.clone()));
    }
    query
}

/// A page of users in id order, and how many match in all. The offset is walked over ids
/// alone (an index-only scan of the primary key when no filter applies), and only the page's
/// rows are read in full.
pub async fn page(
    conn: &mut AsyncPgConnection,
    filters: &Filters,
    page: u32,
    limit: u32,
) -> QueryResult<(Vec<UserRow>, i64)> {
    let total: i64 = filtered(filters).count().get_result(conn).await?;
    let page_ids = filtered(filters)
        .select(users::id)
        .order(users::id.asc())
        .limit(i64::from(limit))
        .offset(i64::from(page.saturating_sub(1)) * i64::from(limit));
    let rows = users::table
        .filter(users::id.eq_any(page_ids))
        .order(users::id.asc())
        .select(UserRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}
