//! Guardians: the key ceremony's steps over HTTP, each idempotent and refused out of order,
//! partial and compensated decryptions that the election mathematics verifies, policies, and
//! no secret in any answer. Other guardians are either real instances with their own databases
//! or simulated here with `vottery_election`, holding their own polynomials.

use secrecy::SecretString;
use security_svc::configuration::TokenSettings;
use security_svc::guardians::secrets::SecretOwner;
use security_svc::schema::vottery_security_guardians as guardians;
use serde_json::{Value, json};
use vottery_common::guardians::{
    BackupsAnswer, CeremonyRecord, CompensatedShares, DecryptionShares, GuardianStatus,
    VerificationsAnswer,
};
use vottery_election::{
    DiscreteLog, ElGamalCiphertext, ElectionPartialKeyBackup, ElectionPartialKeyVerification,
    ElectionPolynomial, ElectionPublicKey, ElementModP, ElementModQ, combine_election_public_keys,
    combine_partial_decryptions, compute_lagrange_coefficient, compute_recovery_public_key,
    elgamal_add, elgamal_encrypt, generate_backup, rand_q, reconstruct_missing_share,
    verify_partial_batch,
};

use crate::helpers::*;

const CEREMONY: &str = "election-2027-test";

fn path(name: &str, step: &str) -> String {
    if step.is_empty() {
        format!("/v1/guardians/{name}")
    } else {
        format!("/v1/guardians/{name}/{step}")
    }
}

fn parse<T: serde::de::DeserializeOwned>(reply: &Reply) -> T {
    serde_json::from_value(reply.json.clone()).unwrap_or_else(|error| {
        panic!(
            "unexpected answer ({error}): {} {}",
            reply.status, reply.text
        )
    })
}

/// Asserts an RFC 9457 problem with `status` whose `errors[]` names `field`; returns it.
fn assert_problem(reply: &Reply, status: u16, field: &str) -> Value {
    assert_eq!(reply.status(), status, "body: {}", reply.text);
    assert!(
        reply
            .header("content-type")
            .starts_with("application/problem+json"),
        "content type {:?}: {}",
        reply.header("content-type"),
        reply.text
    );
    assert_eq!(reply.json["status"], json!(status), "{}", reply.text);
    let fields: Vec<&str> = reply.json["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "expected {field:?} among {fields:?}: {}",
        reply.text
    );
    reply.json.clone()
}

/// Asserts a 403 problem that says no more than Vault's "permission denied".
fn assert_denied(reply: &Reply) {
    assert_eq!(reply.status(), 403, "body: {}", reply.text);
    assert!(
        reply
            .header("content-type")
            .starts_with("application/problem+json")
    );
    assert_eq!(
        reply.json["detail"],
        json!("permission denied"),
        "{}",
        reply.text
    );
}

fn create_body(sequence_order: u32, n: u32, quorum: u32) -> Value {
    json!({
        "ceremony_id": CEREMONY,
        "sequence_order": sequence_order,
        "number_of_guardians": n,
        "quorum": quorum,
    })
}

/// A guardian played by the test itself: a polynomial it holds and its public record.
struct LocalGuardian {
    name: String,
    polynomial: ElectionPolynomial,
    record: ElectionPublicKey,
}

impl LocalGuardian {
    fn new(name: &str, sequence_order: u32, quorum: u32) -> Self {
        let polynomial = ElectionPolynomial::generate(quorum);
        let record = ElectionPublicKey::new(name, sequence_order, &polynomial);
        Self {
            name: name.to_owned(),
            polynomial,
            record,
        }
    }

    fn backup_for(&self, receiver: &ElectionPublicKey) -> ElectionPartialKeyBackup {
        generate_backup(&self.name, &self.polynomial, receiver)
    }
}

fn verification(owner: &str, designated: &str) -> ElectionPartialKeyVerification {
    ElectionPartialKeyVerification {
        owner_id: owner.to_owned(),
        designated_id: designated.to_owned(),
        verifier_id: designated.to_owned(),
        verified: true,
    }
}

/// Every verification of a ceremony among `names`, all true.
fn all_verifications(names: &[&str]) -> Vec<ElectionPartialKeyVerification> {
    let mut out = Vec::new();
    for owner in names {
        for designated in names {
            if owner != designated {
                out.push(verification(owner, designated));
            }
        }
    }
    out
}

impl TestApp {
    async fn create_guardian(&self, name: &str, body: Value) -> Reply {
        self.post(&path(name, ""), ADMIN, body).await
    }

    async fn guardian(&self, name: &str) -> GuardianStatus {
        let reply = self.get(&path(name, ""), ADMIN).await;
        assert_eq!(reply.status(), 200, "{}", reply.text);
        parse(&reply)
    }

    async fn guardian_step(&self, name: &str, step: &str, body: Value) -> Reply {
        self.post(&path(name, step), ADMIN, body).await
    }

