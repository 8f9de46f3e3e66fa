//! The stored seal configuration: share count, threshold, share commitments, root-key check.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::vottery_security_seal as seal;

/// The seal as stored at init (one row).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = seal)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SealConfig {
    pub id: i16,
    pub secret_shares: i16,
    pub secret_threshold: i16,
    pub share_verifiers: Vec<Vec<u8>>,
    pub root_key_check: Vec<u8>,
    pub root_token_digest: Vec<u8>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl SealConfig {
    pub fn shares(&self) -> u8 {
        self.secret_shares as u8
    }

    pub fn threshold(&self) -> u8 {
        self.secret_threshold as u8
    }
}

pub async fn load(conn: &mut AsyncPgConnection) -> QueryResult<Option<SealConfig>> {
    seal::table
        .find(1i16)
        .select(SealConfig::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores the configuration unless another init won the race; whether this one was stored.
pub async fn insert(conn: &mut AsyncPgConnection, config: &SealConfig) -> QueryResult<bool> {
    diesel::insert_into(seal::table)
        .values(config)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|inserted| inserted == 1)
}
