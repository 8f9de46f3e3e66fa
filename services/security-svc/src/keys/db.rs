//! Queries on the key tables. Every function takes a connection; callers own transactions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{vottery_security_key_versions as versions, vottery_security_keys as keys};

/// A row of `vottery_security_keys`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = keys)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct KeyRow {
    pub name: String,
    pub key_type: String,
    pub derived: bool,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub deletion_allowed: bool,
    pub key_size: Option<i32>,
    pub latest_version: i32,
    pub min_decryption_version: i32,
    pub min_encryption_version: i32,
    pub min_available_version: i32,
    pub auto_rotate_period_secs: i64,
    pub generation: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub context_keys: bool,
}

/// A row of `vottery_security_key_versions`: material sealed under the root key.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = versions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct VersionRow {
    pub key_name: String,
    pub version: i32,
    pub sealed_material: Vec<u8>,
    pub public_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The changeable settings of a key, written back by config and trim.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = keys)]
pub struct KeySettingsChange {
    pub deletion_allowed: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub min_decryption_version: i32,
    pub min_encryption_version: i32,
    pub min_available_version: i32,
    pub auto_rotate_period_secs: i64,
}

pub async fn find_key(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<KeyRow>> {
    keys::table
        .find(name)
        .select(KeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the key's row until the transaction ends.
pub async fn lock_key(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<KeyRow>> {
    keys::table
        .find(name)
        .select(KeyRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The versions a ring still holds (at or above its minimum available version).
pub async fn key_versions(
    conn: &mut AsyncPgConnection,
    name: &str,
    from_version: i32,
) -> QueryResult<Vec<VersionRow>> {
    versions::table
        .filter(versions::key_name.eq(name))
        .filter(versions::version.ge(from_version))
        .order(versions::version.asc())
        .select(VersionRow::as_select())
        .load(conn)
        .await
}

/// Inserts a key and its first version unless the name is taken; whether it was inserted.
pub async fn insert_key(
    conn: &mut AsyncPgConnection,
    key: &KeyRow,
    first: &VersionRow,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(keys::table)
        .values(key)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        diesel::insert_into(versions::table)
            .values(first)
            .execute(conn)
            .await?;
    }
    Ok(inserted == 1)
}

/// Takes the next version number of a locked key and records the change.
pub async fn advance_latest_version(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<i32> {
    diesel::update(keys::table.find(name))
        .set((
            keys::latest_version.eq(keys::latest_version + 1),
            keys::generation.eq(keys::generation + 1),
            keys::updated_at.eq(diesel::dsl::now),
        ))
        .returning(keys::latest_version)
        .get_result(conn)
        .await
}

pub async fn insert_version(conn: &mut AsyncPgConnection, version: &VersionRow) -> QueryResult<()> {
    diesel::insert_into(versions::table)
        .values(version)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    name: &str,
    change: &KeySettingsChange,
) -> QueryResult<()> {
    diesel::update(keys::table.find(name))
        .set((
            change,
            keys::generation.eq(keys::generation + 1),
            keys::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Deletes versions below `min_available` for good.
pub async fn delete_versions_below(
    conn: &mut AsyncPgConnection,
    name: &str,
    min_available: i32,
) -> QueryResult<usize> {
    diesel::delete(
        versions::table
            .filter(versions::key_name.eq(name))
            .filter(versions::version.lt(min_available)),
    )
    .execute(conn)
    .await
}

pub async fn delete_key(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<usize> {
    diesel::delete(keys::table.find(name)).execute(conn).await
}

pub async fn key_names(conn: &mut AsyncPgConnection) -> QueryResult<Vec<String>> {
    keys::table
        .select(keys::name)
        .order(keys::name.asc())
        .load(conn)
        .await
}

/// The current generation of each named key that still exists.
pub async fn generations(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> QueryResult<Vec<(String, i64)>> {
    keys::table
        .filter(keys::name.eq_any(names))
        .select((keys::name, keys::generation))
        .load(conn)
        .await
}

/// Keys with automatic rotation whose latest version is older than their period.
pub async fn keys_due_for_rotation(conn: &mut AsyncPgConnection) -> QueryResult<Vec<String>> {
    diesel::sql_query(
        "SELECT k.name FROM vottery_security_keys k \
         JOIN vottery_security_key_versions v ON v.key_name = k.name AND v.version = k.latest_version \
         WHERE k.auto_rotate_period_secs > 0 \
           AND v.created_at <= now() - make_interval(secs => k.auto_rotate_period_secs)",
    )
    .load::<DueKey>(conn)
    .await
    .map(|rows| rows.into_iter().map(|row| row.name).collect())
}

#[derive(QueryableByName)]
struct DueKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// When the latest version of a key was made.
pub async fn latest_version_created(
    conn: &mut AsyncPgConnection,
    name: &str,
    version: i32,
) -> QueryResult<Option<DateTime<Utc>>> {
    versions::table
        .find((name, version))
        .select(versions::created_at)
        .first(conn)
        .await
        .optional()
}
