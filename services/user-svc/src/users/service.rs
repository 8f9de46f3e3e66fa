//! The use cases behind the user routes. Each one loads the actor and the target fresh from the
//! database (a demotion or suspension applies to the very next request), checks the rules,
//! makes its security-svc calls in batches, and writes the change and its audit record in one
//! transaction. Refused attempts are audited by the caller of these functions.

use chrono::{NaiveDate, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};
use vottery_common::problem::FieldError;
use vottery_common::users::{AuditPage, UserPage, UserView};

use super::actor::{Actor, Target};
use super::db::{self as users_db, Duplicate, Filters, Reservation};
use super::input::{self, Change, ProfileChanges, RoleChanges};
use super::view::{self, Pii, sealed_fields};
use crate::audit::{self, AuditEvent, RequestMeta};
use crate::auth::Principal;
use crate::domain::contact::{Email, Phone};
use crate::domain::roles::AdminRole;
use crate::domain::status::{Status, allowed_moves};
use crate::error::ApiError;
use crate::record::{NewUserRow, OwnedColumns, UserRow, now_micros, record_digest};
use crate::startup::AppState;
use crate::vault::{PiiColumn, PlainField};

/// How often a write is tried when other writes to the same user land first. Each lost attempt
/// means another write committed during it, and one commit spoils at most one attempt of each
/// writer, so up to this many concurrent writers to one user all land.
const WRITE_ATTEMPTS: usize = 16;

/// The request a use case serves.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub principal: &'a Principal,
    pub meta: &'a RequestMeta,
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl Ctx<'_> {
    async fn conn(&self) -> Result<vottery_server::db::DbConn, ApiError> {
        self.state.pool.get().await.map_err(ApiError::database)
    }

    fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// The actor and, when asked for, the target row, in one query.
    async fn load(&self, target_id: Option<i32>) -> Result<(Actor, Option<UserRow>), ApiError> {
        let pair = match (self.principal.user_id(), target_id) {
            (Some(actor), Some(target)) => Some((actor, target)),
            (Some(id), None) | (None, Some(id)) => Some((id, id)),
            (None, None) => None,
        };
        let rows = match pair {
            Some((first, second)) => {
                let mut conn = self.conn().await?;
                users_db::find_pair(&mut conn, first, second).await?
            }
            None => Vec::new(),
        };
        let actor = Actor::resolve(self.principal, &rows)?;
        let target = target_id.and_then(|id| rows.into_iter().find(|row| row.id == id));
        Ok((actor, target))
    }

    /// The actor and, for a user, the reservation of a new user's id, in one query.
    async fn load_reserving(
        &self,
        new: &input::NewUser,
    ) -> Result<(Actor, Option<Reservation>), ApiError> {
        let Some(actor_id) = self.principal.user_id() else {
            return Ok((Actor::resolve(self.principal, &[])?, None));
        };
        let found = {
            let mut conn = self.conn().await?;
            users_db::find_reserving(&mut conn, actor_id, new.email.as_str(), new.phone.as_str())
                .await?
        };
        let (row, reservation) = found.unzip();
        Ok((Actor::resolve(self.principal, row.as_slice())?, reservation))
    }

    /// Records a refused attempt (best effort: the refusal is answered either way).
    pub async fn audit_refusal(
        &self,
        action: &str,
        target_id: Option<i32>,
        fields: Vec<String>,
        error: &ApiError,
    ) {
        let actor_id = self.principal.user_id();
        let label = match self.principal {
            Principal::User(id) => format!("user:{id}"),
            Principal::Service(name) => format!("service:{name}"),
        };
        let reason = format!("{}: {error}", error.slug());
        let event = AuditEvent {
            user_id: target_id,
            actor_id,
            actor_label: &label,
            action,
            changed_fields: fields,
            success: false,
            reason: Some(reason),
            facts: None,
            request: self.meta,
        };
        let result = async {
            let mut conn = self.conn().await?;
            audit::append(&mut conn, &event)
                .await
                .map_err(ApiError::from)
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, action, "could not audit a refused attempt");
        }
    }
}

fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("no user has id {id}"))
}

fn last_manager() -> ApiError {
    ApiError::Conflict {
        detail: "this is the last manager; appoint another manager first".into(),
        errors: vec![FieldError::new(
            "admin_role",
            "the last manager cannot be demoted",
        )],
    }
}

