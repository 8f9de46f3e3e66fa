//! Rate limits per client address and per user: `RateLimit-*` headers on every answer, 429
//! problem+json with `Retry-After` when exceeded; in memory per instance by default, shared
//! across instances through Redis when configured.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, TestApp, spawn_app_with};

/// A test app whose rate limit is on: `per_ip` requests a minute per client address and
/// `per_user` per user, kept in the Redis at `redis_url` when given.
async fn limited_app(per_ip: u32, per_user: u32, redis_url: Option<String>) -> TestApp {
    spawn_app_with(move |settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.per_ip_per_minute = per_ip;
        settings.rate_limit.per_user_per_minute = per_user;
        if let Some(url) = redis_url {
            settings.rate_limit.redis_url = url;
        }
    })
    .await
}

fn limit_headers(reply: &Reply) -> (u64, u64, u64) {
    let number = |name: &str| -> u64 {
        reply
            .header(name)
            .unwrap_or_else(|| panic!("{name} missing on a {}: {:?}", reply.status, reply.headers))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    (
        number("ratelimit-limit"),
        number("ratelimit-remaining"),
        number("ratelimit-reset"),
    )
}

fn assert_limited(reply: &Reply) {
    reply.problem(429);
    assert_eq!(reply.problem_type(), "rate-limited");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("429 carries Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limit_headers(reply).1, 0);
}

async fn me_from(app: &TestApp, base: &str, address: &str, token: &str) -> Reply {
    app.call_at(base, Method::GET, "/api/users/me")
        .token(token)
        .via_gateway_for(address)
        .send()
        .await
}

/// A random private address, so that runs sharing a Redis do not share budgets.
fn random_address() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

#[tokio::test]
async fn each_client_address_has_its_own_budget() {
    let app = limited_app(3, 1000, None).await;
    let token = app.manager.token.clone();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = me_from(&app, &app.address, "203.0.113.7", &token).await;
        reply.expect(200);
        let (limit, left, reset) = limit_headers(&reply);
        assert_eq!(limit, 3);
        assert!(reset <= 60);
        remaining.push(left);
    }
    assert_eq!(remaining, vec![2, 1, 0]);
    let limited = me_from(&app, &app.address, "203.0.113.7", &token).await;
    assert_limited(&limited);
    // Refused before authentication: even a bad token counts against the address.
    let anonymous = app
        .call(Method::GET, "/api/users/me")
        .via_gateway_for("203.0.113.7")
        .send()
        .await;
    assert_limited(&anonymous);

    // Another client is unaffected; probes are never limited.
    me_from(&app, &app.address, "203.0.113.8", &token)
        .await
        .expect(200);
    for _ in 0..5 {
        let live = app
            .call(Method::GET, "/health/live")
            .via_gateway_for("203.0.113.7")
            .send()
            .await;
        live.expect(200);
    }
}

#[tokio::test]
async fn each_user_has_a_budget_whatever_their_address() {
    let app = limited_app(1000, 2, None).await;
    // Setting up uses the manager's budget; a fresh user has a full one.
    let user_id = app.create_user().await.id;
    let token = app.jwt_for(user_id);
    for (n, expected_left) in [(1, 1), (2, 0)] {
        let reply = me_from(&app, &app.address, &format!("198.51.100.{n}"), &token).await;
        reply.expect(200);
        assert_eq!(
            limit_headers(&reply),
            (2, expected_left, limit_headers(&reply).2)
        );
    }
    let limited = me_from(&app, &app.address, "198.51.100.3", &token).await;
    assert_limited(&limited);
    assert_eq!(limit_headers(&limited).0, 2);
    // Writes are limited too, and a refused write changes nothing.
    let write = app
        .call(Method::PUT, &format!("/api/users/{user_id}/profile"))
        .token(&token)
        .via_gateway_for("198.51.100.4")
        .json(&json!({"city": "Limit"}))
        .send()
        .await;
    assert_limited(&write);
    assert_eq!(app.user_row(user_id).await["city"], serde_json::Value::Null);

    // Another user from the same address is unaffected.
    let other = app.jwt_for(app.manager.id);
    let reply = me_from(&app, &app.address, "198.51.100.3", &other).await;
    assert_ne!(reply.status, 429, "{}", reply.text);
}

#[tokio::test]
async fn in_memory_budgets_are_per_instance() {
    let app = limited_app(2, 1000, None).await;
    let second = app.start_instance(|_| {}).await;
    let token = app.manager.token.clone();
    for _ in 0..2 {
        me_from(&app, &app.address, "192.0.2.1", &token)
            .await
            .expect(200);
    }
    assert_limited(&me_from(&app, &app.address, "192.0.2.1", &token).await);
    // The other instance keeps its own count.
    me_from(&app, &second, "192.0.2.1", &token)
        .await
        .expect(200);
}

#[tokio::test]
async fn redis_shares_one_budget_between_instances() {
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let app = limited_app(3, 1000, Some(redis_url.clone())).await;
    let second = app.start_instance(|_| {}).await;
    let token = app.manager.token.clone();
    let address = random_address();

    let instances = [&app.address, &second, &app.address];
    let mut remaining = Vec::new();
    for base in instances {
        let reply = me_from(&app, base, &address, &token).await;
        reply.expect(200);
        assert_eq!(limit_headers(&reply).0, 3);
        remaining.push(limit_headers(&reply).1);
    }
    assert_eq!(remaining, vec![2, 1, 0], "one budget across both instances");
    assert_limited(&me_from(&app, &second, &address, &token).await);
    assert_limited(&me_from(&app, &app.address, &address, &token).await);

    // Per user as well: a user id no other run uses, with a budget of two.
    let id: i64 = 1_000_000 + (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as i64;
    app.exec(&format!("SELECT setval('vottery_users_id_seq', {id})"))
        .await;
    let third = app
        .start_instance(|settings| {
            settings.rate_limit.per_ip_per_minute = 1000;
            settings.rate_limit.per_user_per_minute = 2;
        })
        .await;
    let fourth = app
        .start_instance(|settings| {
            settings.rate_limit.per_ip_per_minute = 1000;
            settings.rate_limit.per_user_per_minute = 2;
        })
        .await;
    let created = app
        .call_at(&third, Method::POST, "/api/users")
        .token(crate::helpers::SERVICE_TOKEN)
        .via_gateway_for(&random_address())
        .json(&json!({"sngine_email": "shared@example.com", "sngine_phone": "+14155550321"}))
        .send()
        .await;
    let user_id = created.expect(201)["id"].as_i64().unwrap();
    assert!(user_id > id);
    let token = app.jwt_for(user_id as i32);
    me_from(&app, &third, &random_address(), &token)
        .await
        .expect(200);
    me_from(&app, &fourth, &random_address(), &token)
        .await
        .expect(200);
    assert_limited(&me_from(&app, &third, &random_address(), &token).await);
    assert_limited(&me_from(&app, &fourth, &random_address(), &token).await);
}
