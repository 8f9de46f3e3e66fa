//! Reading the event feed (`GET /api/events`): services and auditors and above.

use vottery_common::events::EventPage;

use super::context::Ctx;
use super::input;
use crate::error::ApiError;
use crate::events::feed;

/// `GET /api/events`.
pub async fn events(ctx: &Ctx<'_>, query: &str) -> Result<EventPage, ApiError> {
    let (actor, _) = ctx.load(None).await?;
    actor.may_read_events()?;
    let query = input::feed_query(query)?;
    let mut conn = ctx.conn().await?;
    feed::page(&mut conn, query).await
}