/// A short random pause before retrying a write that lost a race, so that the writers that
/// lost spread out instead of colliding again.
async fn back_off(attempt: usize) {
    use ring::rand::SecureRandom;
    let mut jitter = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut jitter);
    let millis = 2 * attempt as u64 + u64::from(jitter[0] % 8);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

fn duplicate_conflict(duplicate: Duplicate) -> ApiError {
    let field = match duplicate {
        Duplicate::Email => "sngine_email",
        Duplicate::Phone => "sngine_phone",
    };
    ApiError::Conflict {
        detail: format!(
            "another user already has this {}",
            if duplicate == Duplicate::Email {
                "email"
            } else {
                "phone number"
            }
        ),
        errors: vec![FieldError::new(
            field,
            "is already registered to another user",
        )],
    }
}

fn set_text(slot: &mut Option<String>, change: &Change<String>) {
    match change {
        Change::Keep => {}
        Change::Clear => *slot = None,
        Change::Set(value) => *slot = Some(value.clone()),
    }
}

fn set_bool(slot: &mut Option<bool>, change: &Change<bool>) {
    match change {
        Change::Keep => {}
        Change::Clear => *slot = None,
        Change::Set(value) => *slot = Some(*value),
    }
}

/// Applies the plain (not encrypted) profile changes, and lists the encrypted ones.
fn apply_profile(
    owned: &mut OwnedColumns,
    changes: &ProfileChanges,
) -> Vec<(PiiColumn, Option<String>)> {
    set_text(&mut owned.gender, &changes.gender);
    set_text(&mut owned.country, &changes.country);
    set_text(&mut owned.city, &changes.city);
    set_text(&mut owned.timezone, &changes.timezone);
    set_text(&mut owned.bio, &changes.bio);
    set_text(&mut owned.avatar_url, &changes.avatar_url);
    set_text(&mut owned.language, &changes.language);
    set_bool(
        &mut owned.notifications_enabled,
        &changes.notifications_enabled,
    );
    let mut pii = Vec::new();
    let mut note = |column, change: Change<String>| match change {
        Change::Keep => {}
        Change::Clear => pii.push((column, None)),
        Change::Set(value) => pii.push((column, Some(value))),
    };
    note(PiiColumn::FirstName, changes.first_name.clone());
    note(PiiColumn::LastName, changes.last_name.clone());
    let dob = match &changes.date_of_birth {
        Change::Keep => Change::Keep,
        Change::Clear => Change::Clear,
        Change::Set(date) => Change::Set(date.format("%Y-%m-%d").to_string()),
    };
    note(PiiColumn::DateOfBirth, dob);
    pii
}

pub(crate) fn set_column(owned: &mut OwnedColumns, column: PiiColumn, value: Option<String>) {
    match column {
        PiiColumn::Email => owned.sngine_email = value.unwrap_or_default(),
        PiiColumn::Phone => owned.sngine_phone = value.unwrap_or_default(),
        PiiColumn::FirstName => owned.first_name = value,
        PiiColumn::LastName => owned.last_name = value,
        PiiColumn::DateOfBirth => owned.date_of_birth = value,
    }
}

/// A blind-index input: the normalised value, or (for legacy rows that do not parse) the
/// trimmed lower-cased text.
pub(crate) fn index_input(column: PiiColumn, plain: &str) -> String {
    match column {
        PiiColumn::Email => Email::parse(plain)
            .map(|email| email.as_str().to_owned())
            .unwrap_or_else(|_| plain.trim().to_lowercase()),
        _ => Phone::parse(plain)
            .map(|phone| phone.as_str().to_owned())
            .unwrap_or_else(|_| plain.trim().to_owned()),
    }
}

/// A change to a stored user, planned by a use case.
struct Write {
    action: &'static str,
    changed_fields: Vec<String>,
    facts: Option<Value>,
    /// New plaintext of encrypted columns (`None` clears).
    pii: Vec<(PiiColumn, Option<String>)>,
    /// The target's owned columns with the plain changes applied.
    owned: OwnedColumns,
    /// The write takes an active manager away (a demotion or suspension): another active
    /// manager must remain, checked under a lock in the write's own transaction.
    removes_a_manager: bool,
}

