//! Checking a user's hash chain: its rows walked in order, each against the position and hash
//! it must follow, and where the walk ends compared with the chain's head, so that an edited,
//! deleted or truncated row is found and located.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use vottery_common::users::{ChainBreak, ChainCheck};

use super::{AuditRow, GENESIS, chain_hash};
use crate::schema::{vottery_audit_chain_heads as heads, vottery_audit_logs as logs};

/// Where a chain's head says it ends: its last position and that row's hash.
pub(super) type ChainHead = (i64, String);

/// Re-computes a user's chain and reports the first place it breaks. The rows and the head are
/// read in one snapshot, so a row appended meanwhile is neither half-seen nor taken for a
/// missing one.
pub async fn verify_chain(conn: &mut AsyncPgConnection, user_id: i32) -> QueryResult<ChainCheck> {
    let chain_key = i64::from(user_id);
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| {
            let rows: Vec<AuditRow> = logs::table
                .filter(logs::chain_key.eq(chain_key))
                .order(logs::chain_seq.asc())
                .select(AuditRow::as_select())
                .load(conn)
                .await?;
            let head = chain_head(conn, chain_key).await?;
            let mut walk = ChainWalk::default();
            rows.iter().for_each(|row| walk.step(row));
            Ok(walk.finish(head))
        })
        .await
}

/// The head of a chain, when the chain has one.
pub(super) async fn chain_head(
    conn: &mut AsyncPgConnection,
    chain_key: i64,
) -> QueryResult<Option<ChainHead>> {
    heads::table
        .find(chain_key)
        .select((heads::last_seq, heads::last_hash))
        .first(conn)
        .await
        .optional()
}

/// A walk along one chain, a row at a time in chain order; it keeps the first break it finds.
pub(super) struct ChainWalk {
    expected_seq: i64,
    prev: String,
    last_id: Option<i32>,
    broken: Option<ChainCheck>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev: GENESIS.to_owned(),
            last_id: None,
            broken: None,
        }
    }
}

impl ChainWalk {
    /// Takes the chain's next row; once the chain is broken, the rows after are passed over.
    pub(super) fn step(&mut self, row: &AuditRow) {
        if self.broken.is_some() {
            return;
        }
        match check_link(row, self.expected_seq, &self.prev) {
            Err(broken) => self.broken = Some(broken),
            Ok(()) => {
                self.prev = row.row_hash.clone().unwrap_or_default();
                self.expected_seq += 1;
                self.last_id = Some(row.id);
            }
        }
    }

    /// The outcome, once the walk's end is compared with the chain's head.
    pub(super) fn finish(self, head: Option<ChainHead>) -> ChainCheck {
        if let Some(broken) = self.broken {
            return broken;
        }
        let expected_seq = self.expected_seq;
        if let Some((last_seq, last_hash)) = head {
            if last_seq >= expected_seq {
                return broken(
                    expected_seq,
                    None,
                    "truncated",
                    format!("audit rows {expected_seq} to {last_seq} of this chain are missing"),
                );
            }
            if last_hash != self.prev {
                return broken(
                    expected_seq - 1,
                    self.last_id,
                    "edited",
                    "the last audit row was changed after it was written".into(),
                );
            }
        }
        ChainCheck {
            valid: true,
            checked: expected_seq - 1,
            broken_at: None,
        }
    }
}

/// Checks that a row stands at `expected_seq` and follows the row hashed `prev`, unchanged.
fn check_link(row: &AuditRow, expected_seq: i64, prev: &str) -> Result<(), ChainCheck> {
    let seq = row.chain_seq.unwrap_or_default();
    if seq != expected_seq {
        let detail = if seq > expected_seq {
            format!(
                "audit rows {expected_seq} to {} of this chain are missing",
                seq - 1
            )
        } else {
            format!("audit row {seq} appears out of order")
        };
        return Err(broken(expected_seq, None, "missing", detail));
    }
    if row.prev_hash.as_deref() != Some(prev) {
        return Err(broken(
            seq,
            Some(row.id),
            "edited",
            format!(
                "audit row {seq} (id {}) does not follow the row before it",
                row.id
            ),
        ));
    }
    if !hashes_as_stored(row) {
        return Err(broken(
            seq,
            Some(row.id),
            "edited",
            format!(
                "audit row {seq} (id {}) was changed after it was written",
                row.id
            ),
        ));
    }
    Ok(())
}

/// Whether a row's own hash recomputes from its stored `prev_hash` and content.
pub(super) fn hashes_as_stored(row: &AuditRow) -> bool {
    let prev = row.prev_hash.as_deref().unwrap_or_default();
    row.row_hash.as_deref() == Some(chain_hash(prev, &row.content()).as_str())
}

/// A chain found broken at `chain_seq`, every row before it checked.
pub(super) fn broken(
    chain_seq: i64,
    audit_id: Option<i32>,
    kind: &str,
    detail: String,
) -> ChainCheck {
    ChainCheck {
        valid: false,
        checked: chain_seq - 1,
        broken_at: Some(ChainBreak {
            chain_seq,
            audit_id,
            kind: kind.into(),
            detail,
        }),
    }
}
