//! Rate limits per client address and per user, answered with `RateLimit-*` headers and, when
//! exceeded, 429 with `Retry-After`. Kept in memory (one budget per instance) by default, or in
//! Redis so that every instance draws on one budget. If Redis cannot be reached, requests are
//! let through and the failure is logged: an outage of the limiter must not become an outage
//! of the service.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};

use crate::auth::UserRate;
use crate::configuration::RateLimitSettings;
use crate::error::ApiError;
use crate::startup::AppState;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Address(IpAddr),
    User(i32),
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is full again (or, when refused, until a request is allowed).
    pub reset_secs: u64,
}

impl RateDecision {
    fn unlimited() -> Self {
        Self {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset_secs: 0,
        }
    }
}

type Keyed<K> = Governor<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

struct Local {
    by_address: Keyed<IpAddr>,
    by_user: Keyed<i32>,
}

struct Shared {
    redis: redis::aio::ConnectionManager,
    script: redis::Script,
    per_address: u32,
    per_user: u32,
}

enum Backend {
    Off,
    Local(Local),
    Shared(Shared),
}

/// The limiter of one instance.
pub struct RateLimiter {
    backend: Backend,
}

/// One fixed one-minute window per key: the count and the milliseconds left in the window.
const WINDOW_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {count, ttl}
";

fn quota(per_minute: u32) -> Quota {
    let burst = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(burst).allow_burst(burst)
}

fn local_decision<K>(limiter: &Keyed<K>, key: &K) -> RateDecision
where
    K: Clone + std::hash::Hash + Eq,
{
    match limiter.check_key(key) {
        Ok(snapshot) => {
            let quota = snapshot.quota();
            let limit = quota.burst_size().get();
            let remaining = snapshot.remaining_burst_capacity();
            let reset_secs = (quota.replenish_interval() * (limit - remaining))
                .as_secs_f64()
                .ceil() as u64;
            RateDecision {
                allowed: true,
                limit,
                remaining,
                reset_secs,
            }
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateDecision {
                allowed: false,
                limit: not_until.quota().burst_size().get(),
                remaining: 0,
                reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        }
    }
}

impl RateLimiter {
    pub async fn new(settings: &RateLimitSettings) -> Result<Self, String> {
        let backend = if !settings.enabled {
            Backend::Off
        } else if settings.redis_url.is_empty() {
            Backend::Local(Local {
                by_address: Governor::keyed(quota(settings.per_ip_per_minute))
                    .with_middleware::<StateInformationMiddleware>(),
                by_user: Governor::keyed(quota(settings.per_user_per_minute))
                    .with_middleware::<StateInformationMiddleware>(),
            })
        } else {
            let client = redis::Client::open(settings.redis_url.as_str())
                .map_err(|error| format!("rate_limit.redis_url is not valid: {error}"))?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_millis(500)));
            let redis = redis::aio::ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|error| format!("cannot connect to Redis for rate limits: {error}"))?;
            Backend::Shared(Shared {
                redis,
                script: redis::Script::new(WINDOW_SCRIPT),
                per_address: settings.per_ip_per_minute.max(1),
                per_user: settings.per_user_per_minute.max(1),
            })
        };
        Ok(Self { backend })
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self.backend, Backend::Off)
    }

    pub async fn check(&self, key: LimitKey) -> RateDecision {
        match &self.backend {
            Backend::Off => RateDecision::unlimited(),
            Backend::Local(local) => match key {
                LimitKey::Address(address) => local_decision(&local.by_address, &address),
                LimitKey::User(user) => local_decision(&local.by_user, &user),
            },
            Backend::Shared(shared) => {
                let (name, limit) = match key {
                    LimitKey::Address(address) => {
                        (format!("vottery:rate:ip:{address}"), shared.per_address)
                    }
                    LimitKey::User(user) => (format!("vottery:rate:user:{user}"), shared.per_user),
                };
                let mut connection = shared.redis.clone();
                let result: redis::RedisResult<(u64, i64)> = shared
                    .script
                    .key(name)
                    .arg(60_000)
                    .invoke_async(&mut connection)
                    .await;
                match result {
                    Ok((count, ttl_ms)) => RateDecision {
                        allowed: count <= u64::from(limit),
                        limit,
                        remaining: limit.saturating_sub(count.min(u64::from(u32::MAX)) as u32),
                        reset_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
                    },
                    Err(error) => {
                        tracing::warn!(%error, "rate limit store unavailable; request allowed");
                        RateDecision::unlimited()
                    }
                }
            }
        }
    }

    /// Forgets idle in-memory keys so the maps do not grow without bound.
    pub fn housekeeping(&self) {
        if let Backend::Local(local) = &self.backend {
            local.by_address.retain_recent();
            local.by_user.retain_recent();
            local.by_address.shrink_to_fit();
            local.by_user.shrink_to_fit();
        }
    }
}

/// The client's address: the peer, or the first address in `X-Forwarded-For` not belonging to a
/// trusted proxy when the peer is one.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

fn client_address(req: &ServiceRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| addr.ip())?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    let Some(forwarded) = forwarded else {
        return Some(peer);
    };
    forwarded
        .split(',')
        .rev()
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .find(|address| !trusted.iter().any(|net| net.contains(address)))
        .or(Some(peer))
}

fn set_headers(response: &mut ServiceResponse<BoxBody>, decision: RateDecision) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", decision.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Middleware: resolves the client address, applies the per-address limit, and writes the
/// `RateLimit-*` headers of the tighter of the address and user budgets.
pub async fn limit_by_address(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let address = client_address(&req, &state.trusted_proxies);
    req.extensions_mut().insert(ClientAddr(address));
    let probe = req.path().starts_with("/health") || req.path() == "/metrics";
    if !state.limiter.is_enabled() || probe {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let by_address = match address {
        Some(address) => state.limiter.check(LimitKey::Address(address)).await,
        None => RateDecision::unlimited(),
    };
    if !by_address.allowed {
        let error = ApiError::RateLimited {
            retry_after: by_address.reset_secs,
        };
        let mut response = req.into_response(error.error_response());
        set_headers(&mut response, by_address);
        return Ok(response);
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let by_user = response
        .request()
        .extensions()
        .get::<UserRate>()
        .map(|rate| rate.0);
    let shown = match by_user {
        Some(user) if !user.allowed || user.remaining < by_address.remaining => user,
        _ => by_address,
    };
    set_headers(&mut response, shown);
    Ok(response)
}

/// Periodic housekeeping of the in-memory limiter.
pub fn spawn_housekeeping(limiter: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            limiter.limiter.housekeeping();
        }
    })
}
