//! Address overrides for upstream hosts, like curl's `--resolve`: `KILN_RESOLVE` =
//! `host:port=ip:port[,host:port=ip:port...]`. Used for staging and tests, where the names in
//! the config do not resolve to the addresses wanted. Without an override, names are
//! resolved by the system resolver when a connection is opened.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{OnceLock, RwLock},
};

fn table() -> &'static RwLock<HashMap<(String, u16), SocketAddr>> {
    static T: OnceLock<RwLock<HashMap<(String, u16), SocketAddr>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Sends connections for `host:port` to `addr`.
pub fn set_override(host: &str, port: u16, addr: SocketAddr) {
    if let Ok(mut t) = table().write() {
        t.insert((host.to_owned(), port), addr);
    }
}

/// The override for `host:port`, if any.
pub fn lookup(host: &str, port: u16) -> Option<SocketAddr> {
    let t = table().read().ok()?;
    if t.is_empty() {
        return None;
    }
    t.get(&(host.to_owned(), port)).copied()
}

/// Parses a `KILN_RESOLVE` value.
pub fn parse(spec: &str) -> Result<Vec<(String, u16, SocketAddr)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (from, to) = entry
                .split_once('=')
                .ok_or_else(|| format!("KILN_RESOLVE entry '{entry}' is not host:port=ip:port"))?;
            let (host, port) = from
                .rsplit_once(':')
                .ok_or_else(|| format!("KILN_RESOLVE entry '{entry}': '{from}' has no port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("KILN_RESOLVE entry '{entry}': bad port '{port}'"))?;
            let addr: SocketAddr = to
                .parse()
                .map_err(|_| format!("KILN_RESOLVE entry '{entry}': '{to}' is not ip:port"))?;
            Ok((host.to_owned(), port, addr))
        })
        .collect()
}

/// Applies `KILN_RESOLVE` from the environment.
pub fn from_env() -> Result<(), String> {
    match std::env::var("KILN_RESOLVE") {
        Ok(spec) => {
            for (h, p, a) in parse(&spec)? {
                set_override(&h, p, a);
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_rejects_garbage() {
        let v = parse("a.test:80=127.0.0.1:9001, b:1=[::1]:2").expect("valid");
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].2, "[::1]:2".parse::<SocketAddr>().expect("addr"));
        for bad in ["a.test=1.2.3.4:5", "a:x=1.2.3.4:5", "a:1=nope", "a:1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_are_looked_up_by_host_and_port() {
        set_override("lookup.test", 81, "127.0.0.1:1".parse().expect("addr"));
        assert!(lookup("lookup.test", 81).is_some());
        assert!(lookup("lookup.test", 82).is_none());
    }
}
