//! Queries on `vottery_users`. Every function takes a connection; callers own transactions.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_server::db::Prepared;

use crate::audit::{self, AuditEvent};
use crate::domain::roles::{AdminRole, SubscriptionStatus, UserType};
use crate::domain::status::Status;
use crate::idempotency::{ClaimFirst, Completion};
use crate::record::{NewUserRow, OwnedColumns, UserRow};
use crate::schema::vottery_users as users;

pub mod batches;
pub mod sessions;

/// Which unique value a failed insert or update collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    Email,
    Phone,
}

/// Reads a unique violation on the blind indexes.
pub fn duplicate_of(error: &Error) -> Option<Duplicate> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match info.constraint_name() {
                Some(name) if name.contains("email") => Some(Duplicate::Email),
                Some(name) if name.contains("phone") => Some(Duplicate::Phone),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Inserts a user and appends `event` to the user's audit chain, in one statement (which also
/// stores the idempotent request's `answer`, when there is one).
///
/// The rows a write returns are read to the end of its answer, never just the first (diesel's
/// `get_result`): outside a transaction PostgreSQL commits the statement after sending its
/// rows, so only the answer's end says it committed. A connection ended in between would
/// otherwise leave a row reported as written that never was.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    row: &NewUserRow,
    event: &AuditEvent<'_>,
    answer: Option<&Completion>,
) -> QueryResult<UserRow> {
    let rows: Vec<UserRow> = audit::recording(
        diesel::insert_into(users::table)
            .values(row)
            .returning(UserRow::as_returning()),
        event,
        answer,
    )?
    .load(conn)
    .await?;
    rows.into_iter()
        .next()
        .ok_or(diesel::result::Error::NotFound)
}

pub async fn find(conn: &mut AsyncPgConnection, id: i32) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Up to two rows at once (the actor and the target of a request; pass one id twice for one
/// row). Written as `id = $1 OR id = $2` rather than `id = ANY($1)`: PostgreSQL keeps one
/// generic plan for the former, and re-plans the latter on every execution.
pub async fn find_pair(
    conn: &mut AsyncPgConnection,
    first: i32,
    second: i32,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::id.eq(first).or(users::id.eq(second)))
        .select(UserRow::as_select())
        .load(conn)
        .await
}

/// Writes the owned columns if the row is still at `expected_version`, and appends `event` to
/// the user's audit chain (and stores the idempotent request's `answer`), in one statement;
/// `None` (and nothing written) if the row moved on. Read to the end, as [`insert`] is.
pub async fn update_if_version(
    conn: &mut AsyncPgConnection,
    id: i32,
    expected_version: i64,
    owned: &OwnedColumns,
    event: &AuditEvent<'_>,
    answer: Option<&Completion>,
) -> QueryResult<Option<UserRow>> {
    audit::recording(
        diesel::update(
            users::table
                .filter(users::id.eq(id))
                .filter(users::row_version.eq(expected_version)),
        )
        .set(owned)
        .returning(UserRow::as_returning()),
        event,
        answer,
    )?
    .load(conn)
    .await
    .map(|rows: Vec<UserRow>| rows.into_iter().next())
}

/// Locks a user's row until the end of the transaction if it is still at `expected_version`;
/// false (and nothing locked) if it moved on or is gone.
pub async fn lock_if_version(
    conn: &mut AsyncPgConnection,
    id: i32,
    expected_version: i64,
) -> QueryResult<bool> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::row_version.eq(expected_version))
        .select(users::id)
        .for_update()
        .first::<i32>(conn)
        .await
        .optional()
        .map(|found| found.is_some())
}

/// Deletes a user if still at `expected_version`; devices, sessions and biometrics cascade.
pub async fn delete_if_version(
    conn: &mut AsyncPgConnection,
    id: i32,
    expected_version: i64,
) -> QueryResult<bool> {
    diesel::delete(
        users::table
            .filter(users::id.eq(id))
            .filter(users::row_version.eq(expected_version)),
    )
    .execute(conn)
    .await
    .map(|deleted| deleted == 1)
}

/// Key of the advisory lock that serialises the writes that take an active manager away (a
/// demotion, a suspension, a deletion), so that two of them racing cannot remove the last one.
const MANAGERS_LOCK: i64 = 0x766f_7461_6d67_7273;

/// Takes the managers lock until the end of the current transaction.
pub async fn lock_managers(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    Prepared(
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MANAGERS_LOCK),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// A new user's id and what a row written before this service says about its contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Taken before the insert: the new row's ciphertexts are bound to it.
    pub id: i32,
    /// Which contact, if any, matches a row written before this service (plaintext, not yet
    /// encrypted, so not covered by the blind indexes) by normalised email or E.164 phone.
    pub legacy_duplicate: Option<Duplicate>,
}

