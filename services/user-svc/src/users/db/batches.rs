//! The queries of the batch commands: the rows `encrypt-existing` upgrades (still holding
//! plaintext) and the rows `rewrap` moves onto the latest key versions, each batch locked until
//! its transaction ends.

use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::record::UserRow;
use crate::schema::vottery_users as users;

/// How many rows still hold plaintext PII.
pub async fn count_plaintext(conn: &mut AsyncPgConnection) -> QueryResult<u64> {
    users::table
        .filter(users::pii_encrypted.eq(false))
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|count| count.max(0) as u64)
}

/// The next rows still holding plaintext after `after_id`, locked until the transaction ends.
/// A row upgraded by a concurrent write while this waits for its lock no longer matches and is
/// left out.
pub async fn lock_plaintext_batch(
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::pii_encrypted.eq(false))
        .filter(users::id.gt(after_id))
        .order(users::id.asc())
        .limit(limit as i64)
        .for_update()
        .select(UserRow::as_select())
        .load(conn)
        .await
}

/// Stored rows (other than the batch's own, which have none yet) holding any of these blind
/// indexes: `(id, email_bidx, phone_bidx)`.
pub async fn rows_holding_indexes(
    conn: &mut AsyncPgConnection,
    email_indexes: &[&str],
    phone_indexes: &[&str],
) -> QueryResult<Vec<(i32, Option<String>, Option<String>)>> {
    users::table
        .filter(
            users::email_bidx
                .eq_any(email_indexes)
                .or(users::phone_bidx.eq_any(phone_indexes)),
        )
        .select((users::id, users::email_bidx, users::phone_bidx))
        .load(conn)
        .await
}

/// Rows due, given the PII key's latest version ($1) and the signing key's ($2).
const DUE: &str = "pii_encrypted AND (
    substring(sngine_email FROM '^vault:v([0-9]{1,9}):')::int < $1
    OR substring(sngine_phone FROM '^vault:v([0-9]{1,9}):')::int < $1
    OR substring(first_name FROM '^vault:v([0-9]{1,9}):')::int < $1
    OR substring(last_name FROM '^vault:v([0-9]{1,9}):')::int < $1
    OR substring(date_of_birth FROM '^vault:v([0-9]{1,9}):')::int < $1
    OR substring(record_signature FROM '^vault:v([0-9]{1,9}):')::int < $2)";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many rows are due for a rewrap onto PII key version `pii` and signing key version
/// `signing`.
pub async fn count_due(conn: &mut AsyncPgConnection, pii: u32, signing: u32) -> QueryResult<u64> {
    diesel::sql_query(format!(
        "SELECT count(*) AS count FROM vottery_users WHERE {DUE}"
    ))
    .bind::<Integer, _>(pii as i32)
    .bind::<Integer, _>(signing as i32)
    .get_result::<Count>(conn)
    .await
    .map(|found| found.count.max(0) as u64)
}

/// The next rows due after `after_id`, locked until the transaction ends.
pub async fn lock_due_batch(
    conn: &mut AsyncPgConnection,
    pii: u32,
    signing: u32,
    after_id: i32,
    limit: usize,
) -> QueryResult<Vec<UserRow>> {
    diesel::sql_query(format!(
        "SELECT * FROM vottery_users WHERE {DUE} AND id > $3 ORDER BY id LIMIT $4 FOR UPDATE"
    ))
    .bind::<Integer, _>(pii as i32)
    .bind::<Integer, _>(signing as i32)
    .bind::<Integer, _>(after_id)
    .bind::<BigInt, _>(limit as i64)
    .load(conn)
    .await
}