    /// Asks guardian `name` for its decryption shares of `ciphertexts`.
    async fn decryption_shares(
        &self,
        name: &str,
        extended_base_hash: impl serde::Serialize,
        ciphertexts: impl serde::Serialize,
    ) -> Reply {
        let body = json!({"extended_base_hash": extended_base_hash, "ciphertexts": ciphertexts});
        self.guardian_step(name, "decrypt", body).await
    }

    /// The guardian's secret key, opened from storage with the instance's root key: only to
    /// check that it appears in no answer and no log.
    async fn guardian_secret_hex(&self, name: &str) -> String {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = self.db().await;
        let (ceremony_id, sealed): (String, Vec<u8>) = guardians::table
            .find(name)
            .select((guardians::ceremony_id, guardians::sealed_polynomial))
            .first(&mut conn)
            .await
            .expect("the guardian row");
        let store = self.state.seal.store().expect("unsealed");
        let polynomial = SecretOwner {
            guardian: name,
            ceremony_id: &ceremony_id,
        }
        .open_polynomial(&store.barrier(), &sealed)
        .expect("the polynomial opens");
        hex::encode_upper(polynomial.secret_key().to_be_bytes().as_ref())
    }
}

/// A guardian alone (n = 1, k = 1), finalized: enough for decryptions and bad input.
async fn lone_finalized_guardian(app: &TestApp, name: &str) -> GuardianStatus {
    let created = app.create_guardian(name, create_body(1, 1, 1)).await;
    assert_eq!(created.status(), 201, "{}", created.text);
    let status: GuardianStatus = parse(&created);
    let backups = app
        .guardian_step(
            name,
            "backups",
            json!({"public_records": [status.public_record]}),
        )
        .await;
    assert_eq!(parse::<BackupsAnswer>(&backups).backups.len(), 0);
    let record = app
        .guardian_step(name, "finalize", json!({"verifications": []}))
        .await;
    assert_eq!(record.status(), 200, "{}", record.text);
    app.guardian(name).await
}

fn encrypt(message: u64, key: &ElementModP) -> ElGamalCiphertext {
    elgamal_encrypt(message, &rand_q(), key).expect("a non-zero nonce")
}

fn hash_q() -> ElementModQ {
    rand_q()
}

// ---- the whole ceremony across instances -----------------------------------------------------

struct Trustee {
    app: TestApp,
    name: String,
}

impl Trustee {
    /// Posts `body` to one of this guardian's ceremony steps.
    async fn step(&self, step: &str, body: Value) -> Reply {
        self.app.guardian_step(&self.name, step, body).await
    }

    /// Posts the same `body` to a ceremony step twice, asserts that the repeat is answered the
    /// same, and returns the answer.
    async fn step_twice(&self, step: &str, body: Value) -> Reply {
        let first = self.step(step, body.clone()).await;
        let again = self.step(step, body).await;
        assert_eq!(again.json, first.json, "the same {step} are answered again");
        first
    }
}

/// Three instances, each with its own database, each hosting one guardian of a 3-of-2
/// ceremony that the test drives step by step, repeating every step to see it answer the same.
async fn three_guardian_ceremony() -> (Vec<Trustee>, Vec<CeremonyRecord>) {
    let (a, b, c) = tokio::join!(spawn_unsealed(), spawn_unsealed(), spawn_unsealed());
    let trustees: Vec<Trustee> = [a, b, c]
        .into_iter()
        .enumerate()
        .map(|(index, app)| Trustee {
            app,
            name: format!("guardian-{}", index + 1),
        })
        .collect();

    let mut records = Vec::new();
    for (index, trustee) in trustees.iter().enumerate() {
        let body = create_body(index as u32 + 1, 3, 2);
        let created = trustee
            .app
            .create_guardian(&trustee.name, body.clone())
            .await;
        assert_eq!(created.status(), 201, "{}", created.text);
        let again = trustee.app.create_guardian(&trustee.name, body).await;
        assert_eq!(again.status(), 200, "{}", again.text);
        assert_eq!(
            again.json, created.json,
            "the same guardian is answered again"
        );
        let status: GuardianStatus = parse(&created);
        assert_eq!(status.stage.as_str(), "created");
        assert!(
            status.public_record.verify(2).is_ok(),
            "the public record verifies"
        );
        records.push(status.public_record);
    }

    let mut sent: Vec<ElectionPartialKeyBackup> = Vec::new();
    for trustee in &trustees {
        let body = json!({"public_records": records});
        let first = trustee.step_twice("backups", body).await;
        assert_eq!(first.status(), 200, "{}", first.text);
        let answer: BackupsAnswer = parse(&first);
        assert_eq!(answer.backups.len(), 2);
        assert!(
            answer
                .backups
                .iter()
                .all(|backup| backup.owner_id == trustee.name)
        );
        sent.extend(answer.backups);
    }

    for trustee in &trustees {
        let mine: Vec<&ElectionPartialKeyBackup> = sent
            .iter()
            .filter(|backup| backup.designated_id == trustee.name)
            .collect();
        let body = json!({"backups": mine});
        let first = trustee.step_twice("verifications", body).await;
        let answer: VerificationsAnswer = parse(&first);
        assert_eq!(answer.verifications.len(), 2);
        assert!(
            answer.verifications.iter().all(|check| check.verified),
            "{}",
            first.text
        );
        assert_eq!(
            trustee.app.guardian(&trustee.name).await.stage.as_str(),
            "backups_verified"
        );
    }

    let names: Vec<&str> = trustees
        .iter()
        .map(|trustee| trustee.name.as_str())
        .collect();
    let verifications = all_verifications(&names);
    let mut signed = Vec::new();
    for trustee in &trustees {
        // Out of order in the body: every instance sorts them the same way.
        let mut shuffled = verifications.clone();
        shuffled.reverse();
        let first = trustee
            .step("finalize", json!({"verifications": verifications}))
            .await;
        let again = trustee
            .step("finalize", json!({"verifications": shuffled}))
            .await;
        assert_eq!(first.status(), 200, "{}", first.text);
        assert_eq!(again.json, first.json, "the same record is answered again");
        let read = trustee
            .app
            .get(&path(&trustee.name, "ceremony"), ADMIN)
            .await;
        assert_eq!(read.json, first.json);
        signed.push(parse::<CeremonyRecord>(&first));
    }
    (trustees, signed)
}

