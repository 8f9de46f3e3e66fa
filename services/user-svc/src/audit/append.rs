//! The statement that appends a row to an audit chain.
//!
//! One statement moves the chain's head and inserts the row. Moving the head takes the head
//! row's lock until the transaction ends, which serialises the appends to one chain. Under that
//! lock, PostgreSQL computes the new row's hash from the previous hash and the next sequence
//! number it finds there. The rest of the hashed content is canonicalised here, in two parts
//! around `chain_seq`, the one member only the database knows. The hash is the same one
//! [`super::chain_hash`] computes, and that function is what verification uses.
//!
//! Attached to a change with [`super::recording`], the append goes in the same statement as
//! the change: `WITH changed AS (<change> RETURNING …), head AS (…), logged AS (…) SELECT * FROM
//! changed`. It appends only when the change touched a row. The head moves only after the
//! change has taken its row's lock, so every write takes the user's row before the chain. A
//! change's user events follow as `evented AS (INSERT INTO vottery_user_events … FROM head)`
//! (see [`crate::events::outbox`]), so they are written exactly when the audit row is.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::sql_types::{BigInt, Binary, Bool, Inet, Integer, Jsonb, Nullable, Text, Timestamp};
use diesel::{QueryResult, result::Error};

use super::{AuditEvent, ChainedContent, GENESIS, format_time};
use crate::events::outbox::OutboxBatch;

/// An event's audit row, ready to be appended to its chain.
#[derive(Debug)]
pub struct ChainEntry<'a> {
    chain_key: i64,
    user_id: Option<i32>,
    actor_id: Option<i32>,
    action: &'a str,
    details: Option<serde_json::Value>,
    ip_address: Option<ipnet::IpNet>,
    user_agent: Option<&'a str>,
    success: bool,
    created_at: NaiveDateTime,
    request_id: &'a str,
    /// The canonical content up to the value of `chain_seq`, and from after it.
    content_before_seq: Vec<u8>,
    content_after_seq: Vec<u8>,
    /// The change's events, inserted into the outbox with the row.
    events: Option<OutboxBatch>,
}

impl<'a> ChainEntry<'a> {
    pub fn new(
        event: &AuditEvent<'a>,
        details: serde_json::Value,
        created_at: NaiveDateTime,
    ) -> QueryResult<Self> {
        let chain_key = event.user_id.map_or(0, i64::from);
        let details = Some(details);
        let content = ChainedContent {
            chain_key,
            chain_seq: 0,
            user_id: event.user_id,
            actor_id: event.actor_id,
            device_id: None,
            action: event.action,
            details: &details,
            ip_address: event.request.ip.map(|ip| ip.to_string()),
            user_agent: event.request.user_agent.as_deref(),
            success: Some(event.success),
            created_at: format_time(&Some(created_at)),
            request_id: Some(&event.request.request_id),
        };
        let (content_before_seq, content_after_seq) = split_at_seq(&content)?;
        Ok(Self {
            chain_key,
            user_id: event.user_id,
            actor_id: event.actor_id,
            action: event.action,
            details,
            ip_address: event.request.ip,
            user_agent: event.request.user_agent.as_deref(),
            success: event.success,
            created_at,
            request_id: &event.request.request_id,
            content_before_seq,
            content_after_seq,
            events: OutboxBatch::of(&event.events)?,
        })
    }

