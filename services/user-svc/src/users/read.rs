//! Reading users: one user, a filtered page of users (by page number or cursor, with a total
//! that stays cheap at any size), and a user's audit trail with the check of its hash chain.

use diesel_async::AsyncPgConnection;
use vottery_common::users::{AuditPage, UserPage, UserView};

use super::actor::Contacts;
use super::context::{Ctx, not_found, today};
use super::db::{self as users_db, Filters, Position};
use super::input::{self, ListQuery};
use super::list_cursor;
use super::totals::{EXACT_TOTAL_CAP, ListTotal};
use super::view;
use crate::audit;
use crate::error::ApiError;
use crate::record::UserRow;

/// `GET /api/users/:id` and `/api/users/me`.
pub async fn get(ctx: &Ctx<'_>, id: i32) -> Result<UserView, ApiError> {
    let (actor, target) = ctx.load(Some(id)).await?;
    let contacts = actor.may_view(id)?;
    let target = target.ok_or_else(|| not_found(id))?;
    render_one(ctx, &target, contacts).await
}

/// One user as the API shows them: PII decrypted, the signature checked.
pub(super) async fn render_one(
    ctx: &Ctx<'_>,
    target: &UserRow,
    contacts: Contacts,
) -> Result<UserView, ApiError> {
    let mut views = view::render(
        &ctx.state.vault,
        ctx.request_id(),
        std::slice::from_ref(target),
        contacts,
        today(),
    )
    .await?;
    views
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("rendering returned no view")))
}

/// `GET /api/users`: a page of the filtered list in id order, from a page number or a cursor,
/// with the list's total and the cursors of the pages beside it.
pub async fn list(ctx: &Ctx<'_>, query: &str) -> Result<UserPage, ApiError> {
    let (actor, _) = ctx.load(None).await?;
    let contacts = actor.may_list()?;
    let query = input::list_query(query, true)?;
    let filters = filters(ctx, &query).await?;
    let position = list_cursor::position(&query, &filters)?;
    let (mut rows, total) = {
        let mut conn = ctx.conn().await?;
        let total = ctx
            .state
            .totals
            .get_or_count(&filters, list_total(&mut conn, &filters))
            .await?;
        let rows = users_db::page(&mut conn, &filters, position, query.limit).await?;
        (rows, total)
    };
    let (more_after, more_before) = trim_to_page(&mut rows, position, query.limit);
    let ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
    let (next_cursor, prev_cursor) =
        list_cursor::neighbours(&filters, &ids, more_after, more_before);
    let data = view::render(&ctx.state.vault, ctx.request_id(), &rows, contacts, today()).await?;
    Ok(UserPage {
        data,
        page: matches!(position, Position::Page(_)).then_some(query.page),
        limit: query.limit,
        total: total.value,
        total_kind: total.kind,
        next_cursor,
        prev_cursor,
    })
}

/// The total of a list: counted up to the cap, estimated past it.
async fn list_total(
    conn: &mut AsyncPgConnection,
    filters: &Filters,
) -> Result<ListTotal, ApiError> {
    let counted = users_db::count_up_to(conn, filters, EXACT_TOTAL_CAP).await?;
    let estimate = if counted > EXACT_TOTAL_CAP {
        Some(users_db::estimate(conn, filters).await?)
    } else {
        None
    };
    Ok(ListTotal::from_count(counted, estimate))
}

/// Drops the extra row read past the page (on the side it was read towards) and says whether
/// rows lie after and before the page: `(more_after, more_before)`. What lies on the side a
/// cursor came from is not read again; a cursor is only handed out beside a row, so something
/// was there.
fn trim_to_page(rows: &mut Vec<UserRow>, position: Position, limit: u32) -> (bool, bool) {
    let limit = limit as usize;
    let overflow = rows.len() > limit;
    match position {
        Position::Page(page) => {
            rows.truncate(limit);
            (overflow, page > 1)
        }
        Position::After(_) => {
            rows.truncate(limit);
            (overflow, true)
        }
        Position::Before(_) => {
            if overflow {
                rows.drain(..rows.len() - limit);
            }
            (true, overflow)
        }
    }
}

/// A list query's filters as the database holds them: an email is looked up by its blind index.
async fn filters(ctx: &Ctx<'_>, query: &ListQuery) -> Result<Filters, ApiError> {
    let email_bidx = match &query.email {
        Some(email) => ctx
            .state
            .vault
            .blind_indexes(ctx.request_id(), &[email.as_str()])
            .await?
            .into_iter()
            .next(),
        None => None,
    };
    Ok(Filters {
        status: query.status,
        user_type: query.user_type,
        admin_role: query.admin_role,
        subscription_status: query.subscription_status,
        country: query.country.clone(),
        email_bidx,
    })
}

/// `GET /api/users/:id/audit`.
pub async fn audit_trail(ctx: &Ctx<'_>, id: i32, query: &str) -> Result<AuditPage, ApiError> {
    let (actor, _) = ctx.load(None).await?;
    actor.may_read_audit()?;
    let query = input::list_query(query, false)?;
    let mut conn = ctx.conn().await?;
    let (data, total) = audit::page(&mut conn, id, query.page, query.limit).await?;
    let chain = audit::verify_chain(&mut conn, id).await?;
    if !chain.valid {
        tracing::warn!(user_id = id, broken_at = ?chain.broken_at, "audit chain is broken");
    }
    // Nothing recorded and nothing missing: 404 unless the user exists. A chain whose rows were
    // all deleted is reported, not hidden behind a 404.
    if total == 0
        && chain.checked == 0
        && chain.valid
        && users_db::find(&mut conn, id).await?.is_none()
    {
        return Err(not_found(id));
    }
    Ok(AuditPage {
        data,
        page: query.page,
        limit: query.limit,
        total,
        chain,
    })
}