#[tokio::test]
async fn three_instances_agree_on_one_joint_key_and_each_signs_its_record() {
    let (trustees, records) = three_guardian_ceremony().await;
    let expected = combine_election_public_keys(&records[0].public_records);
    for (trustee, record) in trustees.iter().zip(&records) {
        assert_eq!(
            record.joint_key, expected,
            "every instance computes the same joint key"
        );
        assert_eq!(record.public_records, records[0].public_records);
        assert_eq!(record.verifications, records[0].verifications);
        assert_eq!(record.signed_by, trustee.name);
        assert_eq!(record.signing_key, "vottery-guardian-records");
        let status = trustee.app.guardian(&trustee.name).await;
        assert_eq!(status.stage.as_str(), "finalized");
        assert_eq!(status.joint_key.as_ref(), Some(&expected));

        // The signature is the instance's transit signature over the record's canonical form.
        let verifies = |bytes: Vec<u8>| {
            let body = json!({"input": b64(bytes), "signature": record.signature});
            trustee.app.verify("vottery-guardian-records", body)
        };
        assert!(verifies(record.signed_bytes().unwrap()).await);
        let mut forged = record.clone();
        forged.quorum = 3;
        assert!(!verifies(forged.signed_bytes().unwrap()).await);
        let key = trustee.app.read_key("vottery-guardian-records").await;
        assert_eq!(
            key["keys"]["1"]["public_key"],
            json!(record.signing_public_key)
        );
    }

    // A finalized guardian refuses other verifications and other records.
    let first = &trustees[0];
    let mut other = all_verifications(&THREE_GUARDIANS);
    other.pop();
    let refused = first
        .step("finalize", json!({"verifications": other}))
        .await;
    assert_problem(&refused, 409, "verifications");
    let mut changed = records[0].public_records.clone();
    changed.swap(1, 2);
    changed[1].sequence_order = 2;
    changed[2].sequence_order = 3;
    let refused = first
        .step("backups", json!({"public_records": changed}))
        .await;
    assert_eq!(refused.status(), 409, "{}", refused.text);

    // Decrypt a homomorphic sum with all three, then with two and a compensated share.
    let joint = &records[0].joint_key.joint_public_key;
    let ebh = hash_q();
    let votes = [1u64, 0, 1, 1, 0, 1];
    let ballots: Vec<ElGamalCiphertext> = votes.iter().map(|vote| encrypt(*vote, joint)).collect();
    let tally = elgamal_add(&ballots).unwrap();
    let ciphertexts = vec![tally.clone(), encrypt(7, joint)];
    let body = json!({"extended_base_hash": ebh, "ciphertexts": ciphertexts});

    let mut shares = Vec::new();
    for trustee in &trustees {
        let reply = trustee
            .app
            .post(&path(&trustee.name, "decrypt"), ADMIN, body.clone())
            .await;
        assert_eq!(reply.status(), 200, "{}", reply.text);
        let answer: DecryptionShares = parse(&reply);
        assert_eq!(answer.guardian_id, trustee.name);
        let record = &records[0].public_records[answer.sequence_order as usize - 1];
        assert_eq!(answer.public_key, record.key);
        assert_eq!(
            verify_partial_batch(&ciphertexts, &answer.shares, &answer.public_key, &ebh),
            Ok(()),
            "every Chaum–Pedersen proof verifies"
        );
        shares.push(answer);
    }
    let table = DiscreteLog::new(1_000);
    for (index, expected) in [4u64, 7].into_iter().enumerate() {
        let parts: Vec<&ElementModP> = shares
            .iter()
            .map(|answer| &answer.shares[index].partial_decryption)
            .collect();
        let g_m = combine_partial_decryptions(&ciphertexts[index], &parts);
        assert_eq!(table.find(&g_m.unwrap()), Some(expected));
    }

    // guardian-3 is missing: guardians 1 and 2 compensate for it.
    let mut compensated = Vec::new();
    for trustee in &trustees[..2] {
        let reply = trustee
            .app
            .post(
                &path(&trustee.name, "compensate"),
                ADMIN,
                json!({"missing_guardian_id": "guardian-3", "extended_base_hash": ebh, "ciphertexts": ciphertexts}),
            )
            .await;
        assert_eq!(reply.status(), 200, "{}", reply.text);
        let answer: CompensatedShares = parse(&reply);
        let missing = &records[0].public_records[2];
        assert_eq!(
            answer.recovery_public_key,
            compute_recovery_public_key(answer.sequence_order, missing)
        );
        assert_eq!(
            verify_partial_batch(
                &ciphertexts,
                &answer.shares,
                &answer.recovery_public_key,
                &ebh
            ),
            Ok(())
        );
        compensated.push(answer);
    }
    let lagrange: Vec<ElementModQ> = [1u32, 2]
        .iter()
        .map(|order| {
            let others: Vec<u32> = [1u32, 2]
                .into_iter()
                .filter(|other| other != order)
                .collect();
            compute_lagrange_coefficient(*order, &others).unwrap()
        })
        .collect();
    for (index, expected) in [4u64, 7].into_iter().enumerate() {
        let parts: Vec<(&ElementModP, &ElementModQ)> = compensated
            .iter()
            .zip(&lagrange)
            .map(|(answer, weight)| (&answer.shares[index].partial_decryption, weight))
            .collect();
        let rebuilt = reconstruct_missing_share(&parts);
        let present = [
            &shares[0].shares[index].partial_decryption,
            &shares[1].shares[index].partial_decryption,
            &rebuilt,
        ];
        let g_m = combine_partial_decryptions(&ciphertexts[index], &present);
        assert_eq!(
            table.find(&g_m.unwrap()),
            Some(expected),
            "k shares and a compensated one decrypt"
        );
    }

    // Compensating for oneself or a stranger is refused.
    let refused = trustees[0]
        .app
        .post(
            &path("guardian-1", "compensate"),
            ADMIN,
            json!({"missing_guardian_id": "guardian-1", "extended_base_hash": ebh, "ciphertexts": ciphertexts}),
        )
        .await;
    assert_problem(&refused, 400, "missing_guardian_id");

    // No answer carried a guardian's secret key.
    for trustee in &trustees {
        let secret = trustee.app.guardian_secret_hex(&trustee.name).await;
        for step in ["", "ceremony"] {
            let reply = trustee.app.get(&path(&trustee.name, step), ADMIN).await;
            assert!(!reply.text.contains(&secret));
            assert!(!reply.text.to_lowercase().contains(&secret.to_lowercase()));
        }
    }
}

