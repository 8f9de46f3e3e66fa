//! Queries on `vottery_security_context_keys`. Every function takes a connection; callers own
//! transactions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Bytea, Int4, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::vottery_security_context_keys as contexts;

/// A row: the data key wrapped under `version`, or a tombstone (`wrapped_key` is `None`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contexts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ContextRow {
    pub key_name: String,
    pub context_hash: Vec<u8>,
    pub version: i32,
    pub wrapped_key: Option<Vec<u8>>,
}

/// A context's stored row as [`create_or_find`] answers it: `made` when this call inserted it.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoredContext {
    #[diesel(sql_type = Bytea)]
    pub context_hash: Vec<u8>,
    #[diesel(sql_type = Int4)]
    pub version: i32,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub wrapped_key: Option<Vec<u8>>,
    #[diesel(sql_type = Bool)]
    pub made: bool,
}

/// The rows of the contexts (by hash) of key `name` that exist, live or destroyed.
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    name: &str,
    hashes: &[Vec<u8>],
) -> QueryResult<Vec<ContextRow>> {
    contexts::table
        .filter(contexts::key_name.eq(name))
        .filter(contexts::context_hash.eq_any(hashes))
        .select(ContextRow::as_select())
        .load(conn)
        .await
}

/// In one statement, inserts the new data keys `wrapped` (one per hash of `hashes`, all wrapped
/// under `version`) of contexts that have no row yet, and answers the row of each context:
/// inserted here (`made`), or as stored before (live or a tombstone, never overwritten).
///
/// A context inserted by a concurrent statement that committed after this one began is
/// skipped by the insert yet not seen by the read: it is missing from the answer, and the
/// caller reads it again. Rows are inserted in hash order, so two batches never wait on each
/// other in a cycle. Planned on each run, not prepared: as a prepared statement it ran at less
/// than half the rate under load (PostgreSQL's generic plan for it, used after five runs).
pub async fn create_or_find(
    conn: &mut AsyncPgConnection,
    name: &str,
    version: i32,
    hashes: &[Vec<u8>],
    wrapped: &[Vec<u8>],
) -> QueryResult<Vec<StoredContext>> {
    diesel::sql_query(
        "WITH made AS ( \
           INSERT INTO vottery_security_context_keys (key_name, context_hash, version, wrapped_key) \
           SELECT $1, new.hash, $2, new.wrapped \
             FROM unnest($3::bytea[], $4::bytea[]) AS new (hash, wrapped) \
            ORDER BY new.hash \
           ON CONFLICT (key_name, context_hash) DO NOTHING \
           RETURNING context_hash, version, wrapped_key \
         ) \
         SELECT context_hash, version, wrapped_key, true AS made FROM made \
         UNION ALL \
         SELECT context_hash, version, wrapped_key, false AS made \
           FROM vottery_security_context_keys \
          WHERE key_name = $1 AND context_hash = ANY ($3)",
    )
    .bind::<Text, _>(name)
    .bind::<Int4, _>(version)
    .bind::<Array<Bytea>, _>(hashes)
    .bind::<Array<Bytea>, _>(wrapped)
    .load(conn)
    .await
}

/// A context destroyed (of any key), as [`destroyed_since`] reports it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Destroyed {
    /// The database's clock when it answered: where the next look starts.
    #[diesel(sql_type = Timestamptz)]
    pub polled_at: DateTime<Utc>,
    /// `None` on the single row of an answer without destructions.
    #[diesel(sql_type = Nullable<Bytea>)]
    pub context_hash: Option<Vec<u8>>,
}

/// The contexts destroyed since `since` (the first look: now) less a margin of five minutes,
/// which covers destructions whose statement began before `since` but committed after it.
/// Always at least one row, which carries the database's clock.
pub async fn destroyed_since(
    conn: &mut AsyncPgConnection,
    since: Option<DateTime<Utc>>,
) -> QueryResult<Vec<Destroyed>> {
    diesel::sql_query(
        "SELECT now() AS polled_at, destroyed.context_hash \
           FROM (SELECT 1) AS one \
           LEFT JOIN vottery_security_context_keys AS destroyed \
             ON destroyed.destroyed_at > COALESCE($1, now()) - interval '5 minutes'",
    )
    .bind::<Nullable<Timestamptz>, _>(since)
    .load(conn)
    .await
}

/// Drops the wrapped key for good and leaves a tombstone, whether or not a key existed.
pub async fn tombstone(
    conn: &mut AsyncPgConnection,
    name: &str,
    hash: &[u8],
    version: i32,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO vottery_security_context_keys \
           (key_name, context_hash, version, wrapped_key, destroyed_at) \
         VALUES ($1, $2, $3, NULL, now()) \
         ON CONFLICT (key_name, context_hash) DO UPDATE SET wrapped_key = NULL, \
           destroyed_at = COALESCE(vottery_security_context_keys.destroyed_at, now())",
    )
    .bind::<Text, _>(name)
    .bind::<Bytea, _>(hash)
    .bind::<Int4, _>(version)
    .execute(conn)
    .await
    .map(|_| ())
}

/// How many live data keys of `name` are wrapped under a version below `version`.
pub async fn wrapped_below(
    conn: &mut AsyncPgConnection,
    name: &str,
    version: i32,
) -> QueryResult<i64> {
    contexts::table
        .filter(contexts::key_name.eq(name))
        .filter(contexts::version.lt(version))
        .filter(contexts::wrapped_key.is_not_null())
        .count()
        .get_result(conn)
        .await
}
