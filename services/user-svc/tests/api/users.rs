//! The user endpoints: create, read (self, admins, masked for low ranks), `me`, list with
//! filters, delete.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{SERVICE_TOKEN, spawn_app, spawn_app_with_user};

fn id_of(view: &Value) -> i32 {
    view["id"].as_i64().unwrap() as i32
}

#[tokio::test]
async fn the_customers_create_request_makes_a_pending_signed_user() {
    let app = spawn_app().await;
    let reply = app
        .post_user(json!({"sngine_email": "test@example.com", "sngine_phone": "+1234567890", "user_type": "voter", "subscription_status": "free"}))
        .await;
    let view = reply.expect(201).clone();
    let id = id_of(&view);
    assert_eq!(reply.header("location"), Some(format!("/api/users/{id}")));
    assert_eq!(reply.header("etag"), Some("\"1\"".into()));
    assert_eq!(view["sngine_email"], json!("test@example.com"));
    assert_eq!(view["sngine_phone"], json!("+1234567890"));
    assert_eq!(view["status"], json!("pending"));
    assert_eq!(view["user_type"], json!("voter"));
    assert_eq!(view["subscription_status"], json!("free"));
    assert_eq!(view["admin_role"], Value::Null);
    assert_eq!(view["version"], json!(1));
    assert_eq!(view["signature"]["valid"], json!(true));
    assert!(view["signature"]["key_version"].as_u64().is_some());

    // The Location resolves to the same user.
    let read = app.get_as_manager(&format!("/api/users/{id}")).await;
    let read = read.expect(200);
    assert_eq!(read["sngine_email"], json!("test@example.com"));
    assert_eq!(read["signature"]["valid"], json!(true));
    assert_eq!(read["created_at"], view["created_at"]);
}

#[tokio::test]
async fn create_normalises_contacts_and_takes_profile_fields() {
    let app = spawn_app().await;
    let reply = app
        .post_user(json!({
            "sngine_email": "  Ada.Lovelace@Example.COM ",
            "sngine_phone": "0044 20 7946 0958",
            "user_type": "organization_creator",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "user_birthdate": "1990-12-10",
            "user_gender": "female",
            "user_country": "gb",
            "city": "London",
            "timezone": "Europe/London",
            "language": "en-GB"
        }))
        .await;
    let view = reply.expect(201);
    assert_eq!(view["sngine_email"], json!("ada.lovelace@example.com"));
    assert_eq!(view["sngine_phone"], json!("+442079460958"));
    assert_eq!(view["user_type"], json!("organization_creator"));
    assert_eq!(view["first_name"], json!("Ada"));
    assert_eq!(view["date_of_birth"], json!("1990-12-10"));
    assert!(view["age"].as_i64().unwrap() >= 34);
    assert_eq!(view["gender"], json!("female"));
    assert_eq!(view["country"], json!("GB"));
    assert_eq!(view["timezone"], json!("Europe/London"));
    let read = app.read_user(id_of(view)).await;
    assert_eq!(read["last_name"], json!("Lovelace"));
    assert_eq!(read["age"], view["age"]);
}

#[tokio::test]
async fn only_services_and_admins_create_users() {
    let app = spawn_app().await;
    let body = |n: u32| json!({"sngine_email": format!("new{n}@example.com"), "sngine_phone": format!("+1415555{n:04}")});
    let admin = app.user_with_role("admin").await;
    app.post("/api/users", &admin.token, body(8001))
        .await
        .expect(201);
    app.post("/api/users", &app.manager.token, body(8002))
        .await
        .expect(201);
    for role in ["moderator", "auditor", "analyst"] {
        let user = app.user_with_role(role).await;
        app.post("/api/users", &user.token, body(8003))
            .await
            .problem(403);
    }
    let plain = app.active_user().await;
    app.post("/api/users", &plain.token, body(8003))
        .await
        .problem(403);
    // Whether the caller may create is answered before what it sent.
    app.post(
        "/api/users",
        &plain.token,
        json!({"sngine_email": "not an email"}),
    )
    .await
    .problem(403);
    assert_eq!(
        app.count("SELECT count(*) FROM vottery_users WHERE phone_bidx IS NOT NULL")
            .await,
        // manager, admin, three role holders, the plain user, and the two created above
        8
    );
}

