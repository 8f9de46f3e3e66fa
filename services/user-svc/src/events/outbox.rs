//! The outbox, `vottery_user_events`: a change's events are inserted by the same statement
//! that writes the change and its audit row (see [`crate::audit`]), so a change commits with
//! its events or not at all, and a refused or failed write leaves none.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::result::Error;
use diesel::sql_types::Jsonb;
use vottery_common::events::UserEvent;

/// A change's events as one JSON array, inserted as `, evented AS (INSERT …)` after the
/// statement's `head` (the audit chain's moved head), so only when the change touched a row.
#[derive(Debug)]
pub struct OutboxBatch(serde_json::Value);

impl OutboxBatch {
    /// The batch of `events`; none when there are no events.
    pub fn of(events: &[UserEvent]) -> QueryResult<Option<Self>> {
        if events.is_empty() {
            return Ok(None);
        }
        serde_json::to_value(events)
            .map(|array| Some(Self(array)))
            .map_err(|error| Error::SerializationError(Box::new(error)))
    }
}

impl QueryFragment<Pg> for OutboxBatch {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            ", evented AS (INSERT INTO vottery_user_events (id, type, subject, payload) \
             SELECT (e.value->>'id')::uuid, e.value->>'type', (e.value->>'subject')::integer, \
             e.value FROM head, jsonb_array_elements(",
        );
        out.push_bind_param::<Jsonb, _>(&self.0)?;
        out.push_sql(") WITH ORDINALITY AS e(value, n) ORDER BY e.n)");
        Ok(())
    }
}
