//! The Shamir seal: init, unseal with any threshold of shares, wrong shares, reset, seal.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every crypto and key route, with a body that would succeed when unsealed.
fn crypto_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let list = Method::from_bytes(b"LIST").unwrap();
    let post = |path, body: Value| (Method::POST, path, Some(body));
    vec![
        post("/v1/transit/keys/k", json!({"type": "aes256-gcm96"})),
        (Method::GET, "/v1/transit/keys/k", None),
        (list, "/v1/transit/keys", None),
        (Method::GET, "/v1/transit/keys?list=true", None),
        (Method::DELETE, "/v1/transit/keys/k", None),
        post(
            "/v1/transit/keys/k/config",
            json!({"deletion_allowed": true}),
        ),
        post("/v1/transit/keys/k/rotate", json!({})),
        post(
            "/v1/transit/keys/k/trim",
            json!({"min_available_version": 1}),
        ),
        post("/v1/transit/encrypt/k", json!({"plaintext": b64("x")})),
        post(
            "/v1/transit/decrypt/k",
            json!({"ciphertext": "vault:v1:AAAA"}),
        ),
        post(
            "/v1/transit/rewrap/k",
            json!({"ciphertext": "vault:v1:AAAA"}),
        ),
        post("/v1/transit/datakey/plaintext/k", json!({})),
        post("/v1/transit/datakey/wrapped/k", json!({})),
        post("/v1/transit/sign/k", json!({"input": b64("x")})),
        post(
            "/v1/transit/verify/k",
            json!({"input": b64("x"), "signature": "vault:v1:AAAA"}),
        ),
        post("/v1/transit/hmac/k", json!({"input": b64("x")})),
        post("/v1/transit/hash", json!({"input": b64("x")})),
        post("/v1/transit/random", json!({})),
        (Method::GET, "/v1/transit/export/public-key/k", None),
    ]
}

