//! In-process cost of the transit operations, without HTTP: what each request spends on crypto.
//! Run with `scripts/bench.sh crypto` (or `cargo bench -p security-svc --bench transit`).

#![allow(clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use security_svc::keys::contexts::{
    ContextDataKey, ContextHasher, ContextKeyCache, ContextKeys, ContextUse,
};
use security_svc::keys::hash::HashAlgorithm;
use security_svc::keys::material::VersionMaterial;
use security_svc::keys::ops::{
    self, CipherInputs, KeyFlags, Marshaling, RsaPadding, SealingKeys, SignOptions,
};
use security_svc::keys::rules::NewKey;
use security_svc::keys::store::{KeyStore, StoreSettings};
use security_svc::keys::wire::encode_b64;
use security_svc::keys::{KeyRing, KeyVersion, Purpose};
use security_svc::seal::barrier::RootKey;
use std::hint::black_box;
use std::sync::Arc;
use vottery_common::transit::KeyType;
use vottery_test_db::{Template, TestDatabase};
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

/// Cipher inputs binding a value to its row and column, as user-svc's are.
fn bound_to_a_column() -> CipherInputs<'static> {
    CipherInputs {
        associated_data: Some(b"vottery_users:42:sngine_email"),
        ..CipherInputs::default()
    }
}

fn encryption(c: &mut Criterion) {
    let aes = material(KeyType::Aes256Gcm96);
    let plaintext = [7u8; 64];
    let inputs = bound_to_a_column();
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
    let plain_inputs = bound_to_a_column();
    let hasher = ContextHasher::new(&RootKey::from_bytes(Zeroizing::new([3u8; 32])));
    let cache = ContextKeyCache::new(10_000);
    for user in 0..10_000u32 {
        let hash = hasher.hash("vottery-users-pii", user.to_string().as_bytes());
        let key = ContextDataKey::new(Arc::new(Zeroizing::new([user as u8; 32])));
        cache.put(hash, key, 1, cache.destructions());
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
                data_key: Some(key.key()),
                ..plain_inputs
            };
            let sealed = ops::encrypt(&aes, FLAGS, black_box(&plaintext), inputs).expect("encrypt");
            ops::decrypt(&aes, FLAGS, &sealed, inputs).expect("decrypt")
        })
    });
    group.finish();
}

static SECURITY_SVC: Template = Template::new("secbench", &[|| security_svc::MIGRATIONS]);

/// A key store over a database of its own, with a plain key and a `context_keys` key.
struct StoreBench {
    runtime: tokio::runtime::Runtime,
    store: KeyStore,
    plain: Arc<KeyRing>,
    per_context: Arc<KeyRing>,
    _database: Arc<TestDatabase>,
}

impl StoreBench {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (store, plain, per_context, database) = runtime.block_on(async {
            let database = TestDatabase::migrated("secbench", &SECURITY_SVC).await;
            let mut settings = vottery_test_db::server_settings();
            settings.url = database.url.clone().into();
            settings.max_connections = 4;
            let pool = vottery_server::db::build_pool(&settings).expect("pool");
            let store = KeyStore::new(
                RootKey::from_bytes(Zeroizing::new([5u8; 32])),
                pool,
                StoreSettings {
                    max_cached_keys: 100,
                    remembered_signatures: 0,
                    context_key_cache: 100_000,
                },
            );
            let plain = NewKey::for_upsert(KeyType::Aes256Gcm96, false, false);
            let per_context = NewKey {
                context_keys: true,
                ..plain
            };
            let plain = store.create("plain", plain).await.expect("plain key");
            let per_context = store.create("pii", per_context).await.expect("pii key");
            (store, plain, per_context, database)
        });
        Self {
            runtime,
            store,
            plain,
            per_context,
            _database: database,
        }
    }

    /// The data keys of the contexts a request names, as the transit routes resolve them.
    fn resolve(&self, contexts: &[String], usage: ContextUse) -> ContextKeys {
        let named = contexts.iter().map(|context| Some(context.as_str()));
        self.runtime
            .block_on(self.store.context_keys(&self.per_context, named, usage))
            .expect("context keys")
    }
}

/// Seals `plaintext` with the ring's latest version, under `context` when it has context keys
/// (with the context's key for that version, derived once per request), as the routes do.
fn seal_item(
    ring: &KeyRing,
    contexts: &ContextKeys,
    keys: &mut SealingKeys,
    context: Option<&[u8]>,
    plaintext: &[u8],
) -> Vec<u8> {
    let version = ring
        .version_for(Purpose::Encryption, None)
        .expect("version");
    let own = own_sealing(contexts, context, version);
    ops::encrypt_under(
        own.as_deref(),
        keys,
        version,
        ring.flags(),
        plaintext,
        under(context),
    )
    .expect("encrypt")
}