/// A reservation as selected: `claimed` is false only when the statement's idempotency claim
/// was refused.
#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    reserved_id: i32,
    /// Null: no match; true: the email matches; false: only the phone does.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
    legacy_email: Option<bool>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    claimed: bool,
}

impl Reserved {
    /// The reservation, or [`ReserveError::KeyTaken`] when the claim was refused.
    fn reservation(self) -> Result<Reservation, ReserveError> {
        if !self.claimed {
            return Err(ReserveError::KeyTaken);
        }
        Ok(Reservation {
            id: self.reserved_id,
            legacy_duplicate: self.legacy_email.map(|email| {
                if email {
                    Duplicate::Email
                } else {
                    Duplicate::Phone
                }
            }),
        })
    }
}

/// Why no id was reserved.
#[derive(Debug)]
pub enum ReserveError {
    /// The request's idempotency key is held or answered by another request.
    KeyTaken,
    Database(Error),
}

impl From<Error> for ReserveError {
    fn from(error: Error) -> Self {
        Self::Database(error)
    }
}

/// `[<claim>] SELECT [<actor's row>,] <reserved id>, <legacy duplicate>, <claimed> [FROM
/// vottery_users WHERE id = <actor>]`: reserves the id of a user about to be created and looks
/// for a row written before this service (plaintext) with its email or phone's digits; with
/// the acting user's row when `actor` is set, and making the request's idempotency claim first
/// when `claim` is set, so that a create starts with one statement.
struct Reserving<'a> {
    claim: Option<ClaimFirst<'a>>,
    actor: Option<i32>,
    email: &'a str,
    /// The phone's digits, without `+`.
    digits: &'a str,
}

impl QueryFragment<Pg> for Reserving<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Integer, Text};
        if let Some(claim) = &self.claim {
            claim.walk_ast(out.reborrow())?;
        }
        out.push_sql("SELECT ");
        if self.actor.is_some() {
            out.push_sql("vottery_users.*, ");
        }
        out.push_sql(
            "nextval(pg_get_serial_sequence('vottery_users', 'id'))::int4 AS reserved_id, \
             (SELECT lower(btrim(sngine_email)) = ",
        );
        out.push_bind_param::<Text, _>(self.email)?;
        out.push_sql(
            " FROM vottery_users WHERE NOT pii_encrypted AND (lower(btrim(sngine_email)) = ",
        );
        out.push_bind_param::<Text, _>(self.email)?;
        out.push_sql(" OR regexp_replace(sngine_phone, '[^0-9]', '', 'g') IN (");
        out.push_bind_param::<Text, _>(self.digits)?;
        out.push_sql(", '00' || ");
        out.push_bind_param::<Text, _>(self.digits)?;
        out.push_sql(")) ORDER BY 1 DESC LIMIT 1) AS legacy_email, ");
        out.push_sql(match self.claim {
            Some(_) => "EXISTS (SELECT 1 FROM claimed) AS claimed",
            None => "true AS claimed",
        });
        if let Some(actor) = &self.actor {
            out.push_sql(" FROM vottery_users WHERE vottery_users.id = ");
            out.push_bind_param::<Integer, _>(actor)?;
        }
        Ok(())
    }
}

impl Query for Reserving<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

/// Reserves the id of a user about to be created and looks for a legacy duplicate, in one
/// statement that first makes the request's idempotency `claim`, if any.
pub async fn reserve_user_id(
    conn: &mut AsyncPgConnection,
    email: &str,
    phone: &str,
    claim: Option<ClaimFirst<'_>>,
) -> Result<Reservation, ReserveError> {
    let reserving = Reserving {
        claim,
        actor: None,
        email,
        digits: phone.trim_start_matches('+'),
    };
    // Read to the end: a claim is committed once the statement's answer ends.
    let rows: Vec<Reserved> = Prepared(reserving).load(conn).await?;
    rows.into_iter()
        .next()
        .ok_or(Error::NotFound)?
        .reservation()
}

/// The acting user's row and a reservation, in one statement (one round trip where a create
/// would otherwise take two), which first makes the request's idempotency `claim`, if any.
/// `None`, with nothing reserved, when the actor's row is gone.
pub async fn find_reserving(
    conn: &mut AsyncPgConnection,
    actor_id: i32,
    email: &str,
    phone: &str,
    claim: Option<ClaimFirst<'_>>,
) -> Result<Option<(UserRow, Reservation)>, ReserveError> {
    #[derive(QueryableByName)]
    struct ActorReserving {
        #[diesel(embed)]
        actor: UserRow,
        #[diesel(embed)]
        reserved: Reserved,
    }
    let reserving = Reserving {
        claim,
        actor: Some(actor_id),
        email,
        digits: phone.trim_start_matches('+'),
    };
    let rows: Vec<ActorReserving> = Prepared(reserving).load(conn).await?;
    match rows.into_iter().next() {
        Some(found) => Ok(Some((found.actor, found.reserved.reservation()?))),
        None => Ok(None),
    }
}

