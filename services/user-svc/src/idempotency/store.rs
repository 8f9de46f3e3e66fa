//! `vottery_idempotency_keys`: claiming a key before a request runs, storing its answer with
//! the change, reading a stored answer back, and releasing a claim whose request changed
//! nothing.
//!
//! A claim is one statement (an insert, or the takeover of a key whose request died before it
//! committed, or whose answer is past its retention). The answer is written by the change's own
//! statement ([`Completion`] as a `WITH` member after the audit row, like the outbox) or its
//! transaction ([`complete`]), so a crash leaves both or neither.

use diesel::OptionalExtension;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Binary, Bool, Double, Integer, Jsonb, Nullable, SmallInt, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use super::key::{Fingerprint, IdempotencyKey};
use crate::configuration::IdempotencySettings;
use crate::record::UserRow;

/// A claim held on a key by the request now running under it, and the status its answer will
/// have. Passed to the use case, whose change stores the answer.
#[derive(Debug, Clone)]
pub struct Completion {
    scope: String,
    key: String,
    /// A random id of this claim (a UUID), so that only its holder completes or releases it.
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

/// Claims `key` for `scope` unless another request holds it (its lease alive) or answered it
/// within the retention; what the other request left otherwise.
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
        token: uuid::Uuid::new_v4().to_string(),
        status: i16::try_from(status).unwrap_or(i16::MAX),
    };
    let lease = terms.lease_seconds as f64;
    let hours = i32::try_from(terms.retention_hours).unwrap_or(i32::MAX);
    // A key pruned between the two statements is claimed on the next round.
    for _ in 0..3 {
        let claim = Prepared(
            diesel::sql_query(
                "INSERT INTO vottery_idempotency_keys AS k \
                 (scope, idempotency_key, fingerprint, token, lease_until) \
                 VALUES ($1, $2, $3, $4::uuid, now() + make_interval(secs => $5)) \
                 ON CONFLICT (scope, idempotency_key) DO UPDATE SET \
                 fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token, \
                 lease_until = EXCLUDED.lease_until, status = NULL, answer_user = NULL, \
                 answer_body = NULL, created_at = now() \
                 WHERE (k.status IS NULL AND k.lease_until < now()) \
                 OR k.created_at < now() - make_interval(hours => $6)",
            )
            .into_boxed()
            .bind::<Text, _>(completion.scope.clone())
            .bind::<Text, _>(completion.key.clone())
            .bind::<Binary, _>(fingerprint.0.to_vec())
            .bind::<Text, _>(completion.token.clone())
            .bind::<Double, _>(lease)
            .bind::<Integer, _>(hours),
        );
        // The claim's commit does not wait for the disk: the change that completes the key
        // commits later and waits, and its WAL flush covers the claim's record before it. A
        // claim lost in a crash belongs to a request that changed nothing, which a retry
        // claims again.
        let claimed = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::sql_query("SET LOCAL synchronous_commit = off")
                    .execute(conn)
                    .await?;
                claim.execute(conn).await
            })
            .await?;
        if claimed == 1 {
            return Ok(Claim::Held(completion));
        }
        let taken = Prepared(
            diesel::sql_query(
                "SELECT fingerprint = $3 AS same_request, status, \
                 answer_user IS NOT NULL AS shows_user, answer_body AS body, \
                 GREATEST(1, CEIL(EXTRACT(EPOCH FROM lease_until - now())))::int8 \
                 AS retry_after \
                 FROM vottery_idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
            )
            .into_boxed()
            .bind::<Text, _>(completion.scope.clone())
            .bind::<Text, _>(completion.key.clone())
            .bind::<Binary, _>(fingerprint.0.to_vec()),
        )
        .get_result::<Taken>(conn)
        .await
        .optional()?;
        if let Some(taken) = taken {
            return Ok(Claim::Taken(taken));
        }
    }
    Err(diesel::result::Error::NotFound)
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
            "DELETE FROM vottery_idempotency_keys \
             WHERE scope = $1 AND idempotency_key = $2 AND token = $3::uuid AND status IS NULL",
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
            "UPDATE vottery_idempotency_keys SET status = $4, answer_body = $5, \
             lease_until = NULL \
             WHERE scope = $1 AND idempotency_key = $2 AND token = $3::uuid",
        )
        .into_boxed()
        .bind::<Text, _>(completion.scope.clone())
        .bind::<Text, _>(completion.key.clone())
        .bind::<Text, _>(completion.token.clone())
        .bind::<SmallInt, _>(completion.status)
        .bind::<Nullable<Jsonb>, _>(body.cloned()),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes the keys older than the retention; how many.
pub async fn prune(conn: &mut AsyncPgConnection, retention_hours: u64) -> QueryResult<usize> {
    let hours = i32::try_from(retention_hours).unwrap_or(i32::MAX);
    diesel::sql_query(
        "DELETE FROM vottery_idempotency_keys \
         WHERE created_at < now() - make_interval(hours => $1)",
    )
    .bind::<Integer, _>(hours)
    .execute(conn)
    .await
}

/// `, answered AS (UPDATE …)`: after a change `RETURNING` a user row (the `changed` member of
/// its statement), stores that row as the answer, when the change touched it.
impl QueryFragment<Pg> for Completion {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(", answered AS (UPDATE vottery_idempotency_keys AS k SET status = ");
        out.push_bind_param::<SmallInt, _>(&self.status)?;
        out.push_sql(
            ", answer_user = to_jsonb(shown), lease_until = NULL FROM changed AS shown \
             WHERE k.scope = ",
        );
        out.push_bind_param::<Text, _>(&self.scope)?;
        out.push_sql(" AND k.idempotency_key = ");
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(" AND k.token = ");
        out.push_bind_param::<Text, _>(&self.token)?;
        out.push_sql("::uuid)");
        Ok(())
    }
}
