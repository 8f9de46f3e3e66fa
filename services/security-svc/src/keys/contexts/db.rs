//! Queries on `vottery_security_context_keys`. Every function takes a connection; callers own
//! transactions.

use diesel::prelude::*;
use diesel::sql_types::{Bytea, Int4, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{vottery_security_context_keys as contexts, vottery_security_keys as keys};

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

pub async fn find(
    conn: &mut AsyncPgConnection,
    name: &str,
    hash: &[u8],
) -> QueryResult<Option<ContextRow>> {
    contexts::table
        .find((name, hash))
        .select(ContextRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Inserts a new data key unless the context already has a row (live or destroyed).
pub async fn insert_if_absent(conn: &mut AsyncPgConnection, row: &ContextRow) -> QueryResult<()> {
    diesel::insert_into(contexts::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
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

/// Records a change of the key so that every instance reloads it (and its context keys).
pub async fn bump_generation(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<()> {
    diesel::update(keys::table.find(name))
        .set((
            keys::generation.eq(keys::generation + 1),
            keys::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}
