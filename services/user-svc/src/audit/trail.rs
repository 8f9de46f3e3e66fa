//! A user's whole audit trail, for their export: every row about them, oldest first, read a
//! page at a time after a cursor on `id` so that memory does not grow with the trail, and
//! checked as it passes (see [`TrailCheck`] for what is checked).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_common::export::{ExportedAuditRow, TrailCheck};
use vottery_common::users::ChainBreak;

use super::verify::{ChainHead, ChainWalk, broken, chain_head, hashes_as_stored};
use super::{AuditRow, format_time};
use crate::schema::vottery_audit_logs as logs;

/// Rows read per page.
const TRAIL_PAGE: i64 = 1_000;

/// A user's trail being read: where the next page starts and what was checked so far.
pub struct Trail {
    user_id: i32,
    after_id: i32,
    rows: i64,
    /// The chain's head as it was when the trail's first page was read: rows appended to the
    /// chain after it are exported but not checked against it.
    head: Option<Option<ChainHead>>,
    chain: ChainWalk,
    unchained: i64,
    other_chain: i64,
    other_chain_broken: Option<ChainBreak>,
}

impl Trail {
    /// The trail of a user, from its first row.
    pub fn of(user_id: i32) -> Self {
        Self {
            user_id,
            after_id: 0,
            rows: 0,
            head: None,
            chain: ChainWalk::default(),
            unchained: 0,
            other_chain: 0,
            other_chain_broken: None,
        }
    }

    /// The next page of rows, checked, as they are exported; empty at the end.
    pub async fn next_page(
        &mut self,
        conn: &mut AsyncPgConnection,
    ) -> QueryResult<Vec<ExportedAuditRow>> {
        if self.head.is_none() {
            self.head = Some(chain_head(conn, i64::from(self.user_id)).await?);
        }
        let rows: Vec<AuditRow> = logs::table
            .filter(logs::user_id.eq(self.user_id))
            .filter(logs::id.gt(self.after_id))
            .order(logs::id.asc())
            .limit(TRAIL_PAGE)
            .select(AuditRow::as_select())
            .load(conn)
            .await?;
        rows.iter().for_each(|row| self.check(row));
        if let Some(last) = rows.last() {
            self.after_id = last.id;
        }
        Ok(rows.into_iter().map(exported).collect())
    }

    /// Files a row under the user's chain, another chain or none, and checks it there.
    fn check(&mut self, row: &AuditRow) {
        self.rows += 1;
        match row.chain_key {
            None => self.unchained += 1,
            Some(key) if key == i64::from(self.user_id) => {
                if !self.appended_since_the_head(row) {
                    self.chain.step(row);
                }
            }
            Some(_) => {
                self.other_chain += 1;
                if self.other_chain_broken.is_none() && !hashes_as_stored(row) {
                    let seq = row.chain_seq.unwrap_or_default();
                    let detail = format!(
                        "audit row {seq} (id {}) of chain {} was changed after it was written",
                        row.id,
                        row.chain_key.unwrap_or_default()
                    );
                    self.other_chain_broken = broken(seq, Some(row.id), "edited", detail).broken_at;
                }
            }
        }
    }

    /// Whether a row of the user's chain came after the head the trail is checked against.
    fn appended_since_the_head(&self, row: &AuditRow) -> bool {
        match (&self.head, row.chain_seq) {
            (Some(Some((last_seq, _))), Some(seq)) => seq > *last_seq,
            _ => false,
        }
    }

    /// What the trail's check found, the user's chain compared with its head as it was when
    /// the trail began (or as it is now, when it had none then).
    pub async fn outcome(self, conn: &mut AsyncPgConnection) -> QueryResult<TrailCheck> {
        let head = match self.head {
            Some(Some(head)) => Some(head),
            _ => chain_head(conn, i64::from(self.user_id)).await?,
        };
        let chain = self.chain.finish(head);
        Ok(TrailCheck {
            valid: chain.valid && self.other_chain_broken.is_none(),
            rows: self.rows,
            chain,
            unchained: self.unchained,
            other_chain: self.other_chain,
            other_chain_broken: self.other_chain_broken,
        })
    }
}

/// A row as stored, with the text of its address and time that its hash covers.
fn exported(row: AuditRow) -> ExportedAuditRow {
    ExportedAuditRow {
        id: row.id,
        user_id: row.user_id,
        actor_id: row.actor_id,
        device_id: row.device_id,
        action: row.action,
        details: row.details,
        ip_address: row.ip_address.map(|ip| ip.to_string()),
        user_agent: row.user_agent,
        success: row.success,
        created_at: format_time(&row.created_at),
        request_id: row.request_id,
        chain_key: row.chain_key,
        chain_seq: row.chain_seq,
        prev_hash: row.prev_hash,
        row_hash: row.row_hash,
    }
}