/// Encrypts, signs and stores a planned write if the row is still at the version it was read
/// at; `Ok(None)` when another write landed first. The current signature is checked before
/// anything is re-signed, so a record changed behind the service's back is never blessed.
async fn persist(
    ctx: &Ctx<'_>,
    actor: &Actor,
    target: &UserRow,
    write: Write,
) -> Result<Option<(UserRow, Pii)>, ApiError> {
    let vault = &ctx.state.vault;
    let legacy = !target.owned.pii_encrypted;
    let changed: Vec<PiiColumn> = write.pii.iter().map(|(column, _)| *column).collect();

    // Plaintext of the record after the write, and what must be encrypted or indexed.
    let mut plain = Pii::default();
    let mut to_encrypt: Vec<(PiiColumn, String)> = Vec::new();
    for (column, value) in &write.pii {
        if let Some(value) = value {
            to_encrypt.push((*column, value.clone()));
        }
        set_pii(&mut plain, *column, value.clone());
    }
    let unchanged: Vec<_> = if legacy {
        for (column, value) in legacy_values(target) {
            if !changed.contains(&column)
                && let Some(value) = value
            {
                to_encrypt.push((column, value.clone()));
                set_pii(&mut plain, column, Some(value));
            }
        }
        Vec::new()
    } else {
        sealed_fields(target)
            .into_iter()
            .filter(|field| !changed.contains(&field.column))
            .collect()
    };
    let index_columns: Vec<(PiiColumn, String)> = if legacy {
        vec![
            (
                PiiColumn::Email,
                index_input(PiiColumn::Email, &target.owned.sngine_email),
            ),
            (
                PiiColumn::Phone,
                index_input(PiiColumn::Phone, &target.owned.sngine_phone),
            ),
        ]
    } else {
        Vec::new()
    };
    let plain_fields: Vec<PlainField<'_>> = to_encrypt
        .iter()
        .map(|(column, value)| PlainField {
            user_id: target.id,
            column: *column,
            value,
        })
        .collect();
    let index_inputs: Vec<&str> = index_columns
        .iter()
        .map(|(_, value)| value.as_str())
        .collect();
    let current_signature: Vec<([u8; 32], &str)> = match target.owned.record_signature.as_deref() {
        Some(signature) if !legacy => vec![(target.digest(), signature)],
        _ => Vec::new(),
    };
    let (ciphertexts, decrypted, indexes, verified) = tokio::try_join!(
        vault.encrypt(ctx.request_id(), &plain_fields),
        vault.decrypt(ctx.request_id(), &unchanged),
        vault.blind_indexes(ctx.request_id(), &index_inputs),
        vault.verify(ctx.request_id(), &current_signature),
    )?;
    if !legacy && (verified.first() != Some(&true) || decrypted.iter().any(Result::is_err)) {
        tracing::warn!(
            user_id = target.id,
            "refusing to re-sign a record that fails its integrity check"
        );
        return Err(ApiError::Conflict {
            detail: "this user's stored record fails its integrity check (it was changed outside user-svc); it is not re-signed until restored".into(),
            errors: Vec::new(),
        });
    }
    for (field, value) in unchanged.iter().zip(decrypted) {
        set_pii(&mut plain, field.column, value.ok());
    }

    let mut owned = write.owned;
    for ((column, _), ciphertext) in to_encrypt.iter().zip(ciphertexts) {
        set_column(&mut owned, *column, Some(ciphertext));
    }
    for (column, _) in write.pii.iter().filter(|(_, value)| value.is_none()) {
        set_column(&mut owned, *column, None);
    }
    for ((column, _), index) in index_columns.iter().zip(indexes) {
        match column {
            PiiColumn::Email => owned.email_bidx = Some(index),
            _ => owned.phone_bidx = Some(index),
        }
    }
    owned.pii_encrypted = true;
    owned.row_version = target.owned.row_version + 1;
    owned.record_signature = None;
    let digest = record_digest(target.id, &target.created_at, &owned);
    owned.record_signature = vault
        .sign(ctx.request_id(), &[digest])
        .await?
        .into_iter()
        .next();

    let event = AuditEvent {
        user_id: Some(target.id),
        actor_id: actor.user_id(),
        actor_label: &actor.label(),
        action: write.action,
        changed_fields: write.changed_fields.clone(),
        success: true,
        reason: None,
        facts: write.facts.clone(),
        request: ctx.meta,
    };
    let mut conn = ctx.conn().await?;
    let expected = target.owned.row_version;
    let update = async |conn: &mut AsyncPgConnection| {
        users_db::update_if_version(conn, target.id, expected, &owned, &event)
            .await
            .map_err(|error| match users_db::duplicate_of(&error) {
                Some(duplicate) => duplicate_conflict(duplicate),
                None => ApiError::from(error),
            })
    };
    // One statement, so atomic on its own; a write that takes a manager away also checks,
    // under the managers lock in the same transaction, that another one remains.
    let stored = if write.removes_a_manager {
        conn.transaction::<_, ApiError, _>(async |conn| {
            users_db::lock_managers(conn).await?;
            if users_db::other_active_managers(conn, target.id).await? == 0 {
                return Err(last_manager());
            }
            update(conn).await
        })
        .await?
    } else {
        update(&mut conn).await?
    };
    if stored.is_some() {
        ctx.state.totals.changed();
    }
    Ok(stored.map(|row| (row, plain)))
}

