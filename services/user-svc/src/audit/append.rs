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
use diesel::sql_types::{
    Array, BigInt, Binary, Bool, Inet, Integer, Jsonb, Nullable, Text, Timestamp,
};
use diesel::{QueryResult, result::Error};

use super::{AuditEvent, ChainedContent, GENESIS, format_time};
use crate::events::outbox::OutboxBatch;
use crate::idempotency::Completion;

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
    /// The answer of the idempotent request the change completes, stored with it.
    pub answer: Option<&'a Completion>,
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
        if let Some(answer) = self.answer {
            answer.walk_ast(out.reborrow())?;
        }
        out.push_sql(" SELECT * FROM changed");
        Ok(())
    }
}

impl<Q: Query> Query for Recorded<'_, Q> {
    type SqlType = Q::SqlType;
}

/// Many events, each about a different user, appended to their chains in one statement with
/// the change that concerns them: `WITH changed AS (<change> RETURNING id …), entries AS (…),
/// head AS (…), logged AS (…) SELECT * FROM changed`. An event is appended only when the change
/// returned its user's id, so a user row the change did not touch moves no chain.
///
/// Every event's fields go as one array bind per column (`unnest`), so the text is the same
/// whatever the number of events: run it through [`Prepared`](vottery_server::db::Prepared).
/// The heads move in one `INSERT … ON CONFLICT DO UPDATE`, which may touch each head once:
/// hence one event per user. Events that publish user events are not taken here.
pub struct RecordedEach<'a, Q> {
    pub change: Q,
    pub entries: ChainEntries<'a>,
}

/// The chain entries of events about distinct users, as arrays in event order.
#[derive(Debug, Default)]
pub struct ChainEntries<'a> {
    chain_key: Vec<i64>,
    user_id: Vec<Option<i32>>,
    actor_id: Vec<Option<i32>>,
    action: Vec<&'a str>,
    details: Vec<Option<serde_json::Value>>,
    ip_address: Vec<Option<ipnet::IpNet>>,
    user_agent: Vec<Option<&'a str>>,
    success: Vec<bool>,
    created_at: Vec<NaiveDateTime>,
    request_id: Vec<&'a str>,
    content_before_seq: Vec<Vec<u8>>,
    content_after_seq: Vec<Vec<u8>>,
}

impl<'a> ChainEntries<'a> {
    /// The entries of `events`, each about its own user, none publishing user events.
    pub fn of(events: &[AuditEvent<'a>]) -> QueryResult<Self> {
        let created_at = crate::record::now_micros();
        let mut entries = Self::default();
        let mut users = std::collections::HashSet::with_capacity(events.len());
        for event in events {
            let Some(user_id) = event.user_id.filter(|id| users.insert(*id)) else {
                return Err(Error::QueryBuilderError(
                    "a multi-row audit append takes one event per user".into(),
                ));
            };
            if !event.events.is_empty() {
                return Err(Error::QueryBuilderError(
                    "a multi-row audit append does not publish user events".into(),
                ));
            }
            let entry = ChainEntry::new(event, super::details(event), created_at)?;
            entries.chain_key.push(entry.chain_key);
            entries.user_id.push(Some(user_id));
            entries.actor_id.push(entry.actor_id);
            entries.action.push(entry.action);
            entries.details.push(entry.details);
            entries.ip_address.push(entry.ip_address);
            entries.user_agent.push(entry.user_agent);
            entries.success.push(entry.success);
            entries.created_at.push(entry.created_at);
            entries.request_id.push(entry.request_id);
            entries.content_before_seq.push(entry.content_before_seq);
            entries.content_after_seq.push(entry.content_after_seq);
        }
        Ok(entries)
    }

    /// `entries AS (…)`: one row per event whose user `changed` returned.
    fn walk_entries<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("entries AS (SELECT e.* FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(&self.chain_key)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.actor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.action)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Jsonb>>, _>(&self.details)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Inet>>, _>(&self.ip_address)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.success)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.request_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(&self.content_before_seq)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(&self.content_after_seq)?;
        out.push_sql(
            ") AS e(chain_key, user_id, actor_id, action, details, ip_address, user_agent, \
             success, created_at, request_id, before_seq, after_seq) \
             WHERE e.user_id IN (SELECT id FROM changed))",
        );
        Ok(())
    }
}

/// The hash of an `entries` row (aliased `e`) at `seq` after `prev`: what
/// [`super::chain_hash`] computes, as [`ChainEntry::walk_hash`] writes it for one entry.
fn entry_hash(prev: &str, seq: &str) -> String {
    format!(
        "encode(sha256(convert_to({prev}, 'UTF8') || '\\x0a'::bytea || e.before_seq \
         || convert_to(({seq})::text, 'UTF8') || e.after_seq), 'hex')"
    )
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for RecordedEach<'_, Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH changed AS (");
        self.change.walk_ast(out.reborrow())?;
        out.push_sql("), ");
        self.entries.walk_entries(out.reborrow())?;
        let genesis = format!("'{GENESIS}'");
        out.push_sql(&format!(
            ", head AS (INSERT INTO vottery_audit_chain_heads AS h \
             (chain_key, last_seq, last_hash, prev_hash, updated_at) \
             SELECT e.chain_key, 1, {first}, {genesis}, e.created_at FROM entries e \
             ON CONFLICT (chain_key) DO UPDATE SET last_seq = h.last_seq + 1, \
             last_hash = (SELECT {next} FROM entries e WHERE e.chain_key = EXCLUDED.chain_key), \
             prev_hash = h.last_hash, updated_at = EXCLUDED.updated_at \
             RETURNING chain_key, last_seq, last_hash, prev_hash), ",
            first = entry_hash(&genesis, "1"),
            next = entry_hash("h.last_hash", "h.last_seq + 1"),
        ));
        out.push_sql(
            "logged AS (INSERT INTO vottery_audit_logs (user_id, actor_id, action, details, \
             ip_address, user_agent, success, created_at, request_id, chain_key, chain_seq, \
             prev_hash, row_hash) SELECT e.user_id, e.actor_id, e.action, e.details, \
             e.ip_address, e.user_agent, e.success, e.created_at, e.request_id, h.chain_key, \
             h.last_seq, h.prev_hash, h.last_hash FROM head h JOIN entries e \
             ON e.chain_key = h.chain_key ORDER BY e.chain_key) \
             SELECT * FROM changed",
        );
        Ok(())
    }
}

impl<Q: Query> Query for RecordedEach<'_, Q> {
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
