//! Idempotency keys: claiming a key before a request runs (`vottery_idempotency_claims`),
//! storing its answer with the change (`vottery_idempotency_keys`), reading a stored answer
//! back, and releasing a claim whose request changed nothing.
//!
//! A claim is one statement on an unlogged table: no WAL, so no flush to wait for. It only says
//! a request with the key is running; after a crash the table is empty, and a claim lost that
//! way belonged to a request that changed nothing. The answer is inserted by the change's own
//! statement ([`Completion`] as a `WITH` member after the audit row, like the outbox) or its
//! transaction ([`complete`]), so a crash leaves both or neither; a second answer for a key
//! fails the change that carries it ([`ANSWERED_MEANWHILE`]).

use diesel::OptionalExtension;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Binary, Bool, Double, Integer, Jsonb, Nullable, SmallInt, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use super::key::{Fingerprint, IdempotencyKey};
use crate::configuration::IdempotencySettings;
use crate::record::UserRow;

/// The constraint a change breaks when another request stored an answer for its key first.
pub const ANSWERED_MEANWHILE: &str = "vottery_idempotency_keys_pkey";

/// A claim held on a key by the request now running under it, and the status its answer will
/// have. Passed to the use case, whose change stores the answer.
#[derive(Debug, Clone)]
pub struct Completion {
    scope: String,
    key: String,
    fingerprint: Vec<u8>,
    /// A random id of this claim (a UUID), so that only its holder releases it.
    token: String,
    status: i16,
}

/// What claiming a key found.
pub(super) enum Claim {
    /// The key is this request's now.
    Held(Completion),
    /// Another request holds or answered the key.
    Taken(Taken),
}

/// A key held or answered by an earlier request.
#[derive(Debug, QueryableByName)]
pub(super) struct Taken {
    /// Whether the earlier request had the same fingerprint.
    #[diesel(sql_type = Bool)]
    pub same_request: bool,
    /// The answer's status; none while the earlier request runs.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub status: Option<i16>,
    /// Whether the answer shows a user (stored as its row).
    #[diesel(sql_type = Bool)]
    pub shows_user: bool,
    /// Any other answer body.
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub body: Option<serde_json::Value>,
    /// While it runs: seconds until its lease ends.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub retry_after: i64,
}

/// Claims `key` for `scope` unless an answer to it is stored within the retention or another
/// request holds it (its lease alive); what the other request left otherwise. An answer past
/// the retention that was not pruned yet is deleted by the claim that replaces it.
pub(super) async fn claim(
    conn: &mut AsyncPgConnection,
    scope: String,
    key: &IdempotencyKey,
    fingerprint: Fingerprint,
    status: u16,
    terms: &IdempotencySettings,
) -> QueryResult<Claim> {
    let completion = Completion {
        scope,
        key: key.as_str().to_owned(),
        fingerprint: fingerprint.0.to_vec(),
        token: uuid::Uuid::new_v4().to_string(),
        status: i16::try_from(status).unwrap_or(i16::MAX),
    };
    let lease = terms.lease_seconds as f64;
    let hours = i32::try_from(terms.retention_hours).unwrap_or(i32::MAX);
    // A claim or answer that ends between the two statements is looked at again.
    for _ in 0..3 {
        let claimed = Prepared(
            diesel::sql_query(
                "WITH stale AS (DELETE FROM vottery_idempotency_keys \
                 WHERE scope = $1 AND idempotency_key = $2 \
                 AND created_at < now() - make_interval(hours => $6)), \
                 answered AS (SELECT 1 FROM vottery_idempotency_keys \
                 WHERE scope = $1 AND idempotency_key = $2 \
                 AND created_at >= now() - make_interval(hours => $6)) \
                 INSERT INTO vottery_idempotency_claims AS c \
                 (scope, idempotency_key, fingerprint, token, lease_until) \
                 SELECT $1, $2, $3, $4::uuid, now() + make_interval(secs => $5) \
                 WHERE NOT EXISTS (SELECT 1 FROM answered) \
                 ON CONFLICT (scope, idempotency_key) DO UPDATE SET \
                 fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token, \
                 lease_until = EXCLUDED.lease_until WHERE c.lease_until < now()",
            )
            .into_boxed()
            .bind::<Text, _>(completion.scope.clone())
            .bind::<Text, _>(completion.key.clone())
            .bind::<Binary, _>(completion.fingerprint.clone())
            .bind::<Text, _>(completion.token.clone())
            .bind::<Double, _>(lease)
            .bind::<Integer, _>(hours),
        )
        .execute(conn)
        .await?;
        if claimed == 1 {
            return Ok(Claim::Held(completion));
        }
        if let Some(taken) = taken(conn, &completion.scope, key, fingerprint, terms).await? {
            return Ok(Claim::Taken(taken));
        }
    }
    Err(diesel::result::Error::NotFound)
}