// ---- one instance, the other guardians played here ------------------------------------------

/// The guardians of a three-guardian ceremony.
const THREE_GUARDIANS: [&str; 3] = ["guardian-1", "guardian-2", "guardian-3"];

impl TestApp {
    /// guardian-1's `backups` step with these public records.
    async fn share_records(&self, records: Value) -> Reply {
        let body = json!({ "public_records": records });
        self.guardian_step("guardian-1", "backups", body).await
    }

    /// guardian-1's `verifications` step with these backups.
    async fn check_backups(&self, backups: Value) -> Reply {
        let body = json!({ "backups": backups });
        self.guardian_step("guardian-1", "verifications", body)
            .await
    }

    /// guardian-1's `finalize` step with these verifications.
    async fn finalize(&self, verifications: Value) -> Reply {
        let body = json!({ "verifications": verifications });
        self.guardian_step("guardian-1", "finalize", body).await
    }
}

/// Creates guardian-1 of a 2-of-3 ceremony on `app`.
async fn create_guardian_one(app: &TestApp) -> GuardianStatus {
    let created = app
        .create_guardian("guardian-1", create_body(1, 3, 2))
        .await;
    parse(&created)
}

/// guardian-1 on `app` with guardians 2 and 3 played locally, after the backups step.
async fn guardian_one_with_local_peers(app: &TestApp) -> (GuardianStatus, Vec<LocalGuardian>) {
    let status = create_guardian_one(app).await;
    let peers = vec![
        LocalGuardian::new("guardian-2", 2, 2),
        LocalGuardian::new("guardian-3", 3, 2),
    ];
    let records = json!([status.public_record, peers[0].record, peers[1].record]);
    let shared = app.share_records(records).await;
    assert_eq!(shared.status(), 200, "{}", shared.text);
    (status, peers)
}

