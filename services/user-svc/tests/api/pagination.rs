//! `GET /api/users` by cursor: a walk through a filtered list follows `Link: rel="next"` (and
//! back with `rel="prev"`), sees every row that stayed in the list exactly once while users
//! are created and deleted around it, refuses cursors of other lists and conflicting
//! positions by name, and totals a large list by an estimate marked as such.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Inserts `count` users as the customer's tables hold them before user-svc (plaintext, as
/// another service would write them); every third one is active, the rest pending.
async fn seed_users(app: &TestApp, count: i64) {
    seed_numbered(app, 1, count).await;
}

/// Inserts the users numbered `first` to `last`.
async fn seed_numbered(app: &TestApp, first: i64, last: i64) {
    app.exec(&format!(
        "INSERT INTO vottery_users (sngine_email, sngine_phone, status, user_type, \
             subscription_status, country, created_at, updated_at) \
         SELECT 'listed' || g || '@example.com', '+1628' || lpad(g::text, 7, '0'), \
                CASE WHEN g % 3 = 0 THEN 'active' ELSE 'pending' END, 'voter', 'free', \
                CASE WHEN g % 2 = 0 THEN 'DE' ELSE 'US' END, now(), now() \
         FROM generate_series({first}, {last}) AS g"
    ))
    .await;
}

/// The ids a query matches, from the database, in id order.
async fn ids_where(app: &TestApp, condition: &str) -> Vec<i64> {
    app.rows(&format!(
        "SELECT id FROM vottery_users WHERE {condition} ORDER BY id"
    ))
    .await
    .iter()
    .map(|row| row["id"].as_i64().unwrap())
    .collect()
}

/// One page: its ids, and the targets of its `Link` header by relation.
struct Page {
    body: Value,
    ids: Vec<i64>,
    links: HashMap<String, String>,
}

/// `<url>; rel="name"` pairs of a `Link` header.
fn links(header: Option<String>) -> HashMap<String, String> {
    header
        .unwrap_or_default()
        .split(", ")
        .filter(|link| !link.is_empty())
        .map(|link| {
            let (target, rel) = link
                .split_once(">; rel=\"")
                .expect("a link with a relation");
            (
                rel.trim_end_matches('"').to_owned(),
                target.trim_start_matches('<').to_owned(),
            )
        })
        .collect()
}

async fn page(app: &TestApp, path: &str) -> Page {
    let reply = app.get(path, &app.manager.token).await;
    let body = reply.expect(200).clone();
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["id"].as_i64().unwrap())
        .collect();
    Page {
        body,
        ids,
        links: links(reply.header("link")),
    }
}

/// Follows `rel` links from `start` to the end, returning each page's ids.
async fn walk(app: &TestApp, start: &str, rel: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut next = Some(start.to_owned());
    while let Some(path) = next {
        let page = page(app, &path).await;
        next = page.links.get(rel).cloned();
        pages.push(page.ids);
        assert!(pages.len() < 10_000, "the walk does not end");
    }
    pages
}

#[tokio::test]
async fn a_cursor_walk_follows_the_link_header_through_a_filtered_list_both_ways() {
    let app = spawn_app().await;
    seed_users(&app, 40).await;
    let expected = ids_where(&app, "status = 'active' AND country = 'DE'").await;
    assert_eq!(expected.len(), 6);

    let first = page(&app, "/api/users?country=DE&status=active&limit=4").await;
    assert_eq!(first.body["page"], json!(1));
    assert_eq!(
        (
            first.body["total"].clone(),
            first.body["total_kind"].clone()
        ),
        (json!(6), json!("exact"))
    );
    assert_eq!(first.body["prev_cursor"], Value::Null);
    let next = first.links["next"].clone();
    assert!(
        next.starts_with("/api/users?country=DE&status=active&limit=4&after="),
        "{next}"
    );
    assert!(next.ends_with(first.body["next_cursor"].as_str().unwrap()));

    let forward = walk(&app, "/api/users?country=DE&status=active&limit=4", "next").await;
    assert_eq!(
        forward,
        vec![expected[..4].to_vec(), expected[4..].to_vec()]
    );

    let last = page(&app, &next).await;
    assert_eq!(last.body["page"], Value::Null);
    assert_eq!(last.body["next_cursor"], Value::Null);
    assert!(!last.links.contains_key("next"));
    let backward = walk(&app, &last.links["prev"], "prev").await;
    assert_eq!(backward, vec![expected[..4].to_vec()]);
}