#[tokio::test]
async fn duplicate_emails_and_phones_are_found_by_their_blind_index() {
    let app = spawn_app().await;
    let existing = app
        .post_user(
            json!({"sngine_email": "Taken@Example.com", "sngine_phone": "+1 (415) 555-0101"}),
        )
        .await;
    existing.expect(201);
    let before = app.user_count().await;

    let same_email = app
        .post_user(json!({"sngine_email": "  taken@example.COM", "sngine_phone": "+14155550199"}))
        .await;
    let problem = same_email.problem(409);
    assert_eq!(same_email.error_fields(), vec!["sngine_email"], "{problem}");
    assert!(!same_email.text.contains("taken@example.com"));

    let same_phone = app
        .post_user(json!({"sngine_email": "other@example.com", "sngine_phone": "0014155550101"}))
        .await;
    same_phone.problem(409);
    assert_eq!(same_phone.error_fields(), vec!["sngine_phone"]);

    // The manager's contacts, typed differently.
    let managers = app
        .post_user(
            json!({"sngine_email": "MANAGER@example.com", "sngine_phone": "+44 20 7946 0000"}),
        )
        .await;
    managers.problem(409);
    assert_eq!(app.user_count().await, before);
}

#[tokio::test]
async fn users_read_themselves_and_admins_read_anyone() {
    let (app, user) = spawn_app_with_user().await;
    let other = app.active_user().await;

    let own = app
        .get(&format!("/api/users/{}", user.id), &user.token)
        .await;
    let own = own.expect(200);
    assert_eq!(own["sngine_email"], json!(user.email));
    assert_eq!(
        own["contacts_masked"],
        Value::Null,
        "not masked, so not shown"
    );
    app.get(&format!("/api/users/{}", other.id), &user.token)
        .await
        .problem(403);

    let me = app.get("/api/users/me", &user.token).await;
    let me = me.expect(200);
    assert_eq!(me["id"], json!(user.id));
    assert_eq!(me["sngine_phone"], json!(user.phone));

    for role in ["manager", "admin", "moderator", "auditor"] {
        let reader = app.user_with_role(role).await;
        let reply = app
            .get(&format!("/api/users/{}", user.id), &reader.token)
            .await;
        let view = reply.expect(200);
        assert_eq!(view["sngine_email"], json!(user.email), "{role}");
        assert_eq!(view["sngine_phone"], json!(user.phone), "{role}");
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{}\"", view["version"]))
        );
    }
    app.get_as_manager("/api/users/99999").await.problem(404);
    for bad in ["abc", "0"] {
        app.get_as_manager(&format!("/api/users/{bad}"))
            .await
            .assert_invalid(&["id"]);
    }
}

#[tokio::test]
async fn analysts_advertisers_and_editors_see_contacts_masked() {
    let app = spawn_app().await;
    let tess = json!({"sngine_email": "test@example.com", "sngine_phone": "+1234567890", "first_name": "Tess"});
    let id = id_of(app.post_user(tess).await.expect(201));
    for role in ["analyst", "advertiser", "editor"] {
        let reader = app.user_with_role(role).await;
        let one = app.get(&format!("/api/users/{id}"), &reader.token).await;
        let view = one.expect(200);
        assert_eq!(view["sngine_email"], json!("t***@example.com"), "{role}");
        assert_eq!(view["sngine_phone"], json!("+1******890"), "{role}");
        assert_eq!(view["contacts_masked"], json!(true), "{role}");
        assert_eq!(view["first_name"], json!("Tess"));
        assert!(!one.text.contains("test@example.com") && !one.text.contains("1234567890"));

        let list = app.get("/api/users?limit=100", &reader.token).await;
        let page = list.expect(200);
        assert!(!list.text.contains("test@example.com"), "{role} list leaks");
        assert!(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|user| user["contacts_masked"] == json!(true))
        );
        // Their own record is theirs to see in full.
        let me = app.get("/api/users/me", &reader.token).await;
        assert_eq!(me.expect(200)["sngine_email"], json!(reader.email));
    }
}

