//! `GET /api/roles`: the hierarchy and what each rank may do.

use actix_web::{HttpResponse, web};
use vottery_common::users::{RoleInfo, Roles};

use crate::auth::Principal;
use crate::domain::roles::{AdminRole, SubscriptionStatus, UserType, capabilities, rank};
use crate::domain::status::Status;

/// The admin hierarchy and the rules of who may do what.
#[utoipa::path(
    get, path = "/api/roles", tag = "roles", operation_id = "get_roles",
    responses(
        (status = 200, description = "The hierarchy, highest first, and the rules", body = Roles),
        crate::routes::openapi::CommonProblems,
    ),
    security(("bearer" = []), ("service_token" = []))
)]
pub async fn roles(_principal: Principal) -> HttpResponse {
    let body = Roles {
        hierarchy: AdminRole::ALL
            .iter()
            .map(|role| RoleInfo {
                role: role.as_str().into(),
                rank: rank(Some(*role)),
                can: capabilities(*role).into_iter().map(str::to_owned).collect(),
            })
            .collect(),
        user_types: UserType::ALL.iter().map(|kind| kind.as_str().into()).collect(),
        subscription_statuses: SubscriptionStatus::ALL.iter().map(|status| status.as_str().into()).collect(),
        statuses: Status::ALL.iter().map(|status| status.as_str().into()).collect(),
        rules: vec![
            "An admin acts only on users ranked strictly below them.".into(),
            "An admin grants only roles strictly below their own; a manager may grant any role, including manager.".into(),
            "Nobody changes their own role or status.".into(),
            "The last manager cannot be demoted or deleted.".into(),
            "Roles are read from the database on every request.".into(),
            "Suspending or deleting a user ends all their sessions in the same transaction.".into(),
            "Status: pending -> verified (auth-service) -> active; a moderator or above may activate a pending user, suspend anyone below them, and reinstate a suspended user; nothing returns to pending.".into(),
        ],
    };
    HttpResponse::Ok().json(body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/roles", web::get().to(roles));
}
