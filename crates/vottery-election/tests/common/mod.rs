//! An in-memory key ceremony and threshold decryption, done purely with the crate, shared by the
//! integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use vottery_election::{
    ElGamalCiphertext, ElectionJointKey, ElectionPolynomial, ElectionPublicKey, ElementModP,
    ElementModQ, PartialDecryption, SecretModQ, combine_election_public_keys,
    compute_lagrange_coefficient, compute_recovery_public_key, decrypt_backup, generate_backup,
    partially_decrypt_batch, reconstruct_missing_share, verify_backup, verify_partial_batch,
};

/// One guardian's secrets and public record.
pub struct Guardian {
    pub id: String,
    pub sequence_order: u32,
    pub polynomial: ElectionPolynomial,
    pub record: ElectionPublicKey,
    /// Coordinates received from the other guardians, by sender id.
    pub received: Vec<(String, SecretModQ)>,
}

/// The outcome of a ceremony.
pub struct Ceremony {
    pub guardians: Vec<Guardian>,
    pub joint_key: ElectionJointKey,
    pub quorum: u32,
}

/// Runs a whole ceremony of `n` guardians with quorum `k`, checking every proof and backup.
pub fn run_ceremony(n: u32, k: u32) -> Ceremony {
    let mut guardians: Vec<Guardian> = (1..=n)
        .map(|order| {
            let id = format!("guardian-{order}");
            let polynomial = ElectionPolynomial::generate(k);
            let record = ElectionPublicKey::new(&id, order, &polynomial);
            Guardian {
                id,
                sequence_order: order,
                polynomial,
                record,
                received: Vec::new(),
            }
        })
        .collect();
    let records: Vec<ElectionPublicKey> = guardians.iter().map(|g| g.record.clone()).collect();
    for record in &records {
        record.verify(k).expect("every public record verifies");
    }
    let mut backups = Vec::new();
    for sender in &guardians {
        for receiver in &records {
            if receiver.owner_id != sender.id {
                backups.push(generate_backup(&sender.id, &sender.polynomial, receiver));
            }
        }
    }
    for backup in &backups {
        let sender = records
            .iter()
            .find(|r| r.owner_id == backup.owner_id)
            .expect("sender");
        let receiver = guardians
            .iter_mut()
            .find(|g| g.id == backup.designated_id)
            .expect("receiver");
        let secret = receiver.polynomial.secret_key().clone();
        let verification = verify_backup(&receiver.id, backup, sender, &secret);
        assert!(
            verification.verified,
            "backup {} → {}",
            backup.owner_id, backup.designated_id
        );
        let coordinate = decrypt_backup(backup, &secret).expect("backup decrypts");
        receiver
            .received
            .push((backup.owner_id.clone(), coordinate));
    }
    let joint_key = combine_election_public_keys(&records);
    Ceremony {
        guardians,
        joint_key,
        quorum: k,
    }
}

/// Shares of one guardian, present or compensating for a missing one.
pub struct Shares {
    pub guardian_id: String,
    pub missing_guardian_id: Option<String>,
    pub key: ElementModP,
    pub shares: Vec<PartialDecryption>,
}

impl Ceremony {
    pub fn records(&self) -> Vec<ElectionPublicKey> {
        self.guardians.iter().map(|g| g.record.clone()).collect()
    }

    pub fn guardian(&self, id: &str) -> &Guardian {
        self.guardians
            .iter()
            .find(|g| g.id == id)
            .expect("guardian")
    }

    /// Every present guardian's shares and, for each missing guardian, every present guardian's
    /// compensated shares; all proofs checked.
    pub fn decrypt_shares(
        &self,
        present: &[&str],
        cts: &[ElGamalCiphertext],
        ebh: &ElementModQ,
    ) -> Vec<Shares> {
        let mut out = Vec::new();
        for id in present {
            let guardian = self.guardian(id);
            let shares = partially_decrypt_batch(cts, guardian.polynomial.secret_key(), ebh)
                .expect("valid ciphertexts");
            verify_partial_batch(cts, &shares, &guardian.record.key, ebh).expect("valid shares");
            out.push(Shares {
                guardian_id: guardian.id.clone(),
                missing_guardian_id: None,
                key: guardian.record.key.clone(),
                shares,
            });
        }
        for missing in self
            .guardians
            .iter()
            .filter(|g| !present.contains(&g.id.as_str()))
        {
            for id in present {
                let guardian = self.guardian(id);
                let coordinate = &guardian
                    .received
                    .iter()
                    .find(|(sender, _)| *sender == missing.id)
                    .expect("coordinate from the missing guardian")
                    .1;
                let recovery =
                    compute_recovery_public_key(guardian.sequence_order, &missing.record);
                assert_eq!(coordinate.g_pow(), recovery);
                let shares = partially_decrypt_batch(cts, coordinate, ebh).expect("valid");
                verify_partial_batch(cts, &shares, &recovery, ebh).expect("valid compensated");
                out.push(Shares {
                    guardian_id: guardian.id.clone(),
                    missing_guardian_id: Some(missing.id.clone()),
                    key: recovery,
                    shares,
                });
            }
        }
        out
    }

    /// g^m for each ciphertext: present shares times each missing share rebuilt with Lagrange
    /// coefficients over the present guardians.
    pub fn combine(
        &self,
        present: &[&str],
        cts: &[ElGamalCiphertext],
        shares: &[Shares],
    ) -> Vec<ElementModP> {
        let orders: Vec<u32> = present
            .iter()
            .map(|id| self.guardian(id).sequence_order)
            .collect();
        cts.iter()
            .enumerate()
            .map(|(i, ct)| {
                let mut values: Vec<ElementModP> = shares
                    .iter()
                    .filter(|s| s.missing_guardian_id.is_none())
                    .map(|s| s.shares[i].partial_decryption.clone())
                    .collect();
                for missing in self
                    .guardians
                    .iter()
                    .filter(|g| !present.contains(&g.id.as_str()))
                {
                    let parts: Vec<(ElementModP, ElementModQ)> = shares
                        .iter()
                        .filter(|s| s.missing_guardian_id.as_deref() == Some(missing.id.as_str()))
                        .map(|s| {
                            let order = self.guardian(&s.guardian_id).sequence_order;
                            let others: Vec<u32> =
                                orders.iter().copied().filter(|o| *o != order).collect();
                            let weight = compute_lagrange_coefficient(order, &others).expect("w");
                            (s.shares[i].partial_decryption.clone(), weight)
                        })
                        .collect();
                    let refs: Vec<(&ElementModP, &ElementModQ)> =
                        parts.iter().map(|(m, w)| (m, w)).collect();
                    values.push(reconstruct_missing_share(&refs));
                }
                let refs: Vec<&ElementModP> = values.iter().collect();
                vottery_election::combine_partial_decryptions(ct, &refs).expect("non-zero shares")
            })
            .collect()
    }
}