fn set_pii(pii: &mut Pii, column: PiiColumn, value: Option<String>) {
    match column {
        PiiColumn::Email => pii.email = value,
        PiiColumn::Phone => pii.phone = value,
        PiiColumn::FirstName => pii.first_name = value,
        PiiColumn::LastName => pii.last_name = value,
        PiiColumn::DateOfBirth => pii.date_of_birth = value,
    }
}

pub(crate) fn legacy_values(row: &UserRow) -> [(PiiColumn, Option<String>); 5] {
    [
        (PiiColumn::Email, Some(row.owned.sngine_email.clone())),
        (PiiColumn::Phone, Some(row.owned.sngine_phone.clone())),
        (PiiColumn::FirstName, row.owned.first_name.clone()),
        (PiiColumn::LastName, row.owned.last_name.clone()),
        (PiiColumn::DateOfBirth, row.owned.date_of_birth.clone()),
    ]
}

/// Runs a write with optimistic concurrency: the plan is made against the current row, and
/// re-made if another write lands first. `If-Match` turns a moved version into 412.
async fn write_user(
    ctx: &Ctx<'_>,
    target_id: i32,
    if_match: Option<i64>,
    plan: impl Fn(&Actor, &UserRow) -> Result<Write, ApiError>,
) -> Result<UserView, ApiError> {
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let (actor, target) = ctx.load(Some(target_id)).await?;
        let target = target.ok_or_else(|| not_found(target_id))?;
        if let Some(expected) = if_match
            && expected != target.owned.row_version
        {
            return Err(ApiError::PreconditionFailed {
                current: target.owned.row_version,
            });
        }
        let write = plan(&actor, &target)?;
        if let Some((row, plain)) = persist(ctx, &actor, &target, write).await? {
            return Ok(view::build(&row, plain, true, false, Vec::new(), today()));
        }
        if if_match.is_some() {
            let (_, current) = ctx.load(Some(target_id)).await?;
            return Err(ApiError::PreconditionFailed {
                current: current.map_or(0, |row| row.owned.row_version),
            });
        }
    }
    Err(ApiError::Contention)
}

/// `POST /api/users`.
pub async fn create(ctx: &Ctx<'_>, body: Value) -> Result<UserView, ApiError> {
    let new = match input::new_user(body, today()) {
        Ok(new) => new,
        Err(invalid) => {
            // Whether the caller may create at all is answered before what it sent.
            let (actor, _) = ctx.load(None).await?;
            actor.may_create()?;
            return Err(invalid);
        }
    };
    let (actor, reservation) = ctx.load_reserving(&new).await?;
    actor.may_create()?;
    insert_user(ctx, &actor, new, Status::Pending, None, reservation).await
}

