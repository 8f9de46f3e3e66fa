//! Known answers from the ElectionGuard 1.4.0 reference (`scripts/guardians/eg_reference.py
//! vectors` wrote `vectors.json`): the crate must compute exactly the same numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use vottery_election::{
    ChaumPedersenProof, DiscreteLog, ElGamalCiphertext, ElectionJointKey, ElectionPolynomial,
    ElectionPublicKey, ElementModP, ElementModQ, Hashable, HashedElGamalCiphertext, SchnorrProof,
    SecretModQ, combine_election_public_keys, compute_lagrange_coefficient,
    compute_polynomial_coordinate, compute_recovery_public_key, decrypt_backup, elgamal_encrypt,
    g_pow_p, generate_backup_with_nonce, hash_elems, hashed_elgamal_encrypt,
    verify_polynomial_coordinate,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors.json")).expect("vectors.json is JSON")
}

fn p(value: &Value) -> ElementModP {
    ElementModP::from_hex(value.as_str().expect("hex")).expect("element mod p")
}

fn q(value: &Value) -> ElementModQ {
    ElementModQ::from_hex(value.as_str().expect("hex")).expect("element mod q")
}

fn secret(value: &Value) -> SecretModQ {
    SecretModQ::from_element(&q(value))
}

/// Owned hash inputs, so that `Hashable` can borrow them.
enum Input {
    P(Box<ElementModP>),
    Q(ElementModQ),
    Str(String),
    Int(u64),
    Seq(Vec<Input>),
    Null,
}

fn input(value: &Value) -> Input {
    let object = value.as_object().expect("typed input");
    if let Some(v) = object.get("p") {
        Input::P(Box::new(p(v)))
    } else if let Some(v) = object.get("q") {
        Input::Q(q(v))
    } else if let Some(v) = object.get("str") {
        Input::Str(v.as_str().expect("str").to_owned())
    } else if let Some(v) = object.get("int") {
        Input::Int(v.as_u64().expect("int"))
    } else if let Some(v) = object.get("seq") {
        Input::Seq(v.as_array().expect("seq").iter().map(input).collect())
    } else {
        Input::Null
    }
}

fn hashable(input: &Input) -> Hashable<'_> {
    match input {
        Input::P(v) => Hashable::P(v),
        Input::Q(v) => Hashable::Q(v),
        Input::Str(v) => Hashable::Str(v),
        Input::Int(v) => Hashable::Int(*v),
        Input::Seq(items) => Hashable::Seq(items.iter().map(hashable).collect()),
        Input::Null => Hashable::Null,
    }
}

#[test]
fn hash_elems_matches_the_reference_over_mixed_inputs() {
    for case in vectors()["hash_elems"].as_array().unwrap() {
        let inputs: Vec<Input> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(input)
            .collect();
        let items: Vec<Hashable<'_>> = inputs.iter().map(hashable).collect();
        assert_eq!(hash_elems(&items), q(&case["hash"]), "{}", case["inputs"]);
    }
}

#[test]
fn powers_of_g_and_of_other_bases_match_the_reference() {
    let v = vectors();
    for case in v["g_pow_p"].as_array().unwrap() {
        let e = q(&case["e"]);
        assert_eq!(g_pow_p(&e), p(&case["result"]));
        assert_eq!(SecretModQ::from_element(&e).g_pow(), p(&case["result"]));
    }
    for case in v["pow_p"].as_array().unwrap() {
        assert_eq!(p(&case["base"]).pow(&q(&case["e"])), p(&case["result"]));
    }
}

#[test]
fn elgamal_encryption_with_a_fixed_nonce_matches_the_reference() {
    for case in vectors()["elgamal_encrypt"].as_array().unwrap() {
        let expected: ElGamalCiphertext =
            serde_json::from_value(case["ciphertext"].clone()).unwrap();
        let ct = elgamal_encrypt(
            case["message"].as_u64().unwrap(),
            &q(&case["nonce"]),
            &p(&case["public_key"]),
        )
        .unwrap();
        assert_eq!(ct, expected);
    }
}

#[test]
fn a_schnorr_proof_with_a_fixed_nonce_matches_the_reference() {
    let v = &vectors()["schnorr"];
    let expected: SchnorrProof = serde_json::from_value(v["proof"].clone()).unwrap();
    let s = secret(&v["secret"]);
    let proof = SchnorrProof::make_with_nonce(&s, &s.g_pow(), &secret(&v["nonce"]));
    assert_eq!(proof, expected);
    assert!(expected.is_valid());
    assert_eq!(serde_json::to_value(&proof).unwrap(), v["proof"]);
}