/// The answer stored for a key within the retention, else the live claim another request holds
/// on it; nothing when neither is there.
pub(super) async fn taken(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &IdempotencyKey,
    fingerprint: Fingerprint,
    terms: &IdempotencySettings,
) -> QueryResult<Option<Taken>> {
    let hours = i32::try_from(terms.retention_hours).unwrap_or(i32::MAX);
    Prepared(
        diesel::sql_query(
            "SELECT * FROM (\
             SELECT fingerprint = $3 AS same_request, status, \
             answer_user IS NOT NULL AS shows_user, answer_body AS body, 1::int8 AS retry_after \
             FROM vottery_idempotency_keys WHERE scope = $1 AND idempotency_key = $2 \
             AND created_at >= now() - make_interval(hours => $4) \
             UNION ALL \
             SELECT fingerprint = $3, NULL::smallint, false, NULL::jsonb, \
             GREATEST(1, CEIL(EXTRACT(EPOCH FROM lease_until - now())))::int8 \
             FROM vottery_idempotency_claims WHERE scope = $1 AND idempotency_key = $2 \
             AND lease_until >= now()) AS found \
             ORDER BY status IS NULL LIMIT 1",
        )
        .into_boxed()
        .bind::<Text, _>(scope.to_owned())
        .bind::<Text, _>(key.as_str().to_owned())
        .bind::<Binary, _>(fingerprint.0.to_vec())
        .bind::<Integer, _>(hours),
    )
    .get_result::<Taken>(conn)
    .await
    .optional()
}

/// The user row a stored answer shows, as it was stored (PII as ciphertext).
pub(super) async fn answered_user(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &IdempotencyKey,
) -> QueryResult<Option<UserRow>> {
    Prepared(
        diesel::sql_query(
            "SELECT shown.* FROM vottery_idempotency_keys AS k, \
             jsonb_populate_record(NULL::vottery_users, k.answer_user) AS shown \
             WHERE k.scope = $1 AND k.idempotency_key = $2 AND k.answer_user IS NOT NULL",
        )
        .into_boxed()
        .bind::<Text, _>(scope.to_owned())
        .bind::<Text, _>(key.as_str().to_owned()),
    )
    .get_result::<UserRow>(conn)
    .await
    .optional()
}

/// Frees a key whose request ended without a change, so that a retry runs again.
pub(super) async fn release(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
) -> QueryResult<()> {
    Prepared(
        diesel::sql_query(
            "DELETE FROM vottery_idempotency_claims \
             WHERE scope = $1 AND idempotency_key = $2 AND token = $3::uuid",
        )
        .into_boxed()
        .bind::<Text, _>(completion.scope.clone())
        .bind::<Text, _>(completion.key.clone())
        .bind::<Text, _>(completion.token.clone()),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Inside the transaction of a change: stores the answer, its body (`None`: no body), for the
/// request holding `completion`.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    completion: Option<&Completion>,
    body: Option<&serde_json::Value>,
) -> QueryResult<()> {
    let Some(completion) = completion else {
        return Ok(());
    };
    Prepared(
        diesel::sql_query(
            "INSERT INTO vottery_idempotency_keys \
             (scope, idempotency_key, fingerprint, status, answer_body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .into_boxed()
        .bind::<Text, _>(completion.scope.clone())
        .bind::<Text, _>(completion.key.clone())
        .bind::<Binary, _>(completion.fingerprint.clone())
        .bind::<SmallInt, _>(completion.status)
        .bind::<Nullable<Jsonb>, _>(body.cloned()),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes the answers older than the retention and the claims whose lease ended; how many
/// answers.
pub async fn prune(conn: &mut AsyncPgConnection, retention_hours: u64) -> QueryResult<usize> {
    let hours = i32::try_from(retention_hours).unwrap_or(i32::MAX);
    diesel::sql_query("DELETE FROM vottery_idempotency_claims WHERE lease_until < now()")
        .execute(conn)
        .await?;
    diesel::sql_query(
        "DELETE FROM vottery_idempotency_keys \
         WHERE created_at < now() - make_interval(hours => $1)",
    )
    .bind::<Integer, _>(hours)
    .execute(conn)
    .await
}

/// `, answered AS (INSERT …)`: after a change `RETURNING` a user row (the `changed` member of
/// its statement), stores that row as the answer, when the change touched it.
impl QueryFragment<Pg> for Completion {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            ", answered AS (INSERT INTO vottery_idempotency_keys \
             (scope, idempotency_key, fingerprint, status, answer_user) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.scope)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(&self.fingerprint)?;
        out.push_sql(", ");
        out.push_bind_param::<SmallInt, _>(&self.status)?;
        out.push_sql(", to_jsonb(shown) FROM changed AS shown)");
        Ok(())
    }
}