    /// `head AS (…)`: inserts the chain's first head or moves the existing one, returning the
    /// new sequence number, the new hash and the hash before it. `source` ends the row the
    /// insert selects (after a change: `FROM changed`, so that nothing moves when it touched
    /// no row).
    fn walk_head<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>, source: &str) -> QueryResult<()> {
        out.push_sql(
            "head AS (INSERT INTO vottery_audit_chain_heads AS h \
             (chain_key, last_seq, last_hash, prev_hash, updated_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.chain_key)?;
        out.push_sql(", 1, ");
        self.walk_hash(out.reborrow(), Prev::Genesis, "1")?;
        out.push_sql(", ");
        Prev::Genesis.walk(out.reborrow());
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(source);
        out.push_sql(
            " ON CONFLICT (chain_key) DO UPDATE SET last_seq = h.last_seq + 1, last_hash = ",
        );
        self.walk_hash(out.reborrow(), Prev::Head, "h.last_seq + 1")?;
        out.push_sql(
            ", prev_hash = h.last_hash, updated_at = EXCLUDED.updated_at \
             RETURNING chain_key, last_seq, last_hash, prev_hash)",
        );
        Ok(())
    }

    /// The hash of the row at `seq` after `prev`: what [`super::chain_hash`] computes.
    fn walk_hash<'b>(
        &'b self,
        mut out: AstPass<'_, 'b, Pg>,
        prev: Prev,
        seq: &str,
    ) -> QueryResult<()> {
        out.push_sql("encode(sha256(convert_to(");
        prev.walk(out.reborrow());
        out.push_sql(", 'UTF8') || '\\x0a'::bytea || ");
        out.push_bind_param::<Binary, _>(&self.content_before_seq)?;
        out.push_sql(" || convert_to((");
        out.push_sql(seq);
        out.push_sql(")::text, 'UTF8') || ");
        out.push_bind_param::<Binary, _>(&self.content_after_seq)?;
        out.push_sql("), 'hex')");
        Ok(())
    }

    /// `INSERT INTO vottery_audit_logs …`: the row at the place `head` returned.
    fn walk_row<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO vottery_audit_logs (user_id, actor_id, action, details, ip_address, \
             user_agent, success, created_at, request_id, chain_key, chain_seq, prev_hash, \
             row_hash) SELECT ",
        );
        out.push_bind_param::<Nullable<Integer>, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Integer>, _>(&self.actor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.action)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.details)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Inet>, _>(&self.ip_address)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.success)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.request_id)?;
        out.push_sql(", chain_key, last_seq, prev_hash, last_hash FROM head");
        Ok(())
    }

    /// `, evented AS (…)`: the change's events in the outbox, when it has any.
    fn walk_events<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match &self.events {
            Some(events) => events.walk_ast(out),
            None => Ok(()),
        }
    }
}

/// The hash a new row links to.
#[derive(Clone, Copy)]
enum Prev {
    /// The first row of a chain.
    Genesis,
    /// The head's hash, in its `ON CONFLICT DO UPDATE` (aliased `h`).
    Head,
}

impl Prev {
    fn walk(self, mut out: AstPass<'_, '_, Pg>) {
        match self {
            Prev::Genesis => {
                out.push_sql("'");
                out.push_sql(GENESIS);
                out.push_sql("'");
            }
            Prev::Head => out.push_sql("h.last_hash"),
        }
    }
}

/// The canonical form of `content` (whose `chain_seq` is 0) in two parts: up to the value of
/// `chain_seq`, and after it. The first `"chain_seq":` in the text is the member itself: the
/// members sorting before it are a string, in which a bare `"` cannot occur, and two numbers.
fn split_at_seq(content: &ChainedContent<'_>) -> QueryResult<(Vec<u8>, Vec<u8>)> {
    const MEMBER: &[u8] = b"\"chain_seq\":0";
    let canonical = serde_json_canonicalizer::to_vec(content)
        .map_err(|error| Error::SerializationError(Box::new(error)))?;
    let at = canonical
        .windows(MEMBER.len())
        .position(|window| window == MEMBER)
        .ok_or_else(|| {
            Error::SerializationError("chain_seq is missing from the audit content".into())
        })?;
    let value_at = at + MEMBER.len() - 1;
    Ok((
        canonical[..value_at].to_vec(),
        canonical[value_at + 1..].to_vec(),
    ))
}

/// An event appended to its chain on its own (a refused attempt, a deletion). Run it through
/// [`Prepared`](vottery_server::db::Prepared): the text is the same for every event.
pub struct Appended<'a>(pub ChainEntry<'a>);

