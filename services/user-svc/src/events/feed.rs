//! The pull feed (`GET /api/events`): the outbox in commit order, a page at a time after an
//! opaque cursor.
//!
//! Sequences are taken when a row is inserted, not when it commits, so two concurrent
//! transactions can commit their events out of sequence order, and a reader paging by
//! sequence alone would step over the one that commits late. Each row therefore keeps the id
//! of the transaction that wrote it (`xact`), the feed orders by `(xact, sequence)`, and it
//! serves only rows whose transaction is older than the oldest one still running
//! (`pg_snapshot_xmin`). Every such transaction has ended, so no row can later appear before
//! one already served: the feed never skips an event, at the cost of waiting for the
//! transactions running when it is read. A user's changes take an id before they take the
//! user's row, so in a narrow race two changes to one user can be served in the order they
//! took their ids rather than their commits; `data.version` orders a user's changes exactly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_common::events::{EventPage, UserEvent};

use crate::error::ApiError;

/// Events per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// A place in the feed: after the event of transaction `xact` with `sequence`. The start is
/// `(0, 0)`, before every event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    xact: u64,
    sequence: i64,
}

impl Cursor {
    /// The cursor as clients see it.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.xact, self.sequence))
    }

    /// Reads a cursor this feed gave out.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (xact, sequence) = text.split_once('.')?;
        Some(Self {
            xact: xact.parse().ok()?,
            sequence: sequence.parse().ok().filter(|sequence| *sequence >= 0)?,
        })
    }
}

/// A page to read: the events after `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct FeedQuery {
    pub after: Cursor,
    pub limit: u32,
}

#[derive(QueryableByName)]
struct FeedRow {
    #[diesel(sql_type = Text)]
    xact: String,
    #[diesel(sql_type = BigInt)]
    sequence: i64,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

/// The page of events after the query's cursor, in commit order, and the cursor after it.
pub async fn page(conn: &mut AsyncPgConnection, query: FeedQuery) -> Result<EventPage, ApiError> {
    let rows: Vec<FeedRow> = diesel::sql_query(
        "SELECT xact::text AS xact, sequence, payload FROM vottery_user_events \
         WHERE (xact, sequence) > ($1::xid8, $2) \
         AND xact < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY xact, sequence LIMIT $3",
    )
    .bind::<Text, _>(query.after.xact.to_string())
    .bind::<BigInt, _>(query.after.sequence)
    .bind::<BigInt, _>(i64::from(query.limit))
    .load(conn)
    .await?;
    let mut next = query.after;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        next = Cursor {
            xact: row.xact.parse().map_err(anyhow::Error::new)?,
            sequence: row.sequence,
        };
        events.push(serde_json::from_value::<UserEvent>(row.payload).map_err(anyhow::Error::new)?);
    }
    Ok(EventPage {
        events,
        next: next.encode(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let cursor = Cursor {
            xact: 812,
            sequence: 33,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "abc", "MTIz", "-1.2", &URL_SAFE_NO_PAD.encode("1.-2")] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }
}
