//! The body of a user's export, written while it is sent: the bounded part first, then the
//! audit trail a page at a time, then the check of its chain. The trail and its chain's head
//! are read in one read-only `REPEATABLE READ` transaction, so that they agree. A writer task
//! hands the pieces over a channel holding two, so memory holds a few pages however long the
//! trail is.
//!
//! A failure once the answer has started cannot change its status. The body then ends with an
//! error instead of its last piece, and the server drops the connection without the final
//! chunk of its chunked encoding: the client sees a broken transfer, never a short document
//! that looks complete.

use std::io;

use actix_web::web::Bytes;
use diesel_async::AsyncPgConnection;
use futures_util::Stream;
use tokio::sync::mpsc::{Sender, channel};
use vottery_common::export::{ExportHead, ExportedAuditRow, TrailCheck};

use super::export::ExportDocument;
use crate::audit::Trail;
use crate::error::ApiError;

/// A piece of the body, as the writer hands it over.
enum Piece {
    Part(Bytes),
    Last(Bytes),
    Failed,
}

/// Why the writer stopped before the end.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("the client went away")]
    ClientGone,
    #[error(transparent)]
    Failed(#[from] ApiError),
}

impl From<diesel::result::Error> for Stopped {
    fn from(error: diesel::result::Error) -> Self {
        Stopped::Failed(error.into())
    }
}

impl From<serde_json::Error> for Stopped {
    fn from(error: serde_json::Error) -> Self {
        Stopped::Failed(ApiError::Internal(error.into()))
    }
}

/// The body of an export, as a stream that ends in an error when the export does not finish.
pub fn body(document: ExportDocument) -> impl Stream<Item = Result<Bytes, io::Error>> {
    let (sender, receiver) = channel(2);
    actix_web::rt::spawn(write(document, sender));
    futures_util::stream::unfold(Some(receiver), |receiver| async move {
        let mut receiver = receiver?;
        match receiver.recv().await {
            Some(Piece::Part(bytes)) => Some((Ok(bytes), Some(receiver))),
            Some(Piece::Last(bytes)) => Some((Ok(bytes), None)),
            Some(Piece::Failed) | None => Some((
                Err(io::Error::other("the export stopped before its end")),
                None,
            )),
        }
    })
}

/// Writes the whole document, or says why it stopped.
async fn write(document: ExportDocument, sender: Sender<Piece>) {
    let user_id = document.head.user_id;
    match write_document(document, &sender).await {
        Ok(()) => {}
        Err(Stopped::ClientGone) => tracing::info!(user_id, "an export's client went away"),
        Err(Stopped::Failed(error)) => {
            tracing::error!(user_id, error = %error, "an export failed after it started");
            let _ = sender.send(Piece::Failed).await;
        }
    }
}

async fn write_document(document: ExportDocument, sender: &Sender<Piece>) -> Result<(), Stopped> {
    let mut conn = document.pool.get().await.map_err(ApiError::database)?;
    send(sender, Piece::Part(opening(&document.head)?)).await?;
    let trail = Trail::of(document.head.user_id);
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| write_trail(conn, trail, sender).await)
        .await
}

/// The trail's rows, page by page, and the document's end with the chain's check.
async fn write_trail(
    conn: &mut AsyncPgConnection,
    mut trail: Trail,
    sender: &Sender<Piece>,
) -> Result<(), Stopped> {
    let mut first = true;
    loop {
        let rows = trail.next_page(conn).await?;
        if rows.is_empty() {
            break;
        }
        send(sender, Piece::Part(page(&rows, first)?)).await?;
        first = false;
    }
    let check = trail.outcome(conn).await?;
    send(sender, Piece::Last(closing(&check)?)).await
}

async fn send(sender: &Sender<Piece>, piece: Piece) -> Result<(), Stopped> {
    sender.send(piece).await.map_err(|_| Stopped::ClientGone)
}

/// The document up to the first row of its trail: the head's members, then `"audit_trail":[`.
fn opening(head: &ExportHead) -> serde_json::Result<Bytes> {
    let mut text = serde_json::to_vec(head)?;
    text.pop();
    text.extend_from_slice(b",\"audit_trail\":[");
    Ok(text.into())
}

/// A page of rows, each but the trail's very first after a comma.
fn page(rows: &[ExportedAuditRow], first: bool) -> serde_json::Result<Bytes> {
    let mut text = Vec::with_capacity(rows.len() * 512);
    for (index, row) in rows.iter().enumerate() {
        if index > 0 || !first {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, row)?;
    }
    Ok(text.into())
}

/// The end of the trail, the chain's check and the end of the document.
fn closing(check: &TrailCheck) -> serde_json::Result<Bytes> {
    let mut text = b"],\"audit_chain\":".to_vec();
    serde_json::to_writer(&mut text, check)?;
    text.push(b'}');
    Ok(text.into())
}