#[test]
fn a_chaum_pedersen_proof_with_a_fixed_seed_matches_the_reference() {
    let v = &vectors()["chaum_pedersen"];
    let ct: ElGamalCiphertext = serde_json::from_value(v["ciphertext"].clone()).unwrap();
    let expected: ChaumPedersenProof = serde_json::from_value(v["proof"].clone()).unwrap();
    let s = secret(&v["secret"]);
    let m = p(&v["m"]);
    assert_eq!(ct.partial_decrypt(&s), m);
    let proof = ChaumPedersenProof::make(&ct, &s, &m, &q(&v["seed"]), &q(&v["hash_header"]));
    assert_eq!(proof, expected);
    assert!(proof.is_valid(&ct, &p(&v["public_key"]), &m, &q(&v["hash_header"])));
    assert_eq!(serde_json::to_value(&proof).unwrap(), v["proof"]);
}

#[test]
fn a_polynomial_from_a_fixed_nonce_has_the_references_coefficients_and_coordinates() {
    let v = &vectors()["polynomial"];
    let poly = ElectionPolynomial::generate_with_nonce(
        v["quorum"].as_u64().unwrap() as u32,
        &q(&v["nonce"]),
    );
    let commitments: Vec<ElementModP> =
        v["commitments"].as_array().unwrap().iter().map(p).collect();
    assert_eq!(poly.commitments(), commitments);
    let secret_bytes = poly.to_secret_bytes();
    let coefficient = &v["coefficients"][0];
    assert_eq!(
        &secret_bytes[3..35],
        q(coefficient).to_be_bytes().as_slice()
    );
    for (order, value) in v["coordinates"].as_object().unwrap() {
        let order: u32 = order.parse().unwrap();
        let coordinate = compute_polynomial_coordinate(order, &poly);
        assert_eq!(coordinate.to_be_bytes().as_ref(), &q(value).to_be_bytes());
        assert!(verify_polynomial_coordinate(
            &coordinate,
            order,
            &commitments
        ));
        assert!(!verify_polynomial_coordinate(
            &coordinate,
            order + 1,
            &commitments
        ));
    }
}

#[test]
fn lagrange_coefficients_match_the_reference() {
    for case in vectors()["lagrange"].as_array().unwrap() {
        let degrees: Vec<u32> = case["degrees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as u32)
            .collect();
        let coordinate = case["coordinate"].as_u64().unwrap() as u32;
        assert_eq!(
            compute_lagrange_coefficient(coordinate, &degrees),
            Some(q(&case["result"]))
        );
    }
}

#[test]
fn hashed_elgamal_with_a_fixed_nonce_matches_the_reference() {
    for case in vectors()["hashed_elgamal"].as_array().unwrap() {
        let expected: HashedElGamalCiphertext =
            serde_json::from_value(case["ciphertext"].clone()).unwrap();
        let message = hex::decode(case["message"].as_str().unwrap()).unwrap();
        let ct = hashed_elgamal_encrypt(
            &message,
            &q(&case["nonce"]),
            &p(&case["public_key"]),
            &q(&case["seed"]),
        );
        assert_eq!(ct, expected);
    }
}

#[test]
fn a_partial_key_backup_is_the_references_and_decrypts_to_its_coordinate() {
    let v = &vectors()["backup"];
    let receiver: ElectionPublicKey = serde_json::from_value(v["receiver"].clone()).unwrap();
    let poly = ElectionPolynomial::generate_with_nonce(
        v["owner_quorum"].as_u64().unwrap() as u32,
        &q(&v["owner_nonce"]),
    );
    let owner_id = v["owner_id"].as_str().unwrap();
    let backup = generate_backup_with_nonce(owner_id, &poly, &receiver, &q(&v["nonce"]));
    let expected: HashedElGamalCiphertext =
        serde_json::from_value(v["encrypted_coordinate"].clone()).unwrap();
    assert_eq!(backup.encrypted_coordinate, expected);
    let coordinate = decrypt_backup(&backup, &secret(&v["receiver_secret"])).unwrap();
    assert_eq!(
        coordinate.to_be_bytes().as_ref(),
        &q(&v["coordinate"]).to_be_bytes()
    );
    assert!(decrypt_backup(&backup, &SecretModQ::random()).is_none());
}

#[test]
fn the_joint_key_and_commitment_hash_match_the_reference() {
    let v = &vectors()["joint_key"];
    let records: Vec<ElectionPublicKey> =
        serde_json::from_value(v["public_records"].clone()).unwrap();
    for record in &records {
        record.verify(2).unwrap();
    }
    let expected: ElectionJointKey = serde_json::from_value(v["joint_key"].clone()).unwrap();
    assert_eq!(combine_election_public_keys(&records), expected);
    assert_eq!(serde_json::to_value(&records).unwrap(), v["public_records"]);
}

#[test]
fn the_recovery_public_key_matches_the_reference() {
    let v = &vectors()["recovery"];
    let missing: ElectionPublicKey = serde_json::from_value(v["missing"].clone()).unwrap();
    let order = v["sequence_order"].as_u64().unwrap() as u32;
    assert_eq!(
        compute_recovery_public_key(order, &missing),
        p(&v["result"])
    );
}

#[test]
fn discrete_logs_match_the_reference() {
    let table = DiscreteLog::new(10_000);
    for case in vectors()["discrete_log"].as_array().unwrap() {
        assert_eq!(table.find(&p(&case["g_m"])), case["m"].as_u64());
    }
}