/// The context's own sealing key for `version`, for a ring with context keys.
fn own_sealing(
    contexts: &ContextKeys,
    context: Option<&[u8]>,
    version: &KeyVersion,
) -> Option<Arc<VersionMaterial>> {
    let data_key = contexts.key_for(context).expect("data key")?;
    Some(data_key.sealing(version).expect("sealing key"))
}

/// Cipher inputs naming `context` and nothing else.
fn under(context: Option<&[u8]>) -> CipherInputs<'_> {
    CipherInputs {
        context,
        ..CipherInputs::default()
    }
}

/// Opens what [`seal_item`] made.
fn open_item(
    ring: &KeyRing,
    contexts: &ContextKeys,
    context: Option<&[u8]>,
    sealed: &[u8],
) -> Zeroizing<Vec<u8>> {
    let version = ring
        .versions
        .get(&ring.config.latest_version)
        .expect("version");
    let own = own_sealing(contexts, context, version);
    let material = own.as_deref().unwrap_or(&version.material);
    ops::decrypt(material, ring.flags(), sealed, under(context)).expect("decrypt")
}

/// What user-svc asks of a `context_keys` key next to the same with a plain key: a new user's
/// five values under a context never seen before (a data key made and stored), and a page of
/// 100 values over 20 users whose data keys are cached.
fn context_key_requests(c: &mut Criterion) {
    let bench = StoreBench::new();
    let plaintext = [7u8; 64];
    let mut group = c.benchmark_group("context key requests");
    group.sample_size(30);

    group.throughput(Throughput::Elements(5));
    group.bench_function("plain key: encrypt 5 values", |b| {
        b.iter(|| {
            let ring = bench.store.cached("plain").expect("cached");
            let mut keys = SealingKeys::default();
            (0..5)
                .map(|_| seal_item(&ring, &ContextKeys::default(), &mut keys, None, &plaintext))
                .collect::<Vec<_>>()
        })
    });
    let mut user = 0u64;
    group.bench_function("context keys: encrypt 5 values under a new context", |b| {
        b.iter(|| {
            user += 1;
            let context = format!("new-user-{user}-{}", std::process::id());
            let named = [encode_b64(context.as_bytes())];
            let contexts = bench.resolve(&named, ContextUse::Create);
            let mut keys = SealingKeys::default();
            (0..5)
                .map(|_| {
                    let context = Some(context.as_bytes());
                    seal_item(
                        &bench.per_context,
                        &contexts,
                        &mut keys,
                        context,
                        &plaintext,
                    )
                })
                .collect::<Vec<_>>()
        })
    });

    let users: Vec<String> = (0..20).map(|user| format!("page-user-{user}")).collect();
    let named: Vec<String> = users
        .iter()
        .flat_map(|user| std::iter::repeat_n(encode_b64(user.as_bytes()), 5))
        .collect();
    let created = bench.resolve(&named, ContextUse::Create);
    let mut keys = SealingKeys::default();
    let page: Vec<(&[u8], Vec<u8>)> = users
        .iter()
        .flat_map(|user| std::iter::repeat_n(user.as_bytes(), 5))
        .map(|user| {
            let sealed = seal_item(
                &bench.per_context,
                &created,
                &mut keys,
                Some(user),
                &plaintext,
            );
            (user, sealed)
        })
        .collect();
    let plain_page: Vec<Vec<u8>> = (0..100)
        .map(|_| {
            seal_item(
                &bench.plain,
                &ContextKeys::default(),
                &mut keys,
                None,
                &plaintext,
            )
        })
        .collect();

    group.throughput(Throughput::Elements(100));
    group.bench_function("plain key: decrypt 100 values", |b| {
        b.iter(|| {
            let ring = bench.store.cached("plain").expect("cached");
            plain_page
                .iter()
                .map(|sealed| open_item(&ring, &ContextKeys::default(), None, sealed))
                .collect::<Vec<_>>()
        })
    });
    group.bench_function(
        "context keys: decrypt 100 values over 20 cached contexts",
        |b| {
            b.iter(|| {
                let contexts = bench.resolve(&named, ContextUse::Read);
                page.iter()
                    .map(|(user, sealed)| {
                        open_item(&bench.per_context, &contexts, Some(user), sealed)
                    })
                    .collect::<Vec<_>>()
            })
        },
    );
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

criterion_group!(
    benches,
    encryption,
    context_keys,
    context_key_requests,
    signatures
);
criterion_main!(benches);
