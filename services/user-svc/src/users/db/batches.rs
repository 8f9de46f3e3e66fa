//! The queries of the batch commands: the rows `encrypt-existing` upgrades (still holding
//! plaintext), read with a fingerprint and written back only if unchanged, and the rows
//! `rewrap` moves onto the latest key versions, each batch locked until its transaction ends.

use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use crate::audit::{AuditEvent, ChainEntries, RecordedEach};
use crate::record::{OwnedColumns, UserRow};
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

/// The fingerprint of a row as stored: the MD5 of its whole text form, every column included.
/// Equal fingerprints mean nothing in the row changed in between, whoever wrote it (user-svc,
/// which moves `row_version`, or the customer's own application, which does not).
const FINGERPRINT: &str = "md5(vottery_users::text)";

/// A row still holding plaintext, with its [`FINGERPRINT`] as read.
pub struct PlaintextRow {
    pub row: UserRow,
    pub fingerprint: String,
}

/// The next rows still holding plaintext after `after_id`, with their fingerprints; nothing is
/// locked: [`write_upgrades`] writes a row only if its fingerprint still matches.
pub async fn plaintext_batch(
    conn: &mut AsyncPgConnection,
    after_id: i32,
    limit: usize,
) -> QueryResult<Vec<PlaintextRow>> {
    let rows: Vec<(UserRow, String)> = users::table
        .filter(users::pii_encrypted.eq(false))
        .filter(users::id.gt(after_id))
        .order(users::id.asc())
        .limit(limit as i64)
        .select((UserRow::as_select(), diesel::dsl::sql::<Text>(FINGERPRINT)))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(row, fingerprint)| PlaintextRow { row, fingerprint })
        .collect())
}

/// A legacy row's upgrade: its new PII ciphertexts, blind indexes, flags, version and signature,
/// to be written if the row still has `fingerprint`.
pub struct Upgraded<'a> {
    pub id: i32,
    pub fingerprint: &'a str,
    pub owned: &'a OwnedColumns,
}

/// `UPDATE … FROM unnest(…)`: the upgraded columns of every row whose fingerprint still
/// matches and that still holds plaintext, `RETURNING` the ids written.
struct UpgradeColumns<'a> {
    id: Vec<i32>,
    fingerprint: Vec<&'a str>,
    email: Vec<&'a str>,
    phone: Vec<&'a str>,
    first_name: Vec<Option<&'a str>>,
    last_name: Vec<Option<&'a str>>,
    date_of_birth: Vec<Option<&'a str>>,
    email_bidx: Vec<Option<&'a str>>,
    phone_bidx: Vec<Option<&'a str>>,
    pii_encrypted: Vec<bool>,
    pii_erasable: Vec<bool>,
    row_version: Vec<i64>,
    record_signature: Vec<Option<&'a str>>,
}

impl<'a> UpgradeColumns<'a> {
    fn of(upgrades: &[Upgraded<'a>]) -> Self {
        let column = |pick: fn(&'a OwnedColumns) -> Option<&'a str>| {
            upgrades.iter().map(|upgrade| pick(upgrade.owned)).collect()
        };
        Self {
            id: upgrades.iter().map(|upgrade| upgrade.id).collect(),
            fingerprint: upgrades.iter().map(|upgrade| upgrade.fingerprint).collect(),
            email: upgrades
                .iter()
                .map(|upgrade| upgrade.owned.sngine_email.as_str())
                .collect(),
            phone: upgrades
                .iter()
                .map(|upgrade| upgrade.owned.sngine_phone.as_str())
                .collect(),
            first_name: column(|owned| owned.first_name.as_deref()),
            last_name: column(|owned| owned.last_name.as_deref()),
            date_of_birth: column(|owned| owned.date_of_birth.as_deref()),
            email_bidx: column(|owned| owned.email_bidx.as_deref()),
            phone_bidx: column(|owned| owned.phone_bidx.as_deref()),
            pii_encrypted: upgrades
                .iter()
                .map(|upgrade| upgrade.owned.pii_encrypted)
                .collect(),
            pii_erasable: upgrades
                .iter()
                .map(|upgrade| upgrade.owned.pii_erasable)
                .collect(),
            row_version: upgrades
                .iter()
                .map(|upgrade| upgrade.owned.row_version)
                .collect(),
            record_signature: column(|owned| owned.record_signature.as_deref()),
        }
    }
}

impl QueryFragment<Pg> for UpgradeColumns<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE vottery_users AS t SET sngine_email = v.email, sngine_phone = v.phone, \
             first_name = v.first_name, last_name = v.last_name, \
             date_of_birth = v.date_of_birth, email_bidx = v.email_bidx, \
             phone_bidx = v.phone_bidx, pii_encrypted = v.pii_encrypted, \
             pii_erasable = v.pii_erasable, row_version = v.row_version, \
             record_signature = v.record_signature FROM unnest(",
        );
        out.push_bind_param::<Array<Integer>, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.fingerprint)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.email)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.phone)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.first_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.last_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.date_of_birth)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.email_bidx)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.phone_bidx)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.pii_encrypted)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.pii_erasable)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.row_version)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.record_signature)?;
        out.push_sql(&format!(
            ") AS v(id, fingerprint, email, phone, first_name, last_name, date_of_birth, \
             email_bidx, phone_bidx, pii_encrypted, pii_erasable, row_version, \
             record_signature) WHERE t.id = v.id AND NOT t.pii_encrypted \
             AND {} = v.fingerprint RETURNING t.id",
            FINGERPRINT.replace("vottery_users", "t")
        ));
        Ok(())
    }
}

impl Query for UpgradeColumns<'_> {
    type SqlType = Integer;
}

/// Writes every upgrade whose row is unchanged since it was read (same fingerprint, still
/// plaintext), with its audit event (`events[i]` is `upgrades[i]`'s) appended to the user's
/// chain, all in one statement; returns the ids written. A row changed in between is left as
/// it now is, and its event is not recorded.
pub async fn write_upgrades(
    conn: &mut AsyncPgConnection,
    upgrades: &[Upgraded<'_>],
    events: &[AuditEvent<'_>],
) -> QueryResult<Vec<i32>> {
    if upgrades.is_empty() {
        return Ok(Vec::new());
    }
    Prepared(RecordedEach {
        change: UpgradeColumns::of(upgrades),
        entries: ChainEntries::of(events)?,
    })
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

/// Rows due, given the PII key's latest version ($1) and the signing key's ($2): rows still
/// under the shared PII key, and rows with an older version.
const DUE: &str = "pii_encrypted AND (NOT pii_erasable
    OR substring(sngine_email FROM '^vault:v([0-9]{1,9}):')::int < $1
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