#[tokio::test]
async fn a_tampered_public_record_refuses_the_ceremony_naming_the_guardian_and_stores_nothing() {
    let app = spawn_unsealed().await;
    let status = create_guardian_one(&app).await;
    let peers = [
        LocalGuardian::new("guardian-2", 2, 2),
        LocalGuardian::new("guardian-3", 3, 2),
    ];
    let mut tampered = peers[1].record.clone();
    tampered.coefficient_proofs[1].response = rand_q();
    let refused = app
        .share_records(json!([status.public_record, peers[0].record, tampered]))
        .await;
    let problem = assert_problem(&refused, 400, "public_records[2]");
    assert!(
        problem["detail"].as_str().unwrap().contains("guardian-3"),
        "{problem}"
    );
    assert_eq!(app.guardian("guardian-1").await.stage.as_str(), "created");

    // A commitment replaced by a non-member of the group, and a value ≥ p, are refused too.
    let mut not_member = peers[0].record.clone();
    not_member.coefficient_commitments[1] = ElementModP::from_hex(&"FF".repeat(300)).unwrap();
    let refused = app
        .share_records(json!([status.public_record, not_member, peers[1].record]))
        .await;
    assert!(
        assert_problem(&refused, 400, "public_records[1]")["detail"]
            .as_str()
            .unwrap()
            .contains("guardian-2")
    );
    let mut too_big =
        json!({"public_records": [status.public_record, peers[0].record, peers[1].record]});
    too_big["public_records"][1]["key"] = json!("FF".repeat(512));
    let refused = app.guardian_step("guardian-1", "backups", too_big).await;
    assert_problem(&refused, 400, "public_records[1].key");

    // Its own record altered, a record missing, or a sequence order twice: refused.
    let mut own = status.public_record.clone();
    own.key = peers[0].record.key.clone();
    let refused = app
        .share_records(json!([own, peers[0].record, peers[1].record]))
        .await;
    assert_problem(&refused, 400, "public_records[0]");
    let refused = app
        .share_records(json!([status.public_record, peers[0].record]))
        .await;
    assert_problem(&refused, 400, "public_records");
    let mut twice = peers[1].record.clone();
    twice.sequence_order = 2;
    let refused = app
        .share_records(json!([status.public_record, peers[0].record, twice]))
        .await;
    assert_problem(&refused, 400, "public_records[2].sequence_order");
    assert_eq!(app.guardian("guardian-1").await.stage.as_str(), "created");

    // The honest records go through.
    let shared = app
        .share_records(json!([
            peers[1].record,
            status.public_record,
            peers[0].record
        ]))
        .await;
    let answer: BackupsAnswer = parse(&shared);
    let designated: Vec<&str> = answer
        .backups
        .iter()
        .map(|backup| backup.designated_id.as_str())
        .collect();
    assert_eq!(
        designated,
        ["guardian-2", "guardian-3"],
        "backups in sequence order"
    );
}

#[tokio::test]
async fn a_wrong_backup_is_reported_naming_its_sender_and_accepted_when_sent_again_correctly() {
    let app = spawn_unsealed().await;
    let (status, peers) = guardian_one_with_local_peers(&app).await;
    let own = &status.public_record;
    let impostor = LocalGuardian::new("guardian-2", 2, 2);
    let wrong = impostor.backup_for(own);
    let right = peers[0].backup_for(own);
    let third = peers[1].backup_for(own);

    let first = app.check_backups(json!([wrong, third])).await;
    let answer: VerificationsAnswer = parse(&first);
    assert_eq!(answer.verifications[0].owner_id, "guardian-2");
    assert!(
        !answer.verifications[0].verified,
        "the wrong backup is not verified"
    );
    assert!(answer.verifications[1].verified);
    assert_eq!(answer.verifications[1].verifier_id, "guardian-1");
    assert_eq!(
        app.guardian("guardian-1").await.stage.as_str(),
        "backups_shared"
    );

    // Finalize waits for guardian-2's backup.
    let refused = app
        .finalize(json!(all_verifications(&THREE_GUARDIANS)))
        .await;
    let problem = assert_problem(&refused, 409, "verifications");
    assert!(
        problem["detail"].as_str().unwrap().contains("guardian-2"),
        "{problem}"
    );

    // Re-sent correctly, it verifies; the verified one from guardian-3 is answered again.
    let again = app.check_backups(json!([third, right])).await;
    let answer: VerificationsAnswer = parse(&again);
    assert!(
        answer.verifications.iter().all(|check| check.verified),
        "{}",
        again.text
    );
    assert_eq!(
        app.guardian("guardian-1").await.stage.as_str(),
        "backups_verified"
    );

    // A verified backup is final: another one from the same sender is refused.
    let refused = app.check_backups(json!([wrong])).await;
    assert_problem(&refused, 409, "backups[0]");

    // Backups addressed elsewhere, from strangers, or twice from one sender: 400.
    let elsewhere = peers[1].backup_for(&peers[0].record);
    let refused = app.check_backups(json!([elsewhere])).await;
    assert_problem(&refused, 400, "backups[0].designated_id");
    let stranger = LocalGuardian::new("guardian-9", 3, 2).backup_for(own);
    let refused = app.check_backups(json!([stranger])).await;
    assert_problem(&refused, 400, "backups[0].owner_id");
    let refused = app.check_backups(json!([third, third])).await;
    assert_problem(&refused, 400, "backups[1].owner_id");
}

