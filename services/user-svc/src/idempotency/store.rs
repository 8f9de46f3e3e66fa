//! Idempotency keys: claiming a key before a request runs (`vottery_idempotency_claims`),
//! storing its answer with the change (`vottery_idempotency_keys`), reading a stored answer
//! back, and releasing a claim whose request changed nothing.
//!
//! A claim is one row of an unlogged table: no WAL, so no flush to wait for. It only says a
//! request with the key is running; after a crash the table is empty, and a claim lost that
//! way belonged to a request that changed nothing. It is made by a statement of its own
//! ([`claim`]) or, where a change starts with a statement anyway, at the start of that one
//! ([`Completion::claim_first`]), which saves a round trip. The answer is inserted by the change's own
//! statement ([`Completion`] as a `WITH` member after the audit row, like the outbox) or its
//! transaction ([`complete`]), so a crash leaves both or neither; a second answer for a key
//! fails the change that carries it ([`KEY_ANSWERED`]).

use diesel::OptionalExtension;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::sql_types::{Binary, Bool, Double, Integer, Jsonb, Nullable, SmallInt, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use super::key::{Fingerprint, IdempotencyKey};
use crate::configuration::IdempotencySettings;
use crate::record::UserRow;

/// The constraint a change breaks when another request stored an answer for its key first.
pub const KEY_ANSWERED: &str = "vottery_idempotency_keys_pkey";

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
    /// How long the claim holds the key while its request runs, in seconds.
    lease: f64,
    /// How long a stored answer is kept, in hours.
    retention_hours: i32,
    /// Whether the key is claimed already; if not, the change's first statement claims it
    /// ([`Completion::claim_first`]).
    held: bool,
}

impl Completion {
    /// A request's claim on `key` for `scope`, not yet made.
    pub(super) fn new(
        scope: String,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        status: u16,
        terms: &IdempotencySettings,
    ) -> Self {
        Self {
            scope,
            key: key.as_str().to_owned(),
            fingerprint: fingerprint.0.to_vec(),
            token: uuid::Uuid::new_v4().to_string(),
            status: i16::try_from(status).unwrap_or(i16::MAX),
            lease: terms.lease_seconds as f64,
            retention_hours: i32::try_from(terms.retention_hours).unwrap_or(i32::MAX),
            held: false,
        }
    }

    /// `$scope, $key, $fingerprint, `: the request's columns of a claim or an answer.
    fn push_request<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(&self.scope)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(&self.fingerprint)?;
        out.push_sql(", ");
        Ok(())
    }

    /// The claim the change's first statement must make, when the key is not held yet: that
    /// statement starts with it and selects `EXISTS (SELECT 1 FROM claimed)`, and a change
    /// whose claim was refused ends there with [`crate::error::ApiError::KeyTaken`].
    pub fn claim_first(&self) -> Option<ClaimFirst<'_>> {
        (!self.held).then_some(ClaimFirst(self))
    }
}

/// `WITH stale AS (…), answered AS (…), claimed AS (INSERT … RETURNING 1) `: the start of a
/// statement that claims a key unless an answer to it is stored within the retention or
/// another request holds it (its lease alive). An answer past the retention that was not
/// pruned yet is deleted by the claim that replaces it. `claimed` has a row when the claim
/// was made.
#[derive(Debug, Clone, Copy)]
pub struct ClaimFirst<'a>(&'a Completion);

