//! In-process cost of the transit operations, without HTTP: what each request spends on crypto.
//! Run with `scripts/bench.sh crypto` (or `cargo bench -p security-svc --bench transit`).

#![allow(clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use security_svc::keys::contexts::{ContextHasher, ContextKeyCache};
use security_svc::keys::hash::HashAlgorithm;
use security_svc::keys::material::VersionMaterial;
use security_svc::keys::ops::{self, CipherInputs, KeyFlags, Marshaling, RsaPadding, SignOptions};
use security_svc::seal::barrier::RootKey;
use std::hint::black_box;
use std::sync::Arc;
use vottery_common::transit::KeyType;
use zeroize::Zeroizing;

const FLAGS: KeyFlags = KeyFlags {
    derived: false,
    convergent: false,
};

fn material(key_type: KeyType) -> VersionMaterial {
    let encoded = VersionMaterial::generate(key_type, 32).expect("key generation");
    VersionMaterial::decode(key_type, &encoded).expect("key decoding")
}

fn options() -> SignOptions<'static> {
    SignOptions {
        hash: HashAlgorithm::Sha2_256,
        prehashed: false,
        padding: RsaPadding::Pss,
        marshaling: Marshaling::Asn1,
        context: None,
    }
}

fn encryption(c: &mut Criterion) {
    let aes = material(KeyType::Aes256Gcm96);
    let plaintext = [7u8; 64];
    let aad = b"vottery_users:42:sngine_email";
    let inputs = CipherInputs {
        associated_data: Some(aad),
        ..CipherInputs::default()
    };
    let sealed = ops::encrypt(&aes, FLAGS, &plaintext, inputs).expect("setup");

    let mut group = c.benchmark_group("aes256-gcm96");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt 64 B", |b| {
        b.iter(|| ops::encrypt(&aes, FLAGS, black_box(&plaintext), inputs))
    });
    group.bench_function("decrypt 64 B", |b| {
        b.iter(|| ops::decrypt(&aes, FLAGS, black_box(&sealed), inputs))
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("encrypt 100 x 64 B", |b| {
        b.iter(|| {
            (0..100)
                .filter_map(|_| ops::encrypt(&aes, FLAGS, black_box(&plaintext), inputs).ok())
                .collect::<Vec<_>>()
        })
    });
    group.finish();

    let hmac = material(KeyType::Hmac);
    c.bench_function("hmac sha2-256 32 B", |b| {
        b.iter(|| {
            ops::hmac(
                &hmac,
                HashAlgorithm::Sha2_256,
                black_box(b"test@example.com"),
            )
        })
    });
}

/// A value sealed and opened again: with the key as stored, and with a context's data key
/// found in the cache (the context hashed, the cache looked up, the key derived per value).
fn context_keys(c: &mut Criterion) {
    let aes = material(KeyType::Aes256Gcm96);
    let plaintext = [7u8; 64];
    let aad = b"vottery_users:42:sngine_email";
    let plain_inputs = CipherInputs {
        associated_data: Some(aad),
        ..CipherInputs::default()
    };
    let hasher = ContextHasher::new(&RootKey::from_bytes(Zeroizing::new([3u8; 32])));
    let cache = ContextKeyCache::new(10_000);
    for user in 0..10_000u32 {
        let hash = hasher.hash("vottery-users-pii", user.to_string().as_bytes());
        cache.put(hash, Arc::new(Zeroizing::new([user as u8; 32])), 1);
    }
    let mut group = c.benchmark_group("context keys");
    group.throughput(Throughput::Elements(1));
    group.bench_function("plain key: encrypt + decrypt 64 B", |b| {
        b.iter(|| {
            let sealed =
                ops::encrypt(&aes, FLAGS, black_box(&plaintext), plain_inputs).expect("encrypt");
            ops::decrypt(&aes, FLAGS, &sealed, plain_inputs).expect("decrypt")
        })
    });
    group.bench_function("cached context key: encrypt + decrypt 64 B", |b| {
        b.iter(|| {
            let context = black_box(b"4242");
            let hash = hasher.hash("vottery-users-pii", context);
            let key = cache.get(hash, 1).expect("cached");
            let inputs = CipherInputs {
                context: Some(context),
                data_key: Some(&key),
                ..plain_inputs
            };
            let sealed = ops::encrypt(&aes, FLAGS, black_box(&plaintext), inputs).expect("encrypt");
            ops::decrypt(&aes, FLAGS, &sealed, inputs).expect("decrypt")
        })
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let digest = [9u8; 32];
    for key_type in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa2048] {
        let key = material(key_type);
        let signed = ops::sign(&key, FLAGS, &digest, &options()).expect("setup");
        let mut group = c.benchmark_group(key_type.as_str());
        group.bench_function("sign", |b| {
            b.iter(|| ops::sign(&key, FLAGS, black_box(&digest), &options()))
        });
        group.bench_function("verify", |b| {
            b.iter(|| ops::verify(&key, FLAGS, black_box(&digest), &signed.bytes, &options()))
        });
        group.finish();
    }
}

criterion_group!(benches, encryption, context_keys, signatures);
criterion_main!(benches);