/// Creates the first manager of an installation (the `bootstrap-manager` command): refused
/// once any manager exists. The record is active, encrypted, signed and audited like any other.
pub async fn bootstrap_manager(ctx: &Ctx<'_>, body: Value) -> Result<UserView, ApiError> {
    let new = input::new_user(body, today())?;
    {
        let mut conn = ctx.conn().await?;
        if users_db::other_active_managers(&mut conn, 0).await? > 0 {
            return Err(ApiError::Conflict {
                detail: "a manager already exists; further managers are appointed through PUT /api/users/:id/role".into(),
                errors: Vec::new(),
            });
        }
    }
    let actor = Actor::Service("bootstrap".into());
    insert_user(
        ctx,
        &actor,
        new,
        Status::Active,
        Some(AdminRole::Manager),
        None,
    )
    .await
}

/// Encrypts, indexes, signs and inserts a new user with its audit record; reserves its id
/// unless that was done with the actor's lookup.
async fn insert_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    new: input::NewUser,
    status: Status,
    admin_role: Option<AdminRole>,
    reservation: Option<Reservation>,
) -> Result<UserView, ApiError> {
    let vault = &ctx.state.vault;
    let reservation = match reservation {
        Some(reservation) => reservation,
        None => {
            let mut conn = ctx.conn().await?;
            users_db::reserve_user_id(&mut conn, new.email.as_str(), new.phone.as_str()).await?
        }
    };
    // Rows written before this service hold plaintext and no blind index yet.
    if let Some(duplicate) = reservation.legacy_duplicate {
        return Err(duplicate_conflict(duplicate));
    }
    let id = reservation.id;
    let mut owned = OwnedColumns {
        sngine_email: String::new(),
        sngine_phone: String::new(),
        email_bidx: None,
        phone_bidx: None,
        status: Some(status.as_str().into()),
        user_type: Some(new.user_type.as_str().into()),
        admin_role: admin_role.map(|role| role.as_str().to_owned()),
        subscription_status: Some(new.subscription_status.as_str().into()),
        subscription_plan: None,
        subscription_expires_at: None,
        first_name: None,
        last_name: None,
        date_of_birth: None,
        gender: None,
        country: None,
        city: None,
        timezone: Some("UTC".into()),
        bio: None,
        avatar_url: None,
        language: Some("en".into()),
        notifications_enabled: Some(true),
        pii_encrypted: true,
        row_version: 1,
        record_signature: None,
    };
    let mut pii = apply_profile(&mut owned, &new.profile);
    pii.push((PiiColumn::Email, Some(new.email.as_str().to_owned())));
    pii.push((PiiColumn::Phone, Some(new.phone.as_str().to_owned())));
    let plain_fields: Vec<PlainField<'_>> = pii
        .iter()
        .filter_map(|(column, value)| {
            value.as_deref().map(|value| PlainField {
                user_id: id,
                column: *column,
                value,
            })
        })
        .collect();
    let index_inputs = [new.email.as_str(), new.phone.as_str()];
    let (ciphertexts, indexes) = tokio::try_join!(
        vault.encrypt(ctx.request_id(), &plain_fields),
        vault.blind_indexes(ctx.request_id(), &index_inputs),
    )?;
    let mut plain = Pii::default();
    for (field, ciphertext) in plain_fields.iter().zip(ciphertexts) {
        set_pii(&mut plain, field.column, Some(field.value.to_owned()));
        set_column(&mut owned, field.column, Some(ciphertext));
    }
    let mut indexes = indexes.into_iter();
    owned.email_bidx = indexes.next();
    owned.phone_bidx = indexes.next();
    let created_at = Some(now_micros());
    let digest = record_digest(id, &created_at, &owned);
    owned.record_signature = vault
        .sign(ctx.request_id(), &[digest])
        .await?
        .into_iter()
        .next();

    let mut changed_fields = vec![
        "sngine_email".to_owned(),
        "sngine_phone".to_owned(),
        "user_type".to_owned(),
        "subscription_status".to_owned(),
    ];
    changed_fields.extend(new.profile.changed_fields());
    let label = actor.label();
    let event = AuditEvent {
        user_id: Some(id),
        actor_id: actor.user_id(),
        actor_label: &label,
        action: "user.create",
        changed_fields,
        success: true,
        reason: None,
        facts: None,
        request: ctx.meta,
    };
    let row = NewUserRow {
        id,
        created_at,
        updated_at: created_at,
        owned,
    };
    let mut conn = ctx.conn().await?;
    let stored = users_db::insert(&mut conn, &row, &event)
        .await
        .map_err(|error| match users_db::duplicate_of(&error) {
            Some(duplicate) => duplicate_conflict(duplicate),
            None => ApiError::from(error),
        })?;
    ctx.state.totals.changed();
    Ok(view::build(
        &stored,
        plain,
        true,
        false,
        Vec::new(),
        today(),
    ))
}