#[tokio::test]
async fn finalize_is_refused_until_every_verification_is_there_and_true() {
    let app = spawn_unsealed().await;
    let (status, peers) = guardian_one_with_local_peers(&app).await;
    let backups: Vec<_> = peers
        .iter()
        .map(|peer| peer.backup_for(&status.public_record))
        .collect();
    let verified = app.check_backups(json!(backups)).await;
    assert_eq!(verified.status(), 200, "{}", verified.text);
    let names = THREE_GUARDIANS;

    let mut missing = all_verifications(&names);
    missing
        .retain(|check| !(check.owner_id == "guardian-3" && check.designated_id == "guardian-2"));
    let refused = app.finalize(json!(missing)).await;
    let problem = assert_problem(&refused, 409, "verifications");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("guardian-3 → guardian-2"),
        "{problem}"
    );

    let mut failed = all_verifications(&names);
    failed[3].verified = false;
    let refused = app.finalize(json!(failed)).await;
    assert_problem(&refused, 409, "verifications[3].verified");

    let mut stranger = all_verifications(&names);
    stranger[0].owner_id = "guardian-9".into();
    let refused = app.finalize(json!(stranger)).await;
    assert_problem(&refused, 400, "verifications[0].owner_id");

    // A backup to its own sender, another guardian's verdict, a pair verified twice: each named.
    let mut confused = all_verifications(&names);
    confused[0].designated_id = confused[0].owner_id.clone();
    confused[1].verifier_id = "guardian-2".into();
    confused[3] = confused[2].clone();
    let refused = app.finalize(json!(confused)).await;
    for field in [
        "verifications[0].designated_id",
        "verifications[1].verifier_id",
        "verifications[3].owner_id",
    ] {
        assert_problem(&refused, 400, field);
    }
    assert_eq!(
        app.guardian("guardian-1").await.stage.as_str(),
        "backups_verified"
    );
    let refused = app.get(&path("guardian-1", "ceremony"), ADMIN).await;
    assert_problem(&refused, 409, "finalize");

    let record = app.finalize(json!(all_verifications(&names))).await;
    let record: CeremonyRecord = parse(&record);
    let records: Vec<ElectionPublicKey> = vec![
        status.public_record.clone(),
        peers[0].record.clone(),
        peers[1].record.clone(),
    ];
    assert_eq!(record.joint_key, combine_election_public_keys(&records));
}

#[tokio::test]
async fn steps_out_of_order_are_409_naming_the_missing_step() {
    let app = spawn_unsealed().await;
    let status = create_guardian_one(&app).await;
    let peer = LocalGuardian::new("guardian-2", 2, 2);

    let refused = app
        .check_backups(json!([peer.backup_for(&status.public_record)]))
        .await;
    assert_problem(&refused, 409, "backups");
    let refused = app.finalize(json!([])).await;
    assert_problem(&refused, 409, "backups");
    let ciphertext = encrypt(1, &status.public_record.key);
    let refused = app
        .post(
            &path("guardian-1", "decrypt"),
            ADMIN,
            json!({"extended_base_hash": hash_q(), "ciphertexts": [ciphertext]}),
        )
        .await;
    assert_problem(&refused, 409, "finalize");
    let refused = app.get(&path("guardian-1", "ceremony"), ADMIN).await;
    assert_problem(&refused, 409, "finalize");

    // Before every backup to it verified, finalize names the verifications step.
    let other = spawn_unsealed().await;
    guardian_one_with_local_peers(&other).await;
    let refused = other
        .finalize(json!(all_verifications(&THREE_GUARDIANS)))
        .await;
    let problem = assert_problem(&refused, 409, "verifications");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("guardian-2") && detail.contains("guardian-3"),
        "{detail}"
    );
}