async fn assert_all_sealed(app: &TestApp) {
    for (method, path, body) in crypto_routes() {
        for token in [ADMIN, USER, NO_TOKEN, Some("not-a-token")] {
            let reply = app
                .request(method.clone(), path, token, body.as_ref())
                .await;
            assert_eq!(
                (reply.status(), reply.json.clone()),
                (503, json!({"errors": ["Vault is sealed"]})),
                "{method} {path} with {token:?} while sealed: {}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn a_new_instance_is_uninitialized_and_refuses_every_crypto_route() {
    let app = spawn_uninitialized().await;
    let status = app.seal_status().await;
    assert_eq!(status["type"], json!("shamir"));
    assert_eq!(status["initialized"], json!(false));
    assert_eq!(status["sealed"], json!(true));
    assert_eq!(
        (&status["t"], &status["n"], &status["progress"]),
        (&json!(0), &json!(0), &json!(0))
    );
    assert_eq!(status["nonce"], json!(""));
    assert!(status.get("data").is_none(), "no envelope on sys routes");
    let init = app.get("/v1/sys/init", NO_TOKEN).await;
    assert_eq!(
        (init.status(), init.json),
        (200, json!({"initialized": false}))
    );
    assert!(!app.state.seal.is_initialized());

    assert_all_sealed(&app).await;
    app.unseal(&"ab".repeat(33))
        .await
        .assert_error(400, "Vault is not initialized");
    // Sealing an uninitialized instance still needs a permitted token.
    app.request(Method::PUT, "/v1/sys/seal", USER, None)
        .await
        .assert_denied();
}

#[tokio::test]
async fn init_hands_out_five_shares_once_and_three_of_them_unseal() {
    let mut app = spawn_uninitialized().await;
    let bad = app.init_request(3, 4).await;
    bad.assert_error(
        400,
        "invalid seal configuration: threshold cannot be larger than shares",
    );
    assert_eq!(app.seal_status().await["initialized"], json!(false));

    let reply = app.init_request(5, 3).await;
    assert_eq!(reply.status(), 200, "{}", reply.text);
    let body = reply.json.as_object().unwrap();
    assert!(!body.contains_key("data"), "init answers without envelope");
    let keys = body["keys"].as_array().unwrap();
    let keys_base64 = body["keys_base64"].as_array().unwrap();
    assert_eq!((keys.len(), keys_base64.len()), (5, 5));
    for (hex_share, b64_share) in keys.iter().zip(keys_base64) {
        let bytes = hex::decode(hex_share.as_str().unwrap()).unwrap();
        assert_eq!(bytes.len(), 33, "a share is 33 bytes");
        assert_eq!(unb64(b64_share.as_str().unwrap()), bytes);
    }
    let unique: std::collections::BTreeSet<_> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(unique.len(), 5);
    let root_token = body["root_token"].as_str().unwrap().to_owned();
    assert!(!root_token.is_empty());
    app.init = Some(InitKeys {
        keys: keys
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect(),
        keys_base64: keys_base64
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect(),
        root_token: root_token.clone(),
    });

    // The shares are handed out once.
    let again = app.init_request(5, 3).await;
    again.assert_error(400, "Vault is already initialized");
    let init = app.get("/v1/sys/init", NO_TOKEN).await;
    assert_eq!(init.json, json!({"initialized": true}));

    let status = app.seal_status().await;
    assert_eq!(
        (
            &status["initialized"],
            &status["sealed"],
            &status["t"],
            &status["n"],
            &status["progress"]
        ),
        (&json!(true), &json!(true), &json!(3), &json!(5), &json!(0))
    );
    assert_all_sealed(&app).await;

    // Two shares are not enough.
    let shares = app.init_keys().keys.clone();
    let first = app.unseal(&shares[0]).await;
    assert_eq!(first.status(), 200, "{}", first.text);
    assert_eq!(first.json["progress"], json!(1));
    assert_eq!(first.json["sealed"], json!(true));
    let nonce = first.json["nonce"].as_str().unwrap().to_owned();
    assert!(!nonce.is_empty(), "an unseal attempt has a nonce");
    let second = app.unseal(&shares[1]).await;
    assert_eq!(
        (&second.json["progress"], &second.json["sealed"]),
        (&json!(2), &json!(true))
    );
    assert_eq!(second.json["nonce"], json!(nonce), "same attempt");
    app.transit("encrypt/k", json!({"plaintext": b64("x")}))
        .await
        .assert_sealed();

    // The third unseals.
    let third = app.unseal(&shares[2]).await;
    assert_eq!(third.status(), 200);
    assert_eq!(
        (
            &third.json["sealed"],
            &third.json["progress"],
            &third.json["nonce"]
        ),
        (&json!(false), &json!(0), &json!(""))
    );
    assert!(!app.state.seal.is_sealed());

    // The root token handed out at init works, for crypto and for sealing.
    let root = Some(root_token.as_str());
    let created = app
        .post(
            "/v1/transit/keys/rooted",
            root,
            json!({"type": "aes256-gcm96"}),
        )
        .await;
    created.ok();
    let reply = app.request(Method::PUT, "/v1/sys/seal", root, None).await;
    assert_eq!(reply.status(), 204, "{}", reply.text);
    assert!(app.state.seal.is_sealed());
}

#[tokio::test]
async fn any_three_of_five_shares_unseal_in_any_order_and_format() {
    let app = spawn_unsealed().await; // shares 0, 1, 2
    app.create_key("subsets", "aes256-gcm96").await;
    let ciphertext = app.encrypt("subsets", b"survives sealing").await;

    let keys = app.init_keys().clone();
    for subset in [[4, 2, 0], [1, 3, 4], [3, 0, 2]] {
        app.seal().await;
        assert_eq!(app.seal_status().await["sealed"], json!(true));
        app.transit("decrypt/subsets", json!({"ciphertext": ciphertext}))
            .await
            .assert_sealed();
        for (position, index) in subset.iter().enumerate() {
            // Hex for the first share of the subset, base64 for the others.
            let share = if position == 0 {
                keys.keys[*index].clone()
            } else {
                keys.keys_base64[*index].clone()
            };
            let reply = app.unseal(&share).await;
            assert_eq!(reply.status(), 200, "{}", reply.text);
            let expected_sealed = position + 1 < THRESHOLD;
            assert_eq!(
                reply.json["sealed"],
                json!(expected_sealed),
                "subset {subset:?} after {} shares",
                position + 1
            );
        }
        assert_eq!(
            app.decrypt("subsets", &ciphertext).await,
            b"survives sealing",
            "subset {subset:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_or_corrupted_share_is_refused_and_good_progress_is_kept() {
    let app = spawn_unsealed().await;
    app.seal().await;
    let keys = app.init_keys().clone();

    let first = app.unseal(&keys.keys[3]).await;
    assert_eq!(first.json["progress"], json!(1));
    let nonce = first.json["nonce"].clone();

    // One flipped byte in the share value.
    let mut corrupted = hex::decode(&keys.keys[1]).unwrap();
    corrupted[17] ^= 0x01;
    let reply = app.unseal(&hex::encode(&corrupted)).await;
    reply.assert_error(400, "invalid key");
    // A share of the right shape that was never handed out.
    let mut stranger = vec![2u8];
    stranger.extend_from_slice(&[0x5a; 32]);
    app.unseal(&hex::encode(&stranger))
        .await
        .assert_error(400, "invalid key");
    // The identifier of another share on a good value.
    let mut relabelled = hex::decode(&keys.keys[1]).unwrap();
    relabelled[0] = hex::decode(&keys.keys[2]).unwrap()[0];
    app.unseal(&hex::encode(&relabelled))
        .await
        .assert_error(400, "invalid key");
    // Too short, and not hex or base64 at all.
    app.unseal("00112233")
        .await
        .assert_error(400, "invalid key");
    app.unseal("not a share!")
        .await
        .assert_error(400, "'key' must be a valid hex or base64 string");
    app.put("/v1/sys/unseal", NO_TOKEN, json!({}))
        .await
        .assert_error(400, "'key' must be specified");

    let status = app.seal_status().await;
    assert_eq!(status["progress"], json!(1), "the good share still counts");
    assert_eq!(status["nonce"], nonce);
    assert_eq!(status["sealed"], json!(true));

    // Giving the same good share again does not count twice.
    let again = app.unseal(&keys.keys_base64[3]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json["progress"], json!(1));

    let second = app.unseal(&keys.keys[0]).await;
    assert_eq!(second.json["progress"], json!(2));
    let third = app.unseal(&keys.keys[4]).await;
    assert_eq!(third.json["sealed"], json!(false), "{}", third.text);
}

#[tokio::test]
async fn reset_discards_the_shares_given_so_far() {
    let app = spawn_unsealed().await;
    app.put("/v1/sys/unseal", NO_TOKEN, json!({"reset": true}))
        .await
        .assert_error(400, "vault is unsealed");
    app.seal().await;
    let keys = app.init_keys().clone();
    app.unseal(&keys.keys[0]).await;
    let two = app.unseal(&keys.keys[1]).await;
    assert_eq!(two.json["progress"], json!(2));

    let reset = app
        .put("/v1/sys/unseal", NO_TOKEN, json!({"reset": true}))
        .await;
    assert_eq!(reset.status(), 200, "{}", reset.text);
    assert_eq!(reset.json["progress"], json!(0));
    assert_eq!(reset.json["nonce"], json!(""));
    assert_eq!(reset.json["sealed"], json!(true));

    // One more share after the reset is progress 1, not an unseal.
    let after = app.unseal(&keys.keys[2]).await;
    assert_eq!(
        (&after.json["progress"], &after.json["sealed"]),
        (&json!(1), &json!(true))
    );
    app.unseal(&keys.keys[3]).await;
    let unsealed = app.unseal(&keys.keys[4]).await;
    assert_eq!(unsealed.json["sealed"], json!(false));
}

#[tokio::test]
async fn sealing_needs_a_permitted_token_and_makes_keys_unusable_until_unsealed() {
    let app = spawn_unsealed().await;
    app.create_key("vottery-users-sealing", "aes256-gcm96")
        .await;
    app.create_key("sealing-signer", "ed25519").await;
    let ciphertext = app.encrypt("vottery-users-sealing", b"kept").await;
    let signature = app
        .sign("sealing-signer", json!({"input": b64("signed")}))
        .await["signature"]
        .clone();

    for token in [USER, NO_TOKEN, Some("wrong-token")] {
        app.request(Method::PUT, "/v1/sys/seal", token, None)
            .await
            .assert_denied();
    }
    app.post("/v1/sys/seal", USER, json!({}))
        .await
        .assert_denied();
    assert!(!app.state.seal.is_sealed(), "refused seals change nothing");
    assert_eq!(
        app.decrypt("vottery-users-sealing", &ciphertext).await,
        b"kept"
    );

    app.seal().await;
    assert_eq!(app.seal_status().await["sealed"], json!(true));
    app.transit_as(
        USER,
        "decrypt/vottery-users-sealing",
        json!({"ciphertext": ciphertext}),
    )
    .await
    .assert_sealed();
    app.transit(
        "verify/sealing-signer",
        json!({"input": b64("signed"), "signature": signature}),
    )
    .await
    .assert_sealed();
    // Sealing again is harmless.
    app.seal().await;

    app.unseal_with_shares(&[4, 1, 3]).await;
    let ciphertext_body = json!({"ciphertext": ciphertext});
    let decrypted = app
        .transit_as(USER, "decrypt/vottery-users-sealing", ciphertext_body)
        .await;
    assert_eq!(decrypted.ok()["plaintext"], json!(b64("kept")));
    let signed = json!({"input": b64("signed"), "signature": signature});
    assert!(app.verify("sealing-signer", signed).await);
}

#[tokio::test]
async fn the_typed_client_reports_the_seal() {
    let app = spawn_unsealed().await;
    let client = app.client("dev-security-admin-token");
    let status = client.call(None).seal_status().await.unwrap();
    assert!(status.initialized && !status.sealed);
    assert_eq!((status.t, status.n), (3, 5));
    app.seal().await;
    let error = client
        .call(Some("req-1"))
        .read_key("anything")
        .await
        .unwrap_err();
    assert!(
        matches!(error, vottery_common::client::ClientError::Sealed),
        "{error:?}"
    );
    assert!(error.is_unavailable());
}
