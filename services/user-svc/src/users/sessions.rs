//! Reading a user's devices (with the biometrics enrolled on them) and sessions, as the
//! auth- and biometric-services recorded them. What is shown is what the schema declares:
//! never a token, a device fingerprint or a biometric's hash, public key or credential id.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use vottery_common::export::ExportedBiometric;
use vottery_common::sessions::{
    BiometricView, DevicePage, DeviceView, SessionDevice, SessionPage, SessionView,
};

use super::actor::Target;
use super::context::Ctx;
use super::db::sessions::{self as sessions_db, BiometricRow, DeviceRow, PageOf, SessionRow};
use super::input;
use crate::error::ApiError;

/// `GET /api/users/:id/devices`.
pub async fn devices(ctx: &Ctx<'_>, id: i32, query: &str) -> Result<DevicePage, ApiError> {
    let page = allowed_page(ctx, id, query).await?;
    let mut conn = ctx.conn().await?;
    let (data, _, total) = device_views(&mut conn, id, page).await?;
    Ok(DevicePage {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}

/// A page of a user's devices as shown, the biometrics enrolled on them, and the total.
async fn device_views(
    conn: &mut AsyncPgConnection,
    id: i32,
    page: PageOf,
) -> QueryResult<(Vec<DeviceView>, Vec<BiometricRow>, i64)> {
    let (rows, total) = sessions_db::device_page(conn, id, page).await?;
    let device_ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
    let biometrics = sessions_db::biometrics_on(conn, id, &device_ids).await?;
    let views = rows
        .into_iter()
        .map(|row| device_view(row, &biometrics))
        .collect();
    Ok((views, biometrics, total))
}

/// Every device, session and biometric of a user, as an export holds them.
pub(super) async fn everything_recorded(
    conn: &mut AsyncPgConnection,
    id: i32,
) -> QueryResult<(Vec<DeviceView>, Vec<SessionView>, Vec<ExportedBiometric>)> {
    let (devices, biometrics, _) = device_views(conn, id, PageOf::ALL).await?;
    let (sessions, _) = sessions_db::session_page(conn, id, PageOf::ALL).await?;
    Ok((
        devices,
        sessions.into_iter().map(session_view).collect(),
        biometrics.iter().map(exported_biometric).collect(),
    ))
}

/// `GET /api/users/:id/sessions`.
pub async fn sessions(ctx: &Ctx<'_>, id: i32, query: &str) -> Result<SessionPage, ApiError> {
    let page = allowed_page(ctx, id, query).await?;
    let mut conn = ctx.conn().await?;
    let (rows, total) = sessions_db::session_page(&mut conn, id, page).await?;
    Ok(SessionPage {
        data: rows.into_iter().map(session_view).collect(),
        page: page.page,
        limit: page.limit,
        total,
    })
}

/// The page asked for, once the user is found (404) and the caller may see their devices and
/// sessions (403); the query is paged like the users list (422 naming each bad parameter).
async fn allowed_page(ctx: &Ctx<'_>, id: i32, query: &str) -> Result<PageOf, ApiError> {
    let (actor, target) = ctx.load_existing(id).await?;
    actor.may_see_sessions(&Target::of(&target))?;
    let query = input::list_query(query, false)?;
    Ok(PageOf {
        page: query.page,
        limit: query.limit,
    })
}

fn device_view(row: DeviceRow, biometrics: &[BiometricRow]) -> DeviceView {
    DeviceView {
        id: row.id,
        device_type: row.device_type,
        browser_name: row.browser_name,
        browser_version: row.browser_version,
        os_name: row.os_name,
        os_version: row.os_version,
        ip_address: row.ip_address.map(|ip| ip.addr().to_string()),
        is_active: row.is_active == Some(true),
        last_used: utc(row.last_used),
        created_at: utc(row.created_at),
        biometrics: biometrics
            .iter()
            .filter(|biometric| biometric.device_id == row.id)
            .map(biometric_view)
            .collect(),
    }
}

fn biometric_view(row: &BiometricRow) -> BiometricView {
    BiometricView {
        biometric_type: row.biometric_type.clone(),
        is_active: row.is_active == Some(true),
        created_at: utc(row.created_at),
    }
}

fn exported_biometric(row: &BiometricRow) -> ExportedBiometric {
    ExportedBiometric {
        biometric_type: row.biometric_type.clone(),
        device_id: row.device_id,
        is_active: row.is_active == Some(true),
        created_at: utc(row.created_at),
    }
}

fn session_view(row: SessionRow) -> SessionView {
    SessionView {
        id: row.id,
        device: SessionDevice {
            id: row.device.id,
            device_type: row.device.device_type,
            browser_name: row.device.browser_name,
            os_name: row.device.os_name,
        },
        ip_address: row.ip_address.map(|ip| ip.addr().to_string()),
        user_agent: row.user_agent,
        created_at: utc(row.created_at),
        expires_at: row.expires_at.and_utc(),
        is_active: row.is_active == Some(true),
    }
}

/// A stored timestamp (UTC, without zone) as UTC.
fn utc(at: Option<NaiveDateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    at.map(|at| at.and_utc())
}