/// `GET /api/users/:id` and `/api/users/me`.
pub async fn get(ctx: &Ctx<'_>, id: i32) -> Result<UserView, ApiError> {
    let (actor, target) = ctx.load(Some(id)).await?;
    let masked = actor.may_view(id)?;
    let target = target.ok_or_else(|| not_found(id))?;
    let mut views = view::render(
        &ctx.state.vault,
        ctx.request_id(),
        std::slice::from_ref(&target),
        masked,
        today(),
    )
    .await?;
    views
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("rendering returned no view")))
}

/// `GET /api/users`.
pub async fn list(ctx: &Ctx<'_>, query: &str) -> Result<UserPage, ApiError> {
    let (actor, _) = ctx.load(None).await?;
    let masked = actor.may_list()?;
    let query = input::list_query(query, true)?;
    let email_bidx = match &query.email {
        Some(email) => ctx
            .state
            .vault
            .blind_indexes(ctx.request_id(), &[email.as_str()])
            .await?
            .into_iter()
            .next(),
        None => None,
    };
    let filters = Filters {
        status: query.status.map(|status| status.as_str().to_owned()),
        user_type: query.user_type.map(|kind| kind.as_str().to_owned()),
        admin_role: query.admin_role.map(|role| role.as_str().to_owned()),
        subscription_status: query
            .subscription_status
            .map(|status| status.as_str().to_owned()),
        country: query.country.clone(),
        email_bidx,
    };
    let (rows, total) = {
        let mut conn = ctx.conn().await?;
        let total = ctx
            .state
            .totals
            .get_or_count(&filters, users_db::count(&mut conn, &filters))
            .await?;
        let rows = users_db::page(&mut conn, &filters, query.page, query.limit).await?;
        (rows, total)
    };
    let data = view::render(&ctx.state.vault, ctx.request_id(), &rows, masked, today()).await?;
    Ok(UserPage {
        data,
        page: query.page,
        limit: query.limit,
        total,
    })
}

/// `PUT /api/users/:id/profile`.
pub async fn update_profile(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
) -> Result<UserView, ApiError> {
    let changes = input::profile_update(body, today())?;
    write_user(ctx, id, if_match, |actor, target| {
        actor.may_edit_profile(&Target::of(target))?;
        let mut owned = target.owned.clone();
        let pii = apply_profile(&mut owned, &changes);
        Ok(Write {
            action: "user.update_profile",
            changed_fields: changes.changed_fields(),
            facts: None,
            pii,
            owned,
            removes_a_manager: false,
        })
    })
    .await
}

/// `PUT /api/users/:id/status`.
pub async fn update_status(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
) -> Result<UserView, ApiError> {
    let wanted = input::status_update(body)?;
    write_user(ctx, id, if_match, |actor, target| {
        let target_info = Target::of(target);
        let changer = actor.status_changer(&target_info)?;
        let allowed = allowed_moves(target_info.status, changer);
        if !allowed.contains(&wanted) {
            return Err(ApiError::InvalidTransition {
                from: target_info.status.to_string(),
                to: wanted.to_string(),
                allowed: allowed.iter().map(ToString::to_string).collect(),
            });
        }
        let mut owned = target.owned.clone();
        owned.status = Some(wanted.as_str().to_owned());
        Ok(Write {
            action: "user.update_status",
            changed_fields: vec!["status".into()],
            facts: Some(json!({"from": target_info.status, "to": wanted})),
            pii: Vec::new(),
            owned,
            removes_a_manager: target_info.role == Some(AdminRole::Manager)
                && wanted == Status::Suspended,
        })
    })
    .await
}

