//! Queries on the guardian tables. Every function takes a connection; callers own transactions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use vottery_common::guardians::GuardianStage;

use crate::schema::{
    vottery_security_guardian_backups as received, vottery_security_guardians as guardians,
};

/// A row of `vottery_security_guardians`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guardians)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct GuardianRow {
    pub name: String,
    pub ceremony_id: String,
    pub sequence_order: i32,
    pub number_of_guardians: i32,
    pub quorum: i32,
    pub stage: String,
    pub sealed_polynomial: Vec<u8>,
    pub public_record: Value,
    pub public_records: Option<Value>,
    pub backups: Option<Value>,
    pub ceremony_record: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `vottery_security_guardian_backups`: a verified backup sent to a guardian.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = received)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ReceivedRow {
    pub guardian_name: String,
    pub owner_id: String,
    pub backup: Value,
    pub sealed_coordinate: Vec<u8>,
    pub verification: Value,
    pub created_at: DateTime<Utc>,
}

pub async fn find(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<GuardianRow>> {
    guardians::table
        .find(name)
        .select(GuardianRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the guardian's row until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<GuardianRow>> {
    guardians::table
        .find(name)
        .select(GuardianRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts a guardian unless the name is taken; whether it was inserted.
pub async fn insert(conn: &mut AsyncPgConnection, row: &GuardianRow) -> QueryResult<bool> {
    diesel::insert_into(guardians::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|inserted| inserted == 1)
}

/// Records the public records accepted and the backups made from them.
pub async fn record_backups(
    conn: &mut AsyncPgConnection,
    name: &str,
    public_records: &Value,
    backups: &Value,
) -> QueryResult<()> {
    diesel::update(guardians::table.find(name))
        .set((
            guardians::public_records.eq(public_records),
            guardians::backups.eq(backups),
            guardians::stage.eq(GuardianStage::BackupsShared.as_str()),
            guardians::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_stage(
    conn: &mut AsyncPgConnection,
    name: &str,
    stage: GuardianStage,
) -> QueryResult<()> {
    diesel::update(guardians::table.find(name))
        .set((
            guardians::stage.eq(stage.as_str()),
            guardians::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Stores the signed ceremony record and marks the guardian finalized.
pub async fn record_ceremony(
    conn: &mut AsyncPgConnection,
    name: &str,
    record: &Value,
) -> QueryResult<()> {
    diesel::update(guardians::table.find(name))
        .set((
            guardians::ceremony_record.eq(record),
            guardians::stage.eq(GuardianStage::Finalized.as_str()),
            guardians::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The verified backups a guardian holds, by sender.
pub async fn received_backups(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> QueryResult<Vec<ReceivedRow>> {
    received::table
        .filter(received::guardian_name.eq(name))
        .order(received::owner_id.asc())
        .select(ReceivedRow::as_select())
        .load(conn)
        .await
}

/// The verified backup from `sender`, if any.
pub async fn received_from(
    conn: &mut AsyncPgConnection,
    name: &str,
    sender: &str,
) -> QueryResult<Option<ReceivedRow>> {
    received::table
        .find((name, sender))
        .select(ReceivedRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Keeps a verified backup; one already kept from that sender stays (a verified one is final).
pub async fn insert_received(conn: &mut AsyncPgConnection, row: &ReceivedRow) -> QueryResult<()> {
    diesel::insert_into(received::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn count_received(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<i64> {
    received::table
        .filter(received::guardian_name.eq(name))
        .count()
        .get_result(conn)
        .await
}
