//! `policy: redis`: counters in Redis, one atomic Lua script (EVALSHA) per request for all
//! of its periods. Every call is bounded by the configured timeout (connecting included:
//! the connection manager's reconnect back-off never holds a request longer), and a
//! circuit breaker stops calling a Redis that keeps failing: after [`FAILURES_TO_OPEN`]
//! consecutive failures calls fail at once for [`OPEN_MS`], then one request probes.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering::SeqCst},
        OnceLock,
    },
    time::{Duration, Instant},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
};

use super::RedisConfig;
use crate::StartupError;

/// Consecutive failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// How long the breaker stays open before a probe.
pub const OPEN_MS: i64 = 1_000;
/// The error of a call refused by the open breaker (not logged per request).
pub const BREAKER_OPEN: &str = "redis circuit breaker open";

/// Kong's INCR semantics: every evaluated request counts; a key expires one window length
/// after its first increment. Returns the counts before this request.
const SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('INCR', key)
  if v == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = v - 1
end
return out
";

fn mono_ms() -> i64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as i64
}

/// Closed → open after consecutive failures → half-open (one probe) after a delay.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: AtomicU32,
    open_until: AtomicI64,
    probing: AtomicBool,
}

impl Breaker {
    /// Whether a call may go out at `now` (ms).
    pub fn allow(&self, now: i64) -> bool {
        if self.failures.load(SeqCst) < FAILURES_TO_OPEN {
            return true;
        }
        if now < self.open_until.load(SeqCst) {
            return false;
        }
        self.probing
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_ok()
    }

    pub fn success(&self) {
        if self.failures.swap(0, SeqCst) >= FAILURES_TO_OPEN {
            eprintln!("kiln: rate-limiting: redis answers again, circuit breaker closed");
        }
        self.probing.store(false, SeqCst);
    }

    pub fn failure(&self, now: i64) {
        let f = self.failures.fetch_add(1, SeqCst).saturating_add(1);
        if f >= FAILURES_TO_OPEN {
            self.open_until.store(now + OPEN_MS, SeqCst);
            self.probing.store(false, SeqCst);
            if f == FAILURES_TO_OPEN {
                eprintln!(
                    "kiln: rate-limiting: redis failed {f} times in a row, circuit breaker open"
                );
            }
        }
    }
}

/// A Redis counter store.
pub struct RedisStore {
    client: redis::Client,
    manager: OnceLock<Option<ConnectionManager>>,
    timeout: Duration,
    script: redis::Script,
    breaker: Breaker,
}

impl RedisStore {
    /// Resolves credentials and prepares the client; connects on first use. The address
    /// honours `KILN_RESOLVE` overrides (staging, tests) as upstream hosts do.
    pub fn new(cfg: &RedisConfig) -> Result<RedisStore, StartupError> {
        let addr = match crate::resolve::lookup(cfg.host, cfg.port) {
            Some(a) => ConnectionAddr::Tcp(a.ip().to_string(), a.port()),
            None => ConnectionAddr::Tcp(cfg.host.to_owned(), cfg.port),
        };
        let mut settings = RedisConnectionInfo::default().set_db(cfg.database);
        if let Some(u) = &cfg.username {
            settings = settings.set_username(crate::secret::resolve(u)?);
        }
        if let Some(p) = &cfg.password {
            settings = settings.set_password(crate::secret::resolve(p)?);
        }
        let bad = |e: redis::RedisError| StartupError(format!("rate-limiting: redis: {e}"));
        let info = addr
            .into_connection_info()
            .map_err(bad)?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(bad)?;
        Ok(RedisStore {
            client,
            manager: OnceLock::new(),
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            script: redis::Script::new(SCRIPT),
            breaker: Breaker::default(),
        })
    }

    fn manager(&self) -> Option<ConnectionManager> {
        self.manager
            .get_or_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.timeout);
                match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        eprintln!("kiln: rate-limiting: redis client: {e}");
                        None
                    }
                }
            })
            .clone()
    }

    /// Increments every `(key, ttl seconds)` and returns the counts before, or why not.
    pub async fn incr(&self, keys: &[(String, i64)]) -> Result<Vec<i64>, String> {
        if !self.breaker.allow(mono_ms()) {
            return Err(BREAKER_OPEN.into());
        }
        let Some(mut con) = self.manager() else {
            return Err("redis client unavailable".into());
        };
        let mut inv = self.script.prepare_invoke();
        for (k, ttl) in keys {
            inv.key(k).arg(*ttl);
        }
        let result =
            tokio::time::timeout(self.timeout, inv.invoke_async::<Vec<i64>>(&mut con)).await;
        match result {
            Ok(Ok(v)) if v.len() == keys.len() => {
                self.breaker.success();
                Ok(v)
            }
            Ok(Ok(v)) => {
                self.breaker.failure(mono_ms());
                Err(format!(
                    "redis returned {} counts for {} keys",
                    v.len(),
                    keys.len()
                ))
            }
            Ok(Err(e)) => {
                self.breaker.failure(mono_ms());
                Err(format!("redis: {e}"))
            }
            Err(_) => {
                self.breaker.failure(mono_ms());
                Err(format!(
                    "redis: no answer within {} ms",
                    self.timeout.as_millis()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_and_probes() {
        let b = Breaker::default();
        for _ in 0..FAILURES_TO_OPEN {
            assert!(b.allow(0));
            b.failure(0);
        }
        assert!(!b.allow(10));
        assert!(b.allow(OPEN_MS), "half-open probe");
        assert!(!b.allow(OPEN_MS), "one probe at a time");
        b.failure(OPEN_MS);
        assert!(!b.allow(OPEN_MS + 1));
        assert!(b.allow(2 * OPEN_MS));
        b.success();
        assert!(b.allow(2 * OPEN_MS) && b.allow(2 * OPEN_MS));
    }
}