/// Managers who are not suspended.
fn active_managers() -> users::BoxedQuery<'static, Pg> {
    users::table
        .filter(users::admin_role.eq(AdminRole::Manager.as_str()))
        .filter(users::status.is_distinct_from(Status::Suspended.as_str()))
        .into_boxed()
}

/// How many active managers there are besides `user_id` (the one a write would take away).
pub async fn active_managers_besides(
    conn: &mut AsyncPgConnection,
    user_id: i32,
) -> QueryResult<i64> {
    active_managers()
        .filter(users::id.ne(user_id))
        .count()
        .get_result(conn)
        .await
}

/// Whether the installation has an active manager.
pub async fn any_active_manager(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(active_managers()))
        .get_result(conn)
        .await
}

/// Filters of a list request, by indexed columns only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    pub status: Option<Status>,
    pub user_type: Option<UserType>,
    pub admin_role: Option<AdminRole>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub country: Option<String>,
    pub email_bidx: Option<String>,
}

fn filtered(filters: &Filters) -> users::BoxedQuery<'static, Pg> {
    let mut query = users::table.into_boxed();
    if let Some(status) = filters.status {
        query = query.filter(users::status.eq(status.as_str()));
    }
    if let Some(user_type) = filters.user_type {
        query = query.filter(users::user_type.eq(user_type.as_str()));
    }
    if let Some(admin_role) = filters.admin_role {
        query = query.filter(users::admin_role.eq(admin_role.as_str()));
    }
    if let Some(subscription_status) = filters.subscription_status {
        query = query.filter(users::subscription_status.eq(subscription_status.as_str()));
    }
    if let Some(country) = &filters.country {
        query = query.filter(users::country.eq(country.clone()));
    }
    if let Some(bidx) = &filters.email_bidx {
        query = query.filter(users::email_bidx.eq(bidx.clone()));
    }
    query
}

/// Where a page starts: a page number (rows skipped one by one), or just after or just before
/// a user id (a range scan of the filters' index, whatever the depth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Page(u32),
    After(i32),
    Before(i32),
}

/// Up to `limit` users in id order from `position`, and one more when there is one: the
/// caller learns from it whether the list goes on past the page (on the side it was read
/// towards). Only the page's rows are read in full.
pub async fn page(
    conn: &mut AsyncPgConnection,
    filters: &Filters,
    position: Position,
    limit: u32,
) -> QueryResult<Vec<UserRow>> {
    Prepared(PageOfUsers::new(filters, position, limit))
        .load(conn)
        .await
}

/// How many users match the filters, counted up to `cap + 1` and no further: an index range
/// scan that stops there, so a large list costs no more to total than a list of `cap` rows.
pub async fn count_up_to(
    conn: &mut AsyncPgConnection,
    filters: &Filters,
    cap: i64,
) -> QueryResult<i64> {
    Prepared(BoundedCount {
        ids: filtered(filters).select(users::id),
        cap,
    })
    .get_result(conn)
    .await
}

/// How many users the planner expects to match the filters, from the table's statistics
/// (`pg_class.reltuples` and the columns' value frequencies): no row is read.
pub async fn estimate(conn: &mut AsyncPgConnection, filters: &Filters) -> QueryResult<i64> {
    let plan: serde_json::Value = Prepared(Explained(filtered(filters).select(users::id)))
        .get_result(conn)
        .await?;
    let rows = plan
        .pointer("/0/Plan/Plan Rows")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    Ok(rows.round() as i64)
}

/// `SELECT count(*) FROM (<ids> LIMIT <cap + 1>) AS matching`, the cap written into the
/// statement so that its one generic plan knows how few rows it reads.
struct BoundedCount {
    ids: users::BoxedQuery<'static, Pg, diesel::sql_types::Integer>,
    cap: i64,
}

impl QueryFragment<Pg> for BoundedCount {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT count(*) FROM (");
        QueryFragment::<Pg>::walk_ast(&self.ids, out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}) AS matching", self.cap + 1));
        Ok(())
    }
}

impl Query for BoundedCount {
    type SqlType = diesel::sql_types::BigInt;
}

/// `EXPLAIN (FORMAT JSON) <query>`: the plan, with the planner's row estimate, as JSON.
struct Explained<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explained<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> Query for Explained<Q> {
    type SqlType = diesel::sql_types::Json;
}

