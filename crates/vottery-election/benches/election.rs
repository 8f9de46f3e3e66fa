//! Speed of the guardian mathematics: fixed- and variable-base exponentiation, a guardian's batch
//! of partial decryptions with proofs, the check of such a batch, and a 3-of-5 key ceremony in
//! memory. `scripts/guardians/eg_reference.py bench` times the reference doing the same work.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vottery_election::{
    ElGamalCiphertext, ElectionPolynomial, ElectionPublicKey, ElementModP, SecretModQ, ShareSet,
    all_members, combine_election_public_keys, elgamal_encrypt, g_pow_p, generate_backup,
    partially_decrypt_batch, rand_q, verify_backup, verify_partial_batch, verify_share_sets,
};

const BATCH: usize = 100;

fn ciphertexts(key: &ElementModP, count: usize) -> Vec<ElGamalCiphertext> {
    (0..count)
        .filter_map(|i| elgamal_encrypt((i % 2) as u64, &rand_q(), key))
        .collect()
}

fn exponentiation(c: &mut Criterion) {
    let mut group = c.benchmark_group("exponentiation");
    let e = rand_q();
    let secret = SecretModQ::random();
    let base = g_pow_p(&rand_q());
    group.bench_function("g_pow_p fixed base, public exponent", |b| {
        b.iter(|| g_pow_p(black_box(&e)))
    });
    group.bench_function("g^secret fixed base, constant time", |b| {
        b.iter(|| black_box(&secret).g_pow())
    });
    group.bench_function("variable base, public exponent", |b| {
        b.iter(|| black_box(&base).pow(black_box(&e)))
    });
    group.bench_function("residue check", |b| {
        b.iter(|| black_box(&base).is_valid_residue())
    });
    let elements: Vec<ElementModP> = (0..BATCH).map(|_| g_pow_p(&rand_q())).collect();
    let refs: Vec<&ElementModP> = elements.iter().collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("membership of 100, batched", |b| {
        b.iter(|| all_members(black_box(&refs)))
    });
    group.finish();
}

fn decryption(c: &mut Criterion) {
    let secret = SecretModQ::random();
    let key = secret.g_pow();
    let ebh = rand_q();
    let cts = ciphertexts(&key, BATCH);
    let shares = partially_decrypt_batch(&cts, &secret, &ebh).expect("valid ciphertexts");

    let mut group = c.benchmark_group("guardian batch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("partially_decrypt_batch of 100", |b| {
        b.iter(|| partially_decrypt_batch(black_box(&cts), &secret, &ebh))
    });
    group.bench_function("verify_partial_batch of 100", |b| {
        b.iter(|| verify_partial_batch(black_box(&cts), &shares, &key, &ebh))
    });
    let other = SecretModQ::random();
    let other_key = other.g_pow();
    let other_shares = partially_decrypt_batch(&cts, &other, &ebh).expect("valid ciphertexts");
    let sets = [
        ShareSet {
            key: &key,
            shares: &shares,
        },
        ShareSet {
            key: &other_key,
            shares: &other_shares,
        },
    ];
    group.throughput(Throughput::Elements(2 * BATCH as u64));
    group.bench_function("verify_share_sets of 2 guardians x 100", |b| {
        b.iter(|| verify_share_sets(black_box(&cts), &sets, &ebh))
    });
    group.finish();
}

fn ceremony(c: &mut Criterion) {
    let mut group = c.benchmark_group("key ceremony");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("3 of 5 in memory", |b| {
        b.iter_batched(
            || (),
            |()| {
                let polynomials: Vec<ElectionPolynomial> =
                    (0..5).map(|_| ElectionPolynomial::generate(3)).collect();
                let records: Vec<ElectionPublicKey> = polynomials
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ElectionPublicKey::new(&format!("g{}", i + 1), i as u32 + 1, p))
                    .collect();
                let all_valid = records.iter().all(|r| r.verify(3).is_ok());
                let mut verified = 0;
                for (i, sender) in polynomials.iter().enumerate() {
                    for (j, receiver) in records.iter().enumerate() {
                        if i != j {
                            let backup = generate_backup(&records[i].owner_id, sender, receiver);
                            let secret = polynomials[j].secret_key();
                            if verify_backup(&receiver.owner_id, &backup, &records[i], secret)
                                .verified
                            {
                                verified += 1;
                            }
                        }
                    }
                }
                (all_valid, verified, combine_election_public_keys(&records))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, exponentiation, decryption, ceremony);
criterion_main!(benches);