impl QueryFragment<Pg> for Appended<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ");
        self.0.walk_head(out.reborrow(), "")?;
        self.0.walk_events(out.reborrow())?;
        out.push_sql(" ");
        self.0.walk_row(out.reborrow())
    }
}

/// A change (an insert or update `RETURNING` the row) with its event appended in the same
/// statement; returns what the change returns. Run it through
/// [`Prepared`](vottery_server::db::Prepared): diesel would not cache the change alone when it
/// is an `UPDATE`.
pub struct Recorded<'a, Q> {
    pub change: Q,
    pub entry: ChainEntry<'a>,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Recorded<'_, Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH changed AS (");
        self.change.walk_ast(out.reborrow())?;
        out.push_sql("), ");
        self.entry
            .walk_head(out.reborrow(), " FROM changed LIMIT 1")?;
        out.push_sql(", logged AS (");
        self.entry.walk_row(out.reborrow())?;
        out.push_sql(")");
        self.entry.walk_events(out.reborrow())?;
        out.push_sql(" SELECT * FROM changed");
        Ok(())
    }
}

impl<Q: Query> Query for Recorded<'_, Q> {
    type SqlType = Q::SqlType;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{RequestMeta, chain_hash};

    fn content<'a>(
        seq: i64,
        action: &'a str,
        details: &'a Option<serde_json::Value>,
    ) -> ChainedContent<'a> {
        ChainedContent {
            chain_key: 42,
            chain_seq: seq,
            user_id: Some(42),
            actor_id: None,
            device_id: None,
            action,
            details,
            ip_address: Some("192.0.2.7/32".into()),
            user_agent: Some("agent \"quoted\" \u{e9}"),
            success: Some(true),
            created_at: Some("2026-11-29T21:00:00.000001Z".into()),
            request_id: Some("req-1"),
        }
    }

    /// What PostgreSQL hashes: the two parts around the decimal sequence number.
    fn spliced(prev: &str, before: &[u8], seq: i64, after: &[u8]) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(prev.as_bytes());
        context.update(b"\n");
        context.update(before);
        context.update(seq.to_string().as_bytes());
        context.update(after);
        hex::encode(context.finish().as_ref())
    }

    #[test]
    fn the_parts_around_the_sequence_number_hash_like_the_whole_content() {
        // An action and details that hold the member's own text must not move the split.
        let details = Some(serde_json::json!({
            "actor": "user:1",
            "chain_seq": 0,
            "reason": "\"chain_seq\":0",
        }));
        for action in ["user.create", "\"chain_seq\":0"] {
            let (before, after) = split_at_seq(&content(0, action, &details)).unwrap();
            // RFC 8785 writes numbers as IEEE doubles: integers are exact up to 2^53, far
            // beyond any chain's length.
            for seq in [1, 9, 10, 12_345, 1 << 53] {
                assert_eq!(
                    spliced(GENESIS, &before, seq, &after),
                    chain_hash(GENESIS, &content(seq, action, &details)),
                    "action {action:?}, seq {seq}"
                );
            }
        }
    }

    #[test]
    fn an_entry_carries_the_event_and_its_chain() {
        let request = RequestMeta {
            request_id: "req-9".into(),
            ip: None,
            user_agent: None,
        };
        let event = AuditEvent {
            user_id: None,
            actor_id: Some(3),
            actor_label: "user:3",
            action: "user.refused",
            changed_fields: vec!["status".into()],
            success: false,
            reason: Some("forbidden".into()),
            facts: None,
            request: &request,
            events: Vec::new(),
        };
        let entry = ChainEntry::new(
            &event,
            serde_json::json!({"actor": "user:3"}),
            crate::record::now_micros(),
        )
        .unwrap();
        assert_eq!(entry.chain_key, 0, "events about no user share chain 0");
        assert!(entry.content_before_seq.ends_with(b"\"chain_seq\":"));
        assert!(entry.content_after_seq.starts_with(b",\"created_at\":"));
    }
}
