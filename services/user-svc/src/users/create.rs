//! Creating users: `POST /api/users`, and the first manager of an installation
//! (`bootstrap-manager`). A new record is encrypted, indexed, signed and stored with its audit
//! record, under an id reserved first because its ciphertexts are bound to it.

use serde_json::Value;
use vottery_common::events::UserEventType;
use vottery_common::users::UserView;

use super::actor::{Actor, Contacts};
use super::context::{Ctx, today};
use super::db::{self as users_db, Reservation};
use super::events::{self, Outcome};
use super::input::{self, NewUser};
use super::pii::{Pii, set_column};
use super::update::{apply_profile, profile_pii};
use super::view::{self, Integrity};
use super::write::{duplicate_conflict, sign_record, stored_or_conflict};
use crate::audit::AuditEvent;
use crate::domain::roles::AdminRole;
use crate::domain::status::Status;
use crate::error::ApiError;
use crate::idempotency::Completion;
use crate::record::{NewUserRow, OwnedColumns, UserRow, now_micros};
use crate::stored::Stored;
use crate::vault::{PiiColumn, PlainField};

/// `POST /api/users`; with `answer`, the idempotent request's answer is stored with the user.
pub async fn create(
    ctx: &Ctx<'_>,
    body: Value,
    answer: Option<&Completion>,
) -> Result<UserView, ApiError> {
    let new = match input::new_user(body, today()) {
        Ok(new) => new,
        Err(invalid) => {
            // Whether the caller may create at all is answered before what it sent.
            let (actor, _) = ctx.load(None).await?;
            actor.may_create()?;
            return Err(invalid);
        }
    };
    let (actor, reservation) = ctx.load_reserving(&new, answer).await?;
    actor.may_create()?;
    let standing = Standing {
        status: Status::Pending,
        admin_role: None,
    };
    insert_user(ctx, &actor, new, standing, reservation, answer).await
}

/// Creates the first manager of an installation (the `bootstrap-manager` command): refused
/// once any manager exists. The record is active, encrypted, signed and audited like any other.
pub async fn bootstrap_manager(ctx: &Ctx<'_>, body: Value) -> Result<UserView, ApiError> {
    let new = input::new_user(body, today())?;
    {
        let mut conn = ctx.conn().await?;
        if users_db::any_active_manager(&mut conn).await? {
            return Err(ApiError::Conflict {
                detail: "a manager already exists; further managers are appointed through PUT /api/users/:id/role".into(),
                errors: Vec::new(),
            });
        }
    }
    let actor = Actor::Service("bootstrap".into());
    let standing = Standing {
        status: Status::Active,
        admin_role: Some(AdminRole::Manager),
    };
    insert_user(ctx, &actor, new, standing, None, None).await
}

/// The status and admin role a new user starts with.
struct Standing {
    status: Status,
    admin_role: Option<AdminRole>,
}

/// Encrypts, indexes, signs and inserts a new user with its audit record; reserves its id
/// unless that was done with the actor's lookup.
async fn insert_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    new: NewUser,
    standing: Standing,
    reservation: Option<Reservation>,
    answer: Option<&Completion>,
) -> Result<UserView, ApiError> {
    let id = reserve(ctx, &new, reservation, answer).await?;
    let mut owned = new_columns(&new, standing);
    let plain = seal_new(ctx, id, &new, &mut owned).await?;
    let created_at = Some(now_micros());
    sign_record(ctx, id, &created_at, &mut owned).await?;
    let row = NewUserRow {
        id,
        created_at,
        updated_at: created_at,
        owned,
    };
    let stored = store_new(ctx, actor, &new, &row, answer).await?;
    ctx.state.totals.changed();
    Ok(view::build(
        &stored,
        plain,
        Integrity::Intact,
        Contacts::Shown,
        today(),
    ))
}

/// The new user's id: reserved now (with the idempotent request's claim) unless the actor's
/// lookup did; 409 when a row written before this service (plaintext, so not covered by the
/// blind indexes) has its contacts.
async fn reserve(
    ctx: &Ctx<'_>,
    new: &NewUser,
    reservation: Option<Reservation>,
    answer: Option<&Completion>,
) -> Result<i32, ApiError> {
    let reservation = match reservation {
        Some(reservation) => reservation,
        None => {
            let mut conn = ctx.conn().await?;
            let claim = answer.and_then(Completion::claim_first);
            let (email, phone) = (new.email.as_str(), new.phone.as_str());
            users_db::reserve_user_id(&mut conn, email, phone, claim).await?
        }
    };
    ctx.state.vault.make_contexts_after(reservation.id);
    match reservation.legacy_duplicate {
        Some(duplicate) => Err(duplicate_conflict(duplicate)),
        None => Ok(reservation.id),
    }
}

/// A new user's columns before encryption: the defaults, the standing and the plain profile.
fn new_columns(new: &NewUser, standing: Standing) -> OwnedColumns {
    let mut owned = OwnedColumns {
        sngine_email: String::new(),
        sngine_phone: String::new(),
        email_bidx: None,
        phone_bidx: None,
        status: Some(standing.status.into()),
        user_type: Some(new.user_type.into()),
        admin_role: standing.admin_role.map(Stored::from),
        subscription_status: Some(new.subscription_status.into()),
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
        pii_erasable: true,
        row_version: 1,
        record_signature: None,
    };
    apply_profile(&mut owned, &new.profile);
    owned
}

/// Encrypts the new user's PII and computes its blind indexes in one round of calls, storing
/// both in `owned`; returns the plaintext for the answer.
async fn seal_new(
    ctx: &Ctx<'_>,
    id: i32,
    new: &NewUser,
    owned: &mut OwnedColumns,
) -> Result<Pii, ApiError> {
    let vault = &ctx.state.vault;
    let mut pii = profile_pii(&new.profile);
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
        plain.set(field.column, Some(field.value.to_owned()));
        set_column(owned, field.column, Some(ciphertext));
    }
    let mut indexes = indexes.into_iter();
    owned.email_bidx = indexes.next();
    owned.phone_bidx = indexes.next();
    Ok(plain)
}

/// Inserts the signed row with its audit record (and the idempotent request's answer).
async fn store_new(
    ctx: &Ctx<'_>,
    actor: &Actor,
    new: &NewUser,
    row: &NewUserRow,
    answer: Option<&Completion>,
) -> Result<UserRow, ApiError> {
    let mut changed_fields = vec![
        "sngine_email".to_owned(),
        "sngine_phone".to_owned(),
        "user_type".to_owned(),
        "subscription_status".to_owned(),
    ];
    changed_fields.extend(new.profile.changed_fields());
    let mut event = AuditEvent {
        user_id: Some(row.id),
        actor_id: actor.user_id(),
        actor_label: &actor.label(),
        action: "user.create",
        changed_fields,
        success: true,
        reason: None,
        facts: None,
        request: ctx.meta,
        events: Vec::new(),
    };
    let outcome = Outcome {
        version: Some(row.owned.row_version),
        ..Outcome::default()
    };
    events::publish(ctx, &mut event, UserEventType::Created, outcome);
    let mut conn = ctx.conn().await?;
    users_db::insert(&mut conn, row, &event, answer)
        .await
        .map_err(stored_or_conflict)
}