#[tokio::test]
async fn bad_ceremony_parameters_are_400_naming_the_field_and_store_nothing() {
    let app = spawn_unsealed().await;
    for (body, field) in [
        (create_body(1, 3, 4), "quorum"),
        (create_body(1, 3, 0), "quorum"),
        (create_body(0, 3, 2), "sequence_order"),
        (create_body(4, 3, 2), "sequence_order"),
        (create_body(1, 33, 2), "number_of_guardians"),
        (create_body(1, 0, 1), "number_of_guardians"),
        (
            json!({"ceremony_id": "a/b", "sequence_order": 1, "number_of_guardians": 3, "quorum": 2}),
            "ceremony_id",
        ),
        (
            json!({"ceremony_id": CEREMONY, "sequence_order": -1, "number_of_guardians": 3, "quorum": 2}),
            "sequence_order",
        ),
        (
            json!({"ceremony_id": CEREMONY, "number_of_guardians": 3, "quorum": 2}),
            "sequence_order",
        ),
    ] {
        let refused = app.create_guardian("guardian-1", body).await;
        assert_problem(&refused, 400, field);
    }
    let unknown = app
        .create_guardian("guardian-1", json!({"ceremony_id": CEREMONY, "sequence_order": 1, "number_of_guardians": 3, "quorum": 2, "secret": 1}))
        .await;
    assert_problem(&unknown, 422, "secret");
    let refused = app
        .create_guardian("bad%2Fname", create_body(1, 3, 2))
        .await;
    assert_problem(&refused, 400, "guardian");
    let missing = app.get(&path("guardian-1", ""), ADMIN).await;
    assert_problem(&missing, 404, "guardian");

    // Created once; the same name with other parameters is a conflict.
    let created = app
        .create_guardian("guardian-1", create_body(1, 3, 2))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text);
    let conflict = app
        .create_guardian("guardian-1", create_body(2, 3, 2))
        .await;
    assert_problem(&conflict, 409, "guardian");
    assert_eq!(app.guardian("guardian-1").await.sequence_order, 1);
}

#[tokio::test]
async fn unknown_guardians_are_404_on_every_route() {
    let app = spawn_unsealed().await;
    let ciphertext = json!({"pad": "02", "data": "02"});
    for (step, body) in [
        ("backups", json!({"public_records": []})),
        ("verifications", json!({"backups": []})),
        ("finalize", json!({"verifications": []})),
        (
            "decrypt",
            json!({"extended_base_hash": "01", "ciphertexts": [ciphertext]}),
        ),
        (
            "compensate",
            json!({"missing_guardian_id": "g", "extended_base_hash": "01", "ciphertexts": [ciphertext]}),
        ),
    ] {
        let reply = app.guardian_step("nobody", step, body).await;
        assert_problem(&reply, 404, "guardian");
    }
    assert_problem(
        &app.get(&path("nobody", "ceremony"), ADMIN).await,
        404,
        "guardian",
    );
}

