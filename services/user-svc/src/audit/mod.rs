//! The audit trail in `vottery_audit_logs`: one row per mutation and per refused attempt,
//! written in the same transaction as the change. Rows about one user form a hash chain (each
//! row's hash covers the previous row's hash and its own content, canonicalised with RFC 8785);
//! the chain's head is kept in `vottery_audit_chain_heads`, so an edited, deleted or truncated
//! row is detected and located. Events that concern no stored user share chain 0.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ring::digest;
use serde::Serialize;
use vottery_common::events::UserEvent;
use vottery_common::users::AuditEntry;
use vottery_server::db::Prepared;

use crate::idempotency::Completion;
use crate::record::now_micros;
use crate::schema::vottery_audit_logs as logs;

mod append;
mod trail;
mod verify;

use append::{Appended, ChainEntry};
pub use append::{ChainEntries, Recorded, RecordedEach};
pub use trail::Trail;
pub use verify::verify_chain;

/// The hash before the first row of every chain.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a request and from where, as recorded.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub ip: Option<ipnet::IpNet>,
    pub user_agent: Option<String>,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The user the action concerns.
    pub user_id: Option<i32>,
    /// Who acted: a user id, or none for a service caller (named in `details.actor`).
    pub actor_id: Option<i32>,
    pub actor_label: &'a str,
    pub action: &'a str,
    /// Names of the fields the action changed or tried to change; never their values.
    pub changed_fields: Vec<String>,
    pub success: bool,
    /// Why a refused attempt was refused (a problem slug and its detail).
    pub reason: Option<String>,
    /// Non-personal facts about the change (a status move, a role change).
    pub facts: Option<serde_json::Value>,
    pub request: &'a RequestMeta,
    /// The events the change publishes, written to the outbox in the same statement.
    pub events: Vec<UserEvent>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = logs, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    id: i32,
    user_id: Option<i32>,
    device_id: Option<i32>,
    action: String,
    details: Option<serde_json::Value>,
    ip_address: Option<ipnet::IpNet>,
    user_agent: Option<String>,
    success: Option<bool>,
    created_at: Option<NaiveDateTime>,
    actor_id: Option<i32>,
    request_id: Option<String>,
    chain_key: Option<i64>,
    chain_seq: Option<i64>,
    prev_hash: Option<String>,
    row_hash: Option<String>,
}

/// The hashed content of a row: every column but the id and the hashes themselves.
#[derive(Serialize)]
struct ChainedContent<'a> {
    chain_key: i64,
    chain_seq: i64,
    user_id: Option<i32>,
    actor_id: Option<i32>,
    device_id: Option<i32>,
    action: &'a str,
    details: &'a Option<serde_json::Value>,
    ip_address: Option<String>,
    user_agent: Option<&'a str>,
    success: Option<bool>,
    created_at: Option<String>,
    request_id: Option<&'a str>,
}

fn format_time(value: &Option<NaiveDateTime>) -> Option<String> {
    value.map(|value| value.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn chain_hash(prev_hash: &str, content: &ChainedContent<'_>) -> String {
    let canonical = serde_json_canonicalizer::to_vec(content).unwrap_or_default();
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(prev_hash.as_bytes());
    context.update(b"\n");
    context.update(&canonical);
    hex::encode(context.finish().as_ref())
}

impl AuditRow {
    fn content(&self) -> ChainedContent<'_> {
        ChainedContent {
            chain_key: self.chain_key.unwrap_or_default(),
            chain_seq: self.chain_seq.unwrap_or_default(),
            user_id: self.user_id,
            actor_id: self.actor_id,
            device_id: self.device_id,
            action: &self.action,
            details: &self.details,
            ip_address: self.ip_address.map(|ip| ip.to_string()),
            user_agent: self.user_agent.as_deref(),
            success: self.success,
            created_at: format_time(&self.created_at),
            request_id: self.request_id.as_deref(),
        }
    }

    fn into_entry(self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            user_id: self.user_id,
            actor_id: self.actor_id,
            action: self.action,
            details: self.details,
            ip_address: self.ip_address.map(|ip| ip.addr().to_string()),
            user_agent: self.user_agent,
            success: self.success,
            created_at: self.created_at.map(|at| at.and_utc()),
            request_id: self.request_id,
            chain_seq: self.chain_seq,
        }
    }
}

/// The `details` column of an event: who acted, which fields, and why a refusal was refused.
/// Field names and reasons of refused attempts come from the request; a NUL in them, which a
/// `jsonb` value cannot hold, is stored as U+FFFD so that the attempt is still recorded.
fn details(event: &AuditEvent<'_>) -> serde_json::Value {
    let mut details = serde_json::Map::new();
    details.insert("actor".into(), serde_json::json!(event.actor_label));
    let fields: Vec<String> = event
        .changed_fields
        .iter()
        .map(|field| storable(field))
        .collect();
    details.insert("changed_fields".into(), serde_json::json!(fields));
    if let Some(reason) = &event.reason {
        details.insert("reason".into(), serde_json::json!(storable(reason)));
    }
    if let Some(serde_json::Value::Object(facts)) = &event.facts {
        details.extend(facts.clone());
    }
    serde_json::Value::Object(details)
}

/// `text` as a `jsonb` string can hold it.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

fn entry<'a>(event: &AuditEvent<'a>) -> QueryResult<ChainEntry<'a>> {
    ChainEntry::new(event, details(event), now_micros())
}

/// Appends an event to its chain, in one statement. Inside a transaction, the chain stays
/// locked until the transaction ends.
pub async fn append(conn: &mut AsyncPgConnection, event: &AuditEvent<'_>) -> QueryResult<()> {
    Prepared(Appended(entry(event)?))
        .execute(conn)
        .await
        .map(|_| ())
}

/// `change` (an insert or update `RETURNING` the row) with `event` appended to its chain in
/// the same statement, when the change touches a row; with `answer`, the idempotent request's
/// answer is stored by the same statement.
pub fn recording<'a, Q>(
    change: Q,
    event: &AuditEvent<'a>,
    answer: Option<&'a Completion>,
) -> QueryResult<Prepared<Recorded<'a, Q>>> {
    Ok(Prepared(Recorded {
        change,
        entry: entry(event)?,
        answer,
    }))
}

/// A page of the audit rows concerning a user (newest first), with the total.
pub async fn page(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    page: u32,
    limit: u32,
) -> QueryResult<(Vec<AuditEntry>, i64)> {
    let total: i64 = logs::table
        .filter(logs::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .await?;
    let rows: Vec<AuditRow> = logs::table
        .filter(logs::user_id.eq(user_id))
        .order(logs::id.desc())
        .limit(i64::from(limit))
        .offset(i64::from(page - 1) * i64::from(limit))
        .select(AuditRow::as_select())
        .load(conn)
        .await?;
    Ok((rows.into_iter().map(AuditRow::into_entry).collect(), total))
}

/// How many chained rows exist for a user (tests and tooling).
pub async fn chained_rows(conn: &mut AsyncPgConnection, user_id: i32) -> QueryResult<i64> {
    logs::table
        .filter(logs::chain_key.eq(i64::from(user_id)))
        .count()
        .get_result(conn)
        .await
}