#[tokio::test]
async fn the_list_pages_and_filters_by_indexed_columns() {
    let app = spawn_app().await;
    let mut ids = vec![app.manager.id];
    for n in 0..5 {
        let user = app
            .create_user_with(json!({"country": if n % 2 == 0 { "US" } else { "DE" }}))
            .await;
        ids.push(user.id);
    }
    app.set_status(ids[1], "active").await;
    app.set_status(ids[2], "active").await;
    app.set_role(ids[2], Some("editor")).await;
    app.put(
        &format!("/api/users/{}/role", ids[3]),
        &app.manager.token,
        json!({"user_type": "individual_creator", "subscription_status": "subscribed"}),
    )
    .await
    .expect(200);

    let app = &app;
    let list = |query: &str| {
        let path = format!("/api/users{query}");
        async move { app.get_as_manager(&path).await.expect(200).clone() }
    };
    let all = list("").await;
    assert_eq!(all["total"], json!(6));
    assert_eq!(
        (all["page"].clone(), all["limit"].clone()),
        (json!(1), json!(20))
    );
    let listed: Vec<i32> = all["data"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(listed, ids);
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|user| user["signature"]["valid"] == json!(true)
                && user["sngine_email"].is_string())
    );

    let second_page = list("?page=2&limit=2").await;
    assert_eq!(second_page["total"], json!(6));
    let listed: Vec<i32> = second_page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(listed, ids[2..4].to_vec());
    let beyond = list("?page=9&limit=2").await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["total"], json!(6));

    let count = |page: &Value| page["total"].as_i64().unwrap();
    // Manager + ids[1] + ids[2] are active; the rest pending.
    assert_eq!(count(&list("?status=active").await), 3);
    assert_eq!(count(&list("?status=pending").await), 3);
    assert_eq!(count(&list("?admin_role=editor").await), 1);
    assert_eq!(count(&list("?admin_role=manager").await), 1);
    assert_eq!(count(&list("?user_type=individual_creator").await), 1);
    assert_eq!(count(&list("?subscription_status=subscribed").await), 1);
    assert_eq!(count(&list("?country=US").await), 3);
    assert_eq!(count(&list("?country=de&status=pending").await), 1);

    // Exact email lookup, through the blind index, however it is typed.
    let found = list("?email=USER3%40Example.com").await;
    assert_eq!(found["total"], json!(1));
    assert_eq!(found["data"][0]["sngine_email"], json!("user3@example.com"));
    assert_eq!(count(&list("?email=nobody%40example.com").await), 0);
    assert_eq!(
        count(&list("?email=user3%40example.com&status=active").await),
        0
    );
}

#[tokio::test]
async fn list_totals_follow_every_write_at_once() {
    let app = spawn_app().await;
    let app = &app;
    let total = |query: &'static str| async move {
        app.get_as_manager(&format!("/api/users{query}"))
            .await
            .expect(200)["total"]
            .as_i64()
            .unwrap()
    };
    // Each total below is read twice in a row: the second may come from memory.
    assert_eq!((total("").await, total("").await), (1, 1));
    assert_eq!(total("?status=active").await, 1);
    let user = app.create_user().await;
    assert_eq!((total("").await, total("").await), (2, 2));
    assert_eq!(total("?status=active").await, 1);
    app.set_status(user.id, "active").await;
    assert_eq!(total("?status=active").await, 2);
    app.set_role(user.id, Some("editor")).await;
    assert_eq!(total("?admin_role=editor").await, 1);
    app.delete(&format!("/api/users/{}", user.id), &app.manager.token)
        .await
        .expect(204);
    assert_eq!((total("").await, total("?status=active").await), (1, 1));
    assert_eq!(total("?admin_role=editor").await, 0);
}

