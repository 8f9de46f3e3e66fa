//! Behaviour of the crate end to end: encryption round trips, homomorphic sums, a 3-of-5
//! ceremony decrypting with guardians missing, and refusal of tampered or malformed values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vottery_election::{
    ChaumPedersenProof, DiscreteLog, ElGamalCiphertext, ElectionPolynomial, ElectionPublicKey,
    ElementModP, ElementModQ, GroupError, ProofError, SchnorrProof, SecretModQ, ShareSet,
    elgamal_add, elgamal_encrypt, generate_backup, hashed_elgamal_encrypt, partially_decrypt,
    partially_decrypt_batch, rand_q, verify_backup, verify_partial, verify_partial_batch,
    verify_share_sets,
};

fn nonzero_nonce() -> ElementModQ {
    loop {
        let nonce = rand_q();
        if !nonce.is_zero() {
            return nonce;
        }
    }
}

#[test]
fn encryptions_decrypt_to_their_message_and_add_homomorphically() {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let table = DiscreteLog::new(1_000);
    let messages = [0u64, 1, 7, 42, 1];
    let cts: Vec<ElGamalCiphertext> = messages
        .iter()
        .map(|m| elgamal_encrypt(*m, &nonzero_nonce(), &key).unwrap())
        .collect();
    for (ct, m) in cts.iter().zip(messages) {
        assert!(ct.is_valid_residue());
        assert_eq!(table.find(&ct.decrypt_to_g_m(&secret).unwrap()), Some(m));
    }
    let sum = elgamal_add(&cts).unwrap();
    assert_eq!(table.find(&sum.decrypt_to_g_m(&secret).unwrap()), Some(51));
    assert!(elgamal_add(&[]).is_none());
    assert!(elgamal_encrypt(1, &ElementModQ::zero(), &key).is_none());
}

#[test]
fn a_three_of_five_ceremony_decrypts_with_every_guardian_and_with_two_missing() {
    let ceremony = common::run_ceremony(5, 3);
    let key = &ceremony.joint_key.joint_public_key;
    let ebh = rand_q();
    let votes = [1u64, 0, 1, 1, 0, 1];
    let cts: Vec<ElGamalCiphertext> = votes
        .iter()
        .map(|m| elgamal_encrypt(*m, &nonzero_nonce(), key).unwrap())
        .collect();
    let tally = elgamal_add(&cts).unwrap();
    let mut all = cts.clone();
    all.push(tally);
    let table = DiscreteLog::new(100);
    let mut expected: Vec<u64> = votes.to_vec();
    expected.push(votes.iter().sum());

    let everyone = [
        "guardian-1",
        "guardian-2",
        "guardian-3",
        "guardian-4",
        "guardian-5",
    ];
    let shares = ceremony.decrypt_shares(&everyone, &all, &ebh);
    let found: Vec<Option<u64>> = ceremony
        .combine(&everyone, &all, &shares)
        .iter()
        .map(|g_m| table.find(g_m))
        .collect();
    assert_eq!(found, expected.iter().map(|m| Some(*m)).collect::<Vec<_>>());

    let quorum = ["guardian-2", "guardian-4", "guardian-5"];
    let shares = ceremony.decrypt_shares(&quorum, &all, &ebh);
    assert_eq!(shares.len(), 3 + 2 * 3);
    let found: Vec<Option<u64>> = ceremony
        .combine(&quorum, &all, &shares)
        .iter()
        .map(|g_m| table.find(g_m))
        .collect();
    assert_eq!(found, expected.iter().map(|m| Some(*m)).collect::<Vec<_>>());
}

#[test]
fn a_tampered_public_record_is_refused_naming_the_coefficient() {
    let poly = ElectionPolynomial::generate(3);
    let record = ElectionPublicKey::new("guardian-1", 1, &poly);
    assert_eq!(record.verify(3), Ok(()));
    assert!(matches!(
        record.verify(2),
        Err(ProofError::WrongLength { .. })
    ));

    let mut tampered = record.clone();
    tampered.coefficient_proofs[2].response = tampered.coefficient_proofs[2]
        .response
        .add(&ElementModQ::one());
    assert_eq!(
        tampered.verify(3),
        Err(ProofError::InvalidProof { index: 2 })
    );

    let mut swapped = record.clone();
    swapped.key = swapped.coefficient_commitments[1].clone();
    assert_eq!(swapped.verify(3), Err(ProofError::KeyMismatch));

    let mut foreign = record.clone();
    foreign.coefficient_proofs[1] = foreign.coefficient_proofs[0].clone();
    assert_eq!(
        foreign.verify(3),
        Err(ProofError::ProofNotForCommitment { index: 1 })
    );
}