impl QueryFragment<Pg> for ClaimFirst<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let claim = self.0;
        let this_key = |out: &mut AstPass<'_, 'b, Pg>| -> QueryResult<()> {
            out.push_sql("scope = ");
            out.push_bind_param::<Text, _>(&claim.scope)?;
            out.push_sql(" AND idempotency_key = ");
            out.push_bind_param::<Text, _>(&claim.key)?;
            out.push_sql(" AND created_at ");
            Ok(())
        };
        out.push_sql("WITH stale AS (DELETE FROM vottery_idempotency_keys WHERE ");
        this_key(&mut out)?;
        out.push_sql("< now() - make_interval(hours => ");
        out.push_bind_param::<Integer, _>(&claim.retention_hours)?;
        out.push_sql(")), answered AS (SELECT 1 FROM vottery_idempotency_keys WHERE ");
        this_key(&mut out)?;
        out.push_sql(">= now() - make_interval(hours => ");
        out.push_bind_param::<Integer, _>(&claim.retention_hours)?;
        out.push_sql(
            ")), claimed AS (INSERT INTO vottery_idempotency_claims AS c \
             (scope, idempotency_key, fingerprint, token, lease_until) SELECT ",
        );
        claim.push_request(&mut out)?;
        out.push_bind_param::<Text, _>(&claim.token)?;
        out.push_sql("::uuid, now() + make_interval(secs => ");
        out.push_bind_param::<Double, _>(&claim.lease)?;
        out.push_sql(
            ") WHERE NOT EXISTS (SELECT 1 FROM answered) \
             ON CONFLICT (scope, idempotency_key) DO UPDATE SET \
             fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token, \
             lease_until = EXCLUDED.lease_until WHERE c.lease_until < now() RETURNING 1) ",
        );
        Ok(())
    }
}

/// A claim alone: `<ClaimFirst> SELECT EXISTS (SELECT 1 FROM claimed)`.
struct ClaimAlone<'a>(ClaimFirst<'a>);

impl QueryFragment<Pg> for ClaimAlone<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql("SELECT EXISTS (SELECT 1 FROM claimed)");
        Ok(())
    }
}

impl Query for ClaimAlone<'_> {
    type SqlType = Bool;
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

/// Claims `completion`'s key (see [`ClaimFirst`]); what another request left when it could
/// not. The claim then holds the key.
pub(super) async fn claim(
    conn: &mut AsyncPgConnection,
    completion: &mut Completion,
) -> QueryResult<Option<Taken>> {
    // A claim or answer that ends between the two statements is looked at again.
    for _ in 0..3 {
        let claimed = Prepared(ClaimAlone(ClaimFirst(completion)))
            .get_result::<bool>(conn)
            .await?;
        if claimed {
            completion.held = true;
            return Ok(None);
        }
        if let Some(taken) = taken(conn, completion).await? {
            return Ok(Some(taken));
        }
    }
    Err(diesel::result::Error::NotFound)
}

/// The answer stored for `completion`'s key within the retention, else the live claim another
/// request holds on it; nothing when neither is there.
pub(super) async fn taken(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
) -> QueryResult<Option<Taken>> {
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
        .bind::<Text, _>(completion.scope.clone())
        .bind::<Text, _>(completion.key.clone())
        .bind::<Binary, _>(completion.fingerprint.clone())
        .bind::<Integer, _>(completion.retention_hours),
    )
    .get_result::<Taken>(conn)
    .await
    .optional()
}

/// The user row a stored answer shows, as it was stored (PII as ciphertext).
pub(super) async fn answered_user(
    conn: &mut AsyncPgConnection,
    completion: &Completion,
) -> QueryResult<Option<UserRow>> {
    Prepared(
        diesel::sql_query(
            "SELECT shown.* FROM vottery_idempotency_keys AS k, \
             jsonb_populate_record(NULL::vottery_users, k.answer_user) AS shown \
             WHERE k.scope = $1 AND k.idempotency_key = $2 AND k.answer_user IS NOT NULL",
        )
        .into_boxed()
        .bind::<Text, _>(completion.scope.clone())
        .bind::<Text, _>(completion.key.clone()),
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
        self.push_request(&mut out)?;
        out.push_bind_param::<SmallInt, _>(&self.status)?;
        out.push_sql(", to_jsonb(shown) FROM changed AS shown)");
        Ok(())
    }
}