/// Page sizes written into the page statement; any other is bound. Each written size is one
/// more prepared statement per connection and filter combination, so they are few.
const WRITTEN_PAGE_SIZES: [i64; 5] = [10, 20, 25, 50, 100];

/// `SELECT <user row> FROM vottery_users WHERE id IN (<ids from the position> LIMIT <limit + 1>
/// [OFFSET $n]) ORDER BY id`, prepared once per connection, filter combination, kind of position
/// and page size. The usual page sizes are written into the statement rather than bound:
/// knowing the size, PostgreSQL keeps one generic plan (an index range scan, then a lookup by
/// key per row) instead of planning every page anew. Told only `LIMIT $n`, its generic plan
/// expects a tenth of the table and reads all of it, so it plans each execution for its values.
struct PageOfUsers {
    columns: diesel::dsl::AsSelect<UserRow, Pg>,
    ids: users::BoxedQuery<'static, Pg, diesel::sql_types::Integer>,
    /// Rows read: the page and one more.
    limit: i64,
    /// Rows skipped first (page numbers only).
    offset: Option<i64>,
}

impl PageOfUsers {
    fn new(filters: &Filters, position: Position, limit: u32) -> Self {
        let ids = filtered(filters).select(users::id);
        let (ids, offset) = match position {
            Position::Page(page) => (
                ids.order(users::id.asc()),
                Some(i64::from(page.saturating_sub(1)) * i64::from(limit)),
            ),
            Position::After(id) => (ids.filter(users::id.gt(id)).order(users::id.asc()), None),
            Position::Before(id) => (ids.filter(users::id.lt(id)).order(users::id.desc()), None),
        };
        Self {
            columns: UserRow::as_select(),
            ids,
            limit: i64::from(limit) + 1,
            offset,
        }
    }
}

impl QueryFragment<Pg> for PageOfUsers {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        QueryFragment::<Pg>::walk_ast(&self.columns, out.reborrow())?;
        out.push_sql(" FROM vottery_users WHERE vottery_users.id IN (");
        QueryFragment::<Pg>::walk_ast(&self.ids, out.reborrow())?;
        if WRITTEN_PAGE_SIZES.contains(&(self.limit - 1)) {
            out.push_sql(&format!(" LIMIT {}", self.limit));
        } else {
            out.push_sql(" LIMIT ");
            out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.limit)?;
        }
        if let Some(offset) = &self.offset {
            out.push_sql(" OFFSET ");
            out.push_bind_param::<diesel::sql_types::BigInt, _>(offset)?;
        }
        out.push_sql(") ORDER BY vottery_users.id");
        Ok(())
    }
}

impl Query for PageOfUsers {
    type SqlType = <diesel::dsl::AsSelect<UserRow, Pg> as Expression>::SqlType;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_sql(filters: &Filters, position: Position, limit: u32) -> String {
        diesel::debug_query::<Pg, _>(&PageOfUsers::new(filters, position, limit)).to_string()
    }

    #[test]
    fn usual_page_sizes_are_written_into_the_page_statement_and_others_bound() {
        let unfiltered = Filters::default();
        let sql = page_sql(&unfiltered, Position::Page(3), 20);
        assert!(sql.contains(" LIMIT 21 OFFSET $1)"), "{sql}");
        assert!(sql.contains("binds: [40]"), "{sql}");
        let sql = page_sql(&unfiltered, Position::Page(3), 7);
        assert!(sql.contains(" LIMIT $1 OFFSET $2)"), "{sql}");
        assert!(sql.contains("binds: [8, 14]"), "{sql}");
        let active = Filters {
            status: Some(Status::Active),
            ..Filters::default()
        };
        let sql = page_sql(&active, Position::Page(3), 100);
        assert!(sql.contains("\"status\" = $1"), "{sql}");
        assert!(sql.contains(" LIMIT 101 OFFSET $2)"), "{sql}");
    }

    #[test]
    fn cursor_pages_are_range_scans_without_an_offset() {
        let active = Filters {
            status: Some(Status::Active),
            ..Filters::default()
        };
        let sql = page_sql(&active, Position::After(800_000), 20);
        assert!(sql.contains("\"id\" > $2)) ORDER BY"), "{sql}");
        assert!(sql.contains(" ASC LIMIT 21)"), "{sql}");
        assert!(!sql.contains("OFFSET"), "{sql}");
        let sql = page_sql(&active, Position::Before(800_000), 20);
        assert!(sql.contains("\"id\" < $2)) ORDER BY"), "{sql}");
        assert!(
            sql.contains(" DESC LIMIT 21) ORDER BY vottery_users.id"),
            "{sql}"
        );
    }
}