#[test]
fn a_schnorr_proof_for_a_non_residue_key_is_invalid() {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let proof = SchnorrProof::make(&secret, &key);
    assert!(proof.is_valid());
    let mut bad = proof.clone();
    bad.public_key = ElementModP::from_hex("02").unwrap().mul(&key);
    assert!(!bad.is_valid());
    let mut bad = proof;
    bad.challenge = bad.challenge.add(&ElementModQ::one());
    assert!(!bad.is_valid());
}

#[test]
fn a_wrong_backup_is_not_verified_and_a_foreign_one_does_not_decrypt() {
    let sender = ElectionPolynomial::generate(2);
    let sender_record = ElectionPublicKey::new("guardian-1", 1, &sender);
    let receiver = ElectionPolynomial::generate(2);
    let receiver_record = ElectionPublicKey::new("guardian-2", 2, &receiver);
    let backup = generate_backup("guardian-1", &sender, &receiver_record);
    assert!(verify_backup("guardian-2", &backup, &sender_record, receiver.secret_key()).verified);

    // A coordinate of another polynomial.
    let impostor = ElectionPolynomial::generate(2);
    let wrong = generate_backup("guardian-1", &impostor, &receiver_record);
    assert!(!verify_backup("guardian-2", &wrong, &sender_record, receiver.secret_key()).verified);

    // Tampered ciphertext.
    let mut tampered = backup.clone();
    tampered.encrypted_coordinate.mac.replace_range(0..2, "00");
    assert!(
        !verify_backup(
            "guardian-2",
            &tampered,
            &sender_record,
            receiver.secret_key()
        )
        .verified
    );

    // Addressed to the wrong receiver.
    assert!(!verify_backup("guardian-2", &backup, &sender_record, &SecretModQ::random()).verified);
}

#[test]
fn forged_partial_decryptions_are_refused_at_their_index() {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let ebh = rand_q();
    let cts: Vec<ElGamalCiphertext> = (0..5)
        .map(|m| elgamal_encrypt(m, &nonzero_nonce(), &key).unwrap())
        .collect();
    let shares = partially_decrypt_batch(&cts, &secret, &ebh).unwrap();
    assert_eq!(verify_partial_batch(&cts, &shares, &key, &ebh), Ok(()));

    let mut forged = shares.clone();
    forged[3].partial_decryption = forged[3].partial_decryption.mul(&ElementModP::generator());
    assert_eq!(verify_partial_batch(&cts, &forged, &key, &ebh), Err(3));

    let mut forged = shares.clone();
    forged[1].proof.response = forged[1].proof.response.add(&ElementModQ::one());
    assert_eq!(verify_partial_batch(&cts, &forged, &key, &ebh), Err(1));

    assert_eq!(verify_partial_batch(&cts, &shares, &key, &rand_q()), Err(0));
    assert_eq!(verify_partial_batch(&cts, &shares[..4], &key, &ebh), Err(4));
    let other = SecretModQ::random().g_pow();
    assert_eq!(verify_partial_batch(&cts, &shares, &other, &ebh), Err(0));
    assert!(verify_partial(&cts[2], &shares[2], &key, &ebh));
    assert!(!verify_partial(&cts[2], &shares[3], &key, &ebh));
}

#[test]
fn a_non_residue_ciphertext_is_neither_decrypted_nor_accepted() {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let ebh = rand_q();
    let good = elgamal_encrypt(1, &nonzero_nonce(), &key).unwrap();
    // −α: the same α times the element of order 2.
    let two = ElementModP::from_hex("02").unwrap();
    let bad = ElGamalCiphertext {
        pad: good.pad.mul(&two),
        data: good.data.clone(),
    };
    assert!(!bad.is_valid_residue());
    assert!(partially_decrypt(&bad, &secret, &ebh).is_none());
    assert_eq!(
        partially_decrypt_batch(&[good.clone(), bad.clone()], &secret, &ebh).err(),
        Some(1)
    );

    // A proof made over a non-residue β is refused as the reference refuses it.
    let bad_beta = ElGamalCiphertext {
        pad: good.pad.clone(),
        data: good.data.mul(&two),
    };
    let share = partially_decrypt(&bad_beta, &secret, &ebh).unwrap();
    assert!(!verify_partial(&bad_beta, &share, &key, &ebh));
    let m = bad_beta.partial_decrypt(&secret);
    let proof = ChaumPedersenProof::make(&bad_beta, &secret, &m, &rand_q(), &ebh);
    assert!(!proof.is_valid(&bad_beta, &key, &m, &ebh));
}

