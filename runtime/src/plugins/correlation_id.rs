//! Kong's `correlation-id` plugin (kong-compat.md §4.12): makes sure every proxied request
//! carries an id in `header_name`, and optionally echoes it on the response.
//!
//! ```
//! use kiln_runtime::plugins::correlation_id::{Config, CorrelationId, Generator};
//!
//! let plugin = CorrelationId::new(Config {
//!     generator: Generator::Uuid,
//!     echo_downstream: true,
//!     ..Config::DEFAULT
//! })
//! .expect("valid header name");
//! # let _ = plugin;
//! ```

use std::{
    fmt::Write as _,
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::ControlFlow,
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use http::{header::Entry, HeaderName, HeaderValue};

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, Request, Response};

/// How a missing id is generated (Kong's `generator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// `uuid`: a random UUID v4, lower-case hyphenated.
    Uuid,
    /// `uuid#counter` (Kong's default): `<process uuid>#<counter>`; the UUID is drawn once
    /// per process (Kong: per worker), the counter counts from 1.
    UuidCounter,
    /// `tracker`: `<server_addr>-<server_port>-<pid>-<connection>-<connection_requests>-<now>`
    /// with `now` in seconds with three decimals. See [`tracker_id`] for the fields [`Ctx`]
    /// does not carry yet.
    Tracker,
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Header carrying the id (Kong default `Kong-Request-ID`); any case.
    pub header_name: &'static str,
    /// How a missing id is generated (Kong default [`Generator::UuidCounter`]).
    pub generator: Generator,
    /// Also set the header on the response (Kong default `false`).
    pub echo_downstream: bool,
}

impl Config {
    /// Kong's defaults: `Kong-Request-ID`, `uuid#counter`, no echo.
    pub const DEFAULT: Config = Config {
        header_name: "Kong-Request-ID",
        generator: Generator::UuidCounter,
        echo_downstream: false,
    };
}

/// The `correlation-id` plugin.
#[derive(Debug)]
pub struct CorrelationId {
    header: HeaderName,
    generator: Generator,
    echo_downstream: bool,
}

impl CorrelationId {
    /// Parses the header name.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let header = HeaderName::from_bytes(config.header_name.as_bytes()).map_err(|e| {
            StartupError(format!(
                "correlation-id: invalid header_name {:?}: {e}",
                config.header_name
            ))
        })?;
        Ok(CorrelationId {
            header,
            generator: config.generator,
            echo_downstream: config.echo_downstream,
        })
    }

    /// A fresh id from the configured generator.
    pub fn generate(&self, cx: &Ctx) -> String {
        match self.generator {
            Generator::Uuid => random_uuid(),
            Generator::UuidCounter => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
                let mut id = String::with_capacity(36 + 1 + 20);
                id.push_str(process_uuid());
                let _ = write!(id, "#{n}");
                id
            }
            Generator::Tracker => tracker_id(cx, SystemTime::now()),
        }
    }
}

impl Plugin for CorrelationId {
    const NAME: &'static str = "correlation-id";
    const PRIORITY: i32 = 100001;
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Keeps a non-empty request id (the first value of the header); otherwise generates
    /// one and sets it on the request. Either way the id goes to `cx.correlation_id`.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        // One lookup for both reading and setting the header.
        let id = match req.headers_mut().entry(&self.header) {
            Entry::Occupied(e) if !e.get().is_empty() => {
                String::from_utf8_lossy(e.get().as_bytes()).into_owned()
            }
            entry => {
                let id = self.generate(cx);
                // Generated ids are ASCII, so this cannot fail; if it did we would skip it.
                if let Ok(value) = HeaderValue::from_str(&id) {
                    match entry {
                        // Replaces every value, as `HeaderMap::insert` does.
                        Entry::Occupied(mut e) => drop(e.insert(value)),
                        Entry::Vacant(e) => drop(e.insert(value)),
                    }
                }
                id
            }
        };
        cx.correlation_id = Some(id);
        std::future::ready(ControlFlow::Continue(()))
    }

    /// With `echo_downstream`, sets the response header to the request's id; when access did
    /// not run for this plugin (the chain was cut short before it), a fresh id, as Kong does.
    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        if !self.echo_downstream {
            return;
        }
        let fresh;
        let id = match cx.correlation_id.as_deref() {
            Some(id) if !id.is_empty() => id,
            _ => {
                fresh = self.generate(cx);
                &fresh
            }
        };
        if let Ok(value) = HeaderValue::from_bytes(id.as_bytes()) {
            resp.headers_mut().insert(self.header.clone(), value);
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The per-process UUID of `uuid#counter`, drawn on first use.
fn process_uuid() -> &'static str {
    static UUID: OnceLock<String> = OnceLock::new();
    UUID.get_or_init(random_uuid)
}

/// A random UUID v4 from `fastrand` (no syscall per id), lower-case hyphenated.
pub fn random_uuid() -> String {
    let bytes = fastrand::u128(..).to_le_bytes();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    // Written into a buffer: no formatter machinery per id.
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// Kong's `tracker` id at time `now`.
///
/// [`Ctx`] has the server port (`listener_port`) and the pid is the process's; it does not
/// carry the local address, nginx's connection serial number or the number of requests on
/// the connection yet. Until it does, `server_addr` is the unspecified address of the
/// client's address family, `connection` is a process-wide request sequence number (so ids
/// stay unique) and `connection_requests` is `1`.
pub fn tracker_id(cx: &Ctx, now: SystemTime) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let server_addr = match cx.client_addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let connection = SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1;
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{server_addr}-{}-{}-{connection}-1-{}.{:03}",
        cx.listener_port,
        std::process::id(),
        since.as_secs(),
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests;