/// `PUT /api/users/:id/role`.
pub async fn update_role(
    ctx: &Ctx<'_>,
    id: i32,
    body: Value,
    if_match: Option<i64>,
) -> Result<UserView, ApiError> {
    let changes: RoleChanges = input::role_update(body)?;
    let granted = match &changes.admin_role {
        Change::Keep => None,
        Change::Clear => Some(None),
        Change::Set(role) => Some(Some(*role)),
    };
    let demotes_a_manager = |target: &Target| {
        target.role == Some(AdminRole::Manager)
            && matches!(granted, Some(role) if role != Some(AdminRole::Manager))
    };
    write_user(ctx, id, if_match, |actor, target| {
        let info = Target::of(target);
        actor.may_change_role(&info, granted)?;
        let mut owned = target.owned.clone();
        if let Change::Set(kind) = &changes.user_type {
            owned.user_type = Some(kind.as_str().into());
        }
        if let Some(role) = granted {
            owned.admin_role = role.map(|role| role.as_str().to_owned());
        }
        if let Change::Set(status) = &changes.subscription_status {
            owned.subscription_status = Some(status.as_str().into());
        }
        set_text(&mut owned.subscription_plan, &changes.subscription_plan);
        match &changes.subscription_expires_at {
            Change::Keep => {}
            Change::Clear => owned.subscription_expires_at = None,
            Change::Set(at) => owned.subscription_expires_at = Some(*at),
        }
        let facts = granted.map(|role| {
            json!({"admin_role": {"from": target.owned.admin_role, "to": role.map(|role| role.as_str())}})
        });
        Ok(Write {
            action: "user.update_role",
            changed_fields: changes.changed_fields(),
            facts,
            pii: Vec::new(),
            owned,
            removes_a_manager: demotes_a_manager(&info),
        })
    })
    .await
}

/// `DELETE /api/users/:id`.
pub async fn delete(ctx: &Ctx<'_>, id: i32, if_match: Option<i64>) -> Result<(), ApiError> {
    let (actor, target) = ctx.load(Some(id)).await?;
    let target = target.ok_or_else(|| not_found(id))?;
    let info = Target::of(&target);
    actor.may_delete(&info)?;
    if let Some(expected) = if_match
        && expected != target.owned.row_version
    {
        return Err(ApiError::PreconditionFailed {
            current: target.owned.row_version,
        });
    }
    let label = actor.label();
    let event = AuditEvent {
        user_id: Some(id),
        actor_id: actor.user_id(),
        actor_label: &label,
        action: "user.delete",
        changed_fields: Vec::new(),
        success: true,
        reason: None,
        facts: info.role.map(|role| json!({"admin_role": role})),
        request: ctx.meta,
    };
    let mut conn = ctx.conn().await?;
    let version = target.owned.row_version;
    let is_manager = info.role == Some(AdminRole::Manager);
    conn.transaction::<_, ApiError, _>(async |conn| {
        if is_manager {
            users_db::lock_managers(conn).await?;
        }
        if is_manager && users_db::other_active_managers(conn, id).await? == 0 {
            return Err(ApiError::Conflict {
                detail: "the last manager cannot be deleted".into(),
                errors: Vec::new(),
            });
        }
        if !users_db::delete_if_version(conn, id, version).await? {
            return Err(ApiError::PreconditionFailed {
                current: version + 1,
            });
        }
        audit::append(conn, &event).await?;
        Ok(())
    })
    .await?;
    ctx.state.totals.changed();
    Ok(())
}

/// `GET /api/users/:id/audit`.
pub async fn audit_trail(ctx: &Ctx<'_>, id: i32, query: &str) -> Result<AuditPage, ApiError> {
    let (actor, _) = ctx.load(None).await?;
    actor.may_read_audit()?;
    let query = input::list_query(query, false)?;
    let mut conn = ctx.conn().await?;
    let (data, total) = audit::page(&mut conn, id, query.page, query.limit).await?;
    let chain = audit::verify_chain(&mut conn, id).await?;
    if !chain.valid {
        tracing::warn!(user_id = id, broken_at = ?chain.broken_at, "audit chain is broken");
    }
    // Nothing recorded and nothing missing: 404 unless the user exists. A chain whose rows were
    // all deleted is reported, not hidden behind a 404.
    if total == 0
        && chain.checked == 0
        && chain.valid
        && users_db::find(&mut conn, id).await?.is_none()
    {
        return Err(not_found(id));
    }
    Ok(AuditPage {
        data,
        page: query.page,
        limit: query.limit,
        total,
        chain,
    })
}