#[tokio::test]
async fn only_admin_roles_and_services_list_users() {
    let (app, user) = spawn_app_with_user().await;
    app.get("/api/users", &user.token).await.problem(403);
    app.get("/api/users", SERVICE_TOKEN).await.expect(200);
    let analyst = app.user_with_role("analyst").await;
    app.get("/api/users", &analyst.token).await.expect(200);
}

#[tokio::test]
async fn only_managers_delete_and_the_trail_outlives_the_user() {
    let (app, user) = spawn_app_with_user().await;
    app.put_profile(user.id, &user.token, json!({"city": "Paris"}))
        .await
        .expect(200);
    // The auth-service's rows for this user.
    app.exec(&format!(
        "INSERT INTO vottery_devices (user_id, device_fingerprint, device_type) VALUES ({id}, 'fp-{id}', 'mobile');
         INSERT INTO vottery_sessions (user_id, device_id, session_token, refresh_token, expires_at, refresh_expires_at)
             SELECT {id}, id, 'session-{id}', 'refresh-{id}', now() + interval '1 hour', now() + interval '1 day'
             FROM vottery_devices WHERE user_id = {id};
         INSERT INTO vottery_biometrics (user_id, device_id, biometric_type, biometric_hash)
             SELECT {id}, id, 'face', 'hash' FROM vottery_devices WHERE user_id = {id};",
        id = user.id
    ))
    .await;

    for role in ["admin", "moderator"] {
        let actor = app.user_with_role(role).await;
        app.delete(&format!("/api/users/{}", user.id), &actor.token)
            .await
            .problem(403);
    }
    app.delete(&format!("/api/users/{}", user.id), &user.token)
        .await
        .problem(403);
    app.delete(&format!("/api/users/{}", user.id), SERVICE_TOKEN)
        .await
        .problem(403);
    app.delete(
        &format!("/api/users/{}", app.manager.id),
        &app.manager.token,
    )
    .await
    .problem(403);
    assert_eq!(app.user_row(user.id).await["id"], json!(user.id));

    let trail_before = app.audit_rows(user.id).await.len();
    let deleted = app
        .delete(&format!("/api/users/{}", user.id), &app.manager.token)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.text.is_empty());

    app.get_as_manager(&format!("/api/users/{}", user.id))
        .await
        .problem(404);
    app.delete(&format!("/api/users/{}", user.id), &app.manager.token)
        .await
        .problem(404);
    for table in [
        "vottery_users WHERE id",
        "vottery_devices WHERE user_id",
        "vottery_sessions WHERE user_id",
        "vottery_biometrics WHERE user_id",
    ] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table} = {}", user.id))
                .await,
            0,
            "{table}"
        );
    }

    // The audit trail is kept, ends with the deletion (and the refused second attempt), and
    // its chain is intact.
    let rows = app.audit_rows(user.id).await;
    assert!(rows.len() > trail_before);
    let trail = app
        .get_as_manager(&format!("/api/users/{}/audit?limit=100", user.id))
        .await;
    let trail = trail.expect(200);
    let (again, deletion) = (&trail["data"][0], &trail["data"][1]);
    assert_eq!(deletion["action"], json!("user.delete"));
    assert_eq!(deletion["actor_id"], json!(app.manager.id));
    assert_eq!(deletion["success"], json!(true));
    assert_eq!(again["action"], json!("user.delete"));
    assert_eq!(again["success"], json!(false));
    assert!(
        again["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not-found")
    );
    assert_eq!(trail["chain"]["valid"], json!(true), "{}", trail["chain"]);
    assert_eq!(trail["total"], json!(rows.len()));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problems() {
    let app = spawn_app().await;
    let reply = app
        .call(Method::GET, "/api/nothing-here")
        .token(&app.manager.token)
        .send()
        .await;
    reply.problem(404);
    let patch = app
        .call(Method::PATCH, &format!("/api/users/{}", app.manager.id))
        .token(&app.manager.token)
        .send()
        .await;
    assert!(patch.status == 404 || patch.status == 405, "{}", patch.text);
}