#[tokio::test]
async fn page_numbers_keep_working_and_hand_out_cursors_to_the_pages_beside_them() {
    let app = spawn_app().await;
    seed_users(&app, 9).await;
    let all = ids_where(&app, "true").await;
    let second = page(&app, "/api/users?page=2&limit=3").await;
    assert_eq!(second.ids, all[3..6].to_vec());
    assert_eq!(second.body["page"], json!(2));
    assert_eq!(page(&app, &second.links["next"]).await.ids, all[6..9]);
    assert_eq!(page(&app, &second.links["prev"]).await.ids, all[..3]);
    // 500 pages of 20 reach 10,000 rows; deeper pages are walked by cursor.
    page(&app, "/api/users?page=500&limit=20").await;
    let refused = app.get_as_manager("/api/users?page=501&limit=20").await;
    refused.assert_invalid(&["page"]);
    assert!(refused.error_message("page").contains("after="));
}

#[tokio::test]
async fn bad_cursors_and_conflicting_positions_are_refused_by_name() {
    let app = spawn_app().await;
    seed_users(&app, 12).await;
    let active = page(&app, "/api/users?status=active&limit=2").await;
    let next = active.body["next_cursor"].as_str().unwrap().to_owned();
    let second = page(
        &app,
        &format!("/api/users?status=active&limit=2&after={next}"),
    )
    .await;
    let prev = second.body["prev_cursor"].as_str().unwrap().to_owned();

    let refused = |query: String, fields: &'static [&'static str]| {
        let app = &app;
        async move {
            app.get_as_manager(&format!("/api/users?{query}"))
                .await
                .assert_invalid(fields);
        }
    };
    refused("after=not-a-cursor".into(), &["after"]).await;
    refused("before=".into(), &["before"]).await;
    refused(
        format!("status=active&after={next}&before={prev}"),
        &["after", "before"],
    )
    .await;
    refused(format!("status=active&page=2&after={next}"), &["page"]).await;
    refused(format!("status=active&page=1&before={prev}"), &["page"]).await;
    // A cursor of another filter set would walk another list.
    refused(format!("after={next}"), &["after"]).await;
    refused(format!("status=pending&after={next}"), &["after"]).await;
    // A previous-page cursor is not a next-page one.
    refused(format!("status=active&after={prev}"), &["after"]).await;
    refused(
        format!("status=active&after={next}&after={next}"),
        &["after"],
    )
    .await;
}

/// Creates users (one through the API, three through SQL) and deletes two at random, anywhere
/// in the list; `round` keeps the new contacts apart.
async fn churn(app: &TestApp, round: i64) {
    app.create_user().await;
    seed_numbered(app, 1000 + round * 3, 1002 + round * 3).await;
    app.exec(
        "DELETE FROM vottery_users WHERE id IN (SELECT id FROM vottery_users \
         WHERE admin_role IS NULL ORDER BY random() LIMIT 2)",
    )
    .await;
}

#[tokio::test]
async fn a_cursor_walk_under_concurrent_inserts_and_deletes_sees_every_surviving_row_once() {
    let app = Arc::new(spawn_app().await);
    seed_users(&app, 300).await;
    let before = ids_where(&app, "true").await;

    // Writes land between every two pages (on another connection, at random places in the
    // list), and more run alongside the whole walk.
    let walking = Arc::new(AtomicBool::new(true));
    let alongside = {
        let (app, walking) = (app.clone(), walking.clone());
        tokio::spawn(async move {
            let mut round = 500;
            while walking.load(Ordering::Acquire) {
                round += 1;
                churn(&app, round).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut next = Some("/api/users?limit=10".to_owned());
    let mut round = 0;
    while let Some(path) = next {
        let page = page(&app, &path).await;
        seen.extend(page.ids);
        next = page.links.get("next").cloned();
        round += 1;
        churn(&app, round).await;
    }
    walking.store(false, Ordering::Release);
    alongside.await.unwrap();

    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "a row was served twice or out of order"
    );
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    let surviving: BTreeSet<i64> = ids_where(&app, "true").await.into_iter().collect();
    let missed: Vec<&i64> = before
        .iter()
        .filter(|id| surviving.contains(id) && !seen.contains(id))
        .collect();
    assert!(
        missed.is_empty(),
        "rows present throughout were skipped: {missed:?}"
    );
    let deleted = before.iter().filter(|id| !surviving.contains(id)).count();
    assert!(deleted > 20, "too few deletions during the walk: {deleted}");
}

#[tokio::test]
async fn a_large_list_is_totalled_by_a_marked_estimate_and_a_small_one_exactly() {
    let app = spawn_app().await;
    seed_users(&app, 10_500).await;
    app.exec("ANALYZE vottery_users").await;
    let all = page(&app, "/api/users?limit=5").await;
    assert_eq!(all.body["total_kind"], json!("estimate"));
    let total = all.body["total"].as_i64().unwrap();
    assert!(
        (10_001..=12_000).contains(&total),
        "an estimate far off: {total}"
    );
    let few = page(&app, "/api/users?status=active&country=DE&limit=5").await;
    assert_eq!(few.body["total_kind"], json!("exact"));
    assert_eq!(
        few.body["total"].as_i64().unwrap(),
        ids_where(&app, "status = 'active' AND country = 'DE'")
            .await
            .len() as i64
    );
}