#[tokio::test]
async fn decryptions_check_every_element_and_answer_shares_that_verify() {
    let app = spawn_unsealed().await;
    let status = lone_finalized_guardian(&app, "solo").await;
    let key = status.joint_key.as_ref().unwrap().joint_public_key.clone();
    assert_eq!(
        key, status.public_record.key,
        "one guardian's key is the joint key"
    );
    let ebh = hash_q();
    let good: Vec<ElGamalCiphertext> = (0..5).map(|vote| encrypt(vote, &key)).collect();
    let reply = app.decryption_shares("solo", &ebh, &good).await;
    let answer: DecryptionShares = parse(&reply);
    assert_eq!(
        verify_partial_batch(&good, &answer.shares, &key, &ebh),
        Ok(())
    );
    let table = DiscreteLog::new(100);
    for (vote, (ciphertext, share)) in good.iter().zip(&answer.shares).enumerate() {
        let g_m = combine_partial_decryptions(ciphertext, &[&share.partial_decryption]);
        assert_eq!(table.find(&g_m.unwrap()), Some(vote as u64));
    }

    let not_member = ElementModP::from_hex(&"FF".repeat(300)).unwrap().to_hex();
    let body = |mutate: &dyn Fn(&mut Value)| {
        let mut body = json!({"extended_base_hash": ebh, "ciphertexts": good});
        mutate(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            body(&|b| b["ciphertexts"][3]["pad"] = json!("FF".repeat(512))),
            "ciphertexts[3].pad",
        ),
        (
            body(&|b| b["ciphertexts"][1]["data"] = json!("XYZ")),
            "ciphertexts[1].data",
        ),
        (
            body(&|b| b["ciphertexts"][2]["data"] = json!(not_member.clone())),
            "ciphertexts[2].data",
        ),
        (
            body(&|b| b["ciphertexts"][4]["pad"] = json!("00")),
            "ciphertexts[4].pad",
        ),
        (
            body(&|b| b["ciphertexts"][0]["pad"] = json!(12)),
            "ciphertexts[0].pad",
        ),
        (
            body(&|b| b["extended_base_hash"] = json!("FF".repeat(32))),
            "extended_base_hash",
        ),
        (
            body(&|b| b["extended_base_hash"] = json!("FF".repeat(33))),
            "extended_base_hash",
        ),
        (body(&|b| b["ciphertexts"] = json!([])), "ciphertexts"),
        (
            body(&|b| b["ciphertexts"] = json!(vec![good[0].clone(); 1001])),
            "ciphertexts",
        ),
    ];
    for (body, field) in cases {
        let refused = app.guardian_step("solo", "decrypt", body).await;
        let problem = assert_problem(&refused, 400, field);
        assert!(
            !refused.text.contains(&"FF".repeat(64)),
            "no value echoed: {problem}"
        );
    }
    let unknown = app
        .guardian_step("solo", "decrypt", body(&|b| b["shares"] = json!(1)))
        .await;
    assert_problem(&unknown, 422, "shares");

    // A full batch of 1,000 is answered.
    let batch: Vec<ElGamalCiphertext> = vec![good[1].clone(); 1000];
    let reply = app.decryption_shares("solo", &ebh, &batch).await;
    assert_eq!(parse::<DecryptionShares>(&reply).shares.len(), 1000);

    let metrics = app.get("/metrics", NO_TOKEN).await.text;
    for line in [
        "vottery_security_operations_total{operation=\"guardian-decrypt\",outcome=\"ok\"} 2",
        "vottery_security_operations_total{operation=\"guardian-decrypt\",outcome=\"client_error\"} 10",
        "vottery_security_operations_total{operation=\"guardian-ceremony\",outcome=\"ok\"} 4",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

// ---- policies and the seal ------------------------------------------------------------------

fn trustee_token(operations: &[&str], guardian: &str) -> TokenSettings {
    TokenSettings {
        secret: SecretString::from(format!("dev-{guardian}-{}", operations.join("-"))),
        operations: operations
            .iter()
            .map(|operation| (*operation).to_owned())
            .collect(),
        keys: vec![guardian.to_owned()],
    }
}

#[tokio::test]
async fn a_token_acts_on_its_own_guardian_only_and_user_svc_gets_403() {
    let app = spawn_unsealed_with(|settings| {
        let tokens = &mut settings.auth.tokens;
        tokens.insert(
            "one".into(),
            trustee_token(&["guardian-ceremony", "guardian-decrypt"], "guardian-1"),
        );
        tokens.insert(
            "ceremony_two".into(),
            trustee_token(&["guardian-ceremony"], "guardian-2"),
        );
    })
    .await;
    let one = Some("dev-guardian-1-guardian-ceremony-guardian-decrypt");
    let ceremony_two = Some("dev-guardian-2-guardian-ceremony");

    let created = app
        .post(&path("guardian-1", ""), one, create_body(1, 1, 1))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text);
    let refused = app
        .post(&path("guardian-2", ""), one, create_body(1, 1, 1))
        .await;
    assert_denied(&refused);
    let created = app
        .post(&path("guardian-2", ""), ceremony_two, create_body(1, 1, 1))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text);
    assert_denied(&app.get(&path("guardian-1", ""), ceremony_two).await);
    assert_denied(&app.get(&path("guardian-2", ""), one).await);

    for name in ["guardian-1", "guardian-2"] {
        let status = app.guardian(name).await;
        app.guardian_step(
            name,
            "backups",
            json!({"public_records": [status.public_record]}),
        )
        .await;
        app.guardian_step(name, "finalize", json!({"verifications": []}))
            .await;
    }
    let key = app.guardian("guardian-2").await.public_record.key;
    let decrypt = json!({"extended_base_hash": hash_q(), "ciphertexts": [encrypt(1, &key)]});
    // Ceremony steps do not grant decryptions; one guardian's token does not decrypt for another.
    assert_denied(
        &app.post(
            &path("guardian-2", "decrypt"),
            ceremony_two,
            decrypt.clone(),
        )
        .await,
    );
    assert_denied(
        &app.post(&path("guardian-2", "decrypt"), one, decrypt.clone())
            .await,
    );
    assert_eq!(
        app.post(&path("guardian-1", "decrypt"), one, decrypt.clone())
            .await
            .status(),
        200
    );

    // user-svc's token, no token and a wrong token: 403 on every route, before the body is read.
    for token in [USER, NO_TOKEN, Some("not-a-token")] {
        for (step, body) in [
            ("", Some(create_body(1, 1, 1))),
            ("", None),
            ("backups", Some(json!({}))),
            ("verifications", Some(json!({}))),
            ("finalize", Some(json!({}))),
            ("ceremony", None),
            ("decrypt", Some(decrypt.clone())),
            ("compensate", Some(json!({}))),
        ] {
            let method = if body.is_some() {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            };
            let reply = app
                .request(method, &path("guardian-1", step), token, body.as_ref())
                .await;
            assert_denied(&reply);
        }
    }
}

#[tokio::test]
async fn a_sealed_instance_answers_503() {
    let app = spawn_unsealed().await;
    lone_finalized_guardian(&app, "solo").await;
    app.seal().await;
    let reply = app.get(&path("solo", ""), ADMIN).await;
    assert_eq!(reply.status(), 503, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .starts_with("application/problem+json")
    );
    assert_eq!(reply.json["detail"], json!("Vault is sealed"));
    let reply = app.decryption_shares("solo", "01", json!([])).await;
    assert_eq!(reply.status(), 503, "{}", reply.text);
    let reply = app.create_guardian("other", create_body(1, 1, 1)).await;
    assert_eq!(reply.status(), 503, "{}", reply.text);

    let metrics = app.get("/metrics", NO_TOKEN).await.text;
    assert!(metrics.contains(
        "vottery_security_operations_total{operation=\"guardian-ceremony\",outcome=\"sealed\"} 2"
    ), "{metrics}");
}