#[test]
fn out_of_range_and_non_residue_text_is_refused() {
    assert_eq!(ElementModP::from_hex(""), Err(GroupError::NotHex));
    assert_eq!(
        ElementModP::from_hex(&"F".repeat(1024)),
        Err(GroupError::OutOfRange)
    );
    assert_eq!(
        ElementModP::from_hex(&"1".repeat(1026)),
        Err(GroupError::OutOfRange)
    );
    assert_eq!(ElementModP::from_hex("zz"), Err(GroupError::NotHex));
    assert_eq!(
        ElementModP::from_hex_residue("02"),
        Err(GroupError::NotAResidue)
    );
    assert_eq!(
        ElementModP::from_hex_residue("00"),
        Err(GroupError::NotAResidue)
    );
    assert_eq!(
        ElementModQ::from_hex(&"F".repeat(64)),
        Err(GroupError::OutOfRange)
    );
    let json = format!("\"{}\"", "F".repeat(64));
    assert!(serde_json::from_str::<ElementModQ>(&json).is_err());
    assert!(serde_json::from_str::<ElementModQ>("\"0A\"").is_ok());
}

#[test]
fn a_polynomial_survives_its_secret_encoding_and_refuses_a_damaged_one() {
    let poly = ElectionPolynomial::generate(4);
    let bytes = poly.to_secret_bytes();
    let back = ElectionPolynomial::from_secret_bytes(&bytes).unwrap();
    assert_eq!(back.commitments(), poly.commitments());
    assert_eq!(back.proofs(), poly.proofs());
    assert_eq!(back.public_key(), poly.public_key());
    assert_eq!(back.quorum(), 4);
    assert!(ElectionPolynomial::from_secret_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut damaged = bytes.to_vec();
    damaged[40] ^= 1;
    assert!(ElectionPolynomial::from_secret_bytes(&damaged).is_err());
    assert!(ElectionPolynomial::from_secret_bytes(&[]).is_err());
}

#[test]
fn hashed_elgamal_round_trips_a_padded_message_and_refuses_a_wrong_key() {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let seed = rand_q();
    let mut message = vec![0u8; 512];
    message[..7].copy_from_slice(b"\x00\x05hello");
    let ct = hashed_elgamal_encrypt(&message, &nonzero_nonce(), &key, &seed);
    assert_eq!(
        ct.decrypt(&secret, &seed).unwrap().as_slice(),
        message.as_slice()
    );
    assert!(ct.decrypt(&SecretModQ::random(), &seed).is_none());
    assert!(ct.decrypt(&secret, &rand_q()).is_none());
}

#[test]
fn share_sets_of_several_guardians_are_checked_together_and_a_forgery_is_named() {
    let secrets: Vec<SecretModQ> = (0..3).map(|_| SecretModQ::random()).collect();
    let keys: Vec<ElementModP> = secrets.iter().map(SecretModQ::g_pow).collect();
    let joint = keys.iter().fold(ElementModP::one(), |k, key| k.mul(key));
    let ebh = rand_q();
    let cts: Vec<ElGamalCiphertext> = (0..4)
        .map(|m| elgamal_encrypt(m, &nonzero_nonce(), &joint).unwrap())
        .collect();
    let mut shares: Vec<_> = secrets
        .iter()
        .map(|s| partially_decrypt_batch(&cts, s, &ebh).unwrap())
        .collect();
    let sets = |shares: &[Vec<vottery_election::PartialDecryption>]| -> Result<(), (usize, usize)> {
        let sets: Vec<ShareSet<'_>> = keys
            .iter()
            .zip(shares)
            .map(|(key, shares)| ShareSet { key, shares })
            .collect();
        verify_share_sets(&cts, &sets, &ebh)
    };
    assert_eq!(sets(&shares), Ok(()));
    shares[2][1].proof.challenge = shares[2][1].proof.challenge.add(&ElementModQ::one());
    assert_eq!(sets(&shares), Err((2, 1)));
    shares[1].pop();
    assert_eq!(sets(&shares), Err((1, 3)));
}
