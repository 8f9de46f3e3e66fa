//! Queries on the customer's `vottery_devices`, `vottery_sessions` and `vottery_biometrics`:
//! a user's devices and sessions in pages, their biometrics, and ending sessions. Only the
//! columns user-svc may show are declared in [`crate::schema`], so no token, fingerprint or
//! biometric secret is ever read. Every function takes a connection; callers own transactions.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{
    vottery_biometrics as biometrics, vottery_devices as devices, vottery_sessions as sessions,
};

/// One page: its number (from 1) and its size.
#[derive(Debug, Clone, Copy)]
pub struct PageOf {
    pub page: u32,
    pub limit: u32,
}

impl PageOf {
    /// Every row at once, for bounded sets (a user's devices and sessions).
    pub const ALL: PageOf = PageOf {
        page: 1,
        limit: u32::MAX,
    };

    fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// A device as user-svc may show it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices, check_for_backend(diesel::pg::Pg))]
pub struct DeviceRow {
    pub id: i32,
    pub device_type: String,
    pub browser_name: Option<String>,
    pub browser_version: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub ip_address: Option<ipnet::IpNet>,
    pub is_active: Option<bool>,
    pub last_used: Option<NaiveDateTime>,
    pub created_at: Option<NaiveDateTime>,
}

/// A biometric's type and dates, and the device it is enrolled on.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = biometrics, check_for_backend(diesel::pg::Pg))]
pub struct BiometricRow {
    pub device_id: i32,
    pub biometric_type: String,
    pub is_active: Option<bool>,
    pub created_at: Option<NaiveDateTime>,
}

/// The device a session was opened on, as a session shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices, check_for_backend(diesel::pg::Pg))]
pub struct SessionDeviceRow {
    pub id: i32,
    pub device_type: String,
    pub browser_name: Option<String>,
    pub os_name: Option<String>,
}

/// A session as user-svc may show it, with its device.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    pub id: i32,
    pub ip_address: Option<ipnet::IpNet>,
    pub user_agent: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
    pub is_active: Option<bool>,
    #[diesel(embed)]
    pub device: SessionDeviceRow,
}

/// A page of a user's devices, active and most recently used first, with the total.
pub async fn device_page(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    page: PageOf,
) -> QueryResult<(Vec<DeviceRow>, i64)> {
    let of_user = || devices::table.filter(devices::user_id.eq(user_id));
    let total = of_user().count().get_result(conn).await?;
    let rows = of_user()
        .order((
            devices::is_active.desc().nulls_last(),
            devices::last_used.desc().nulls_last(),
            devices::id.desc(),
        ))
        .limit(i64::from(page.limit))
        .offset(page.offset())
        .select(DeviceRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// The biometrics a user enrolled on the given devices, oldest first.
pub async fn biometrics_on(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    device_ids: &[i32],
) -> QueryResult<Vec<BiometricRow>> {
    biometrics::table
        .filter(biometrics::user_id.eq(user_id))
        .filter(biometrics::device_id.eq_any(device_ids))
        .order((
            biometrics::created_at.asc().nulls_last(),
            biometrics::id.asc(),
        ))
        .select(BiometricRow::as_select())
        .load(conn)
        .await
}

/// A page of a user's sessions, active first and then the newest, with the total.
pub async fn session_page(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    page: PageOf,
) -> QueryResult<(Vec<SessionRow>, i64)> {
    let total = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .await?;
    let rows = sessions::table
        .inner_join(devices::table)
        .filter(sessions::user_id.eq(user_id))
        .order((
            sessions::is_active.desc().nulls_last(),
            sessions::created_at.desc().nulls_last(),
            sessions::id.desc(),
        ))
        .limit(i64::from(page.limit))
        .offset(page.offset())
        .select(SessionRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// Ends every active session of a user; how many there were.
pub async fn end_all(conn: &mut AsyncPgConnection, user_id: i32) -> QueryResult<i64> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::is_active.eq(true)),
    )
    .set(sessions::is_active.eq(false))
    .execute(conn)
    .await
    .map(|ended| ended as i64)
}

/// Ends one session of a user: `None` when the user has no such session, otherwise whether it
/// was active (and is now ended). The session stays locked until the transaction ends.
pub async fn end_one(
    conn: &mut AsyncPgConnection,
    user_id: i32,
    session_id: i32,
) -> QueryResult<Option<bool>> {
    let the_session = || {
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::user_id.eq(user_id))
    };
    let found: Option<Option<bool>> = the_session()
        .select(sessions::is_active)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let Some(was_active) = found.map(|active| active == Some(true)) else {
        return Ok(None);
    };
    if was_active {
        diesel::update(the_session())
            .set(sessions::is_active.eq(false))
            .execute(conn)
            .await?;
    }
    Ok(Some(was_active))
}
