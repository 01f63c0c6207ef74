//! The upstream's response header lines, passed on as they arrived.
//!
//! Most proxied responses reach the client with the upstream's headers unchanged, apart from
//! the hop-by-hop ones and the few the gateway adds. For those no header map is built: the
//! upstream's field lines are kept as bytes (`name: value\r\n`, already checked by the
//! parser), the gateway appends its own lines, and the HTTP/1 server writes them out as they
//! are.
//!
//! The lines live in [`Ctx`] next to the response, whose own map then holds only
//! what plugins set. A map entry replaces the upstream's lines of the same name, as Kong's
//! `kong.response.set_header` does, so plugins that only insert response headers
//! ([`Plugin::INSERTS_RESPONSE_HEADERS_ONLY`])
//! work on the map alone. Such a plugin may instead insert a header as a line
//! (`insert_target`, `UpstreamHead::insert_field`): it then replaces the upstream's
//! lines and the map's entries of that name just as a map insert does, and a later map insert
//! of the name replaces it in turn. Before any other plugin's `header_filter`, and before an
//! HTTP/2 response goes out, [`materialize`] moves every line into the map, so those see
//! exactly the headers the upstream sent and the plugins inserted.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::{
    response::push_field,
    server::{X_KONG_PROXY_LATENCY, X_KONG_UPSTREAM_LATENCY},
    Ctx, Plugin, Response,
};

/// What the upstream's response head said, in wire form.
#[derive(Debug, Default)]
pub struct UpstreamHead {
    /// `name: value\r\n` lines: the upstream's (without hop-by-hop and framing fields, and
    /// without those in `aside`), then those plugins inserted, then the gateway's own.
    lines: Vec<u8>,
    /// The upstream's `Content-Length` when its body is not chunked (HEAD answers keep it).
    content_length: Option<u64>,
    /// The upstream sent `Date` / `Server`.
    has_date: bool,
    has_server: bool,
    /// The upstream's `Via` and `X-Kong-*` fields, which the gateway extends or replaces:
    /// kept apart, parsed.
    aside: Vec<(HeaderName, HeaderValue)>,
    /// The [`name_bits`] of every upstream line's name.
    upstream_names: u64,
    /// Where the lines plugins inserted start in `lines`, once there are some.
    inserted_at: Option<usize>,
    /// An inserted name may be one of the upstream lines' names (else no upstream line is
    /// left out for them).
    may_shadow: bool,
    /// The [`name_bits`] of every inserted line's name: most other names are told apart
    /// from all of them without a comparison.
    inserted_names: u64,
    /// Where the gateway's own lines start in `lines`, once they are there.
    gateway_at: Option<usize>,
}

/// Two of 64 bits that stand for a field name, ignoring ASCII case: one for its length, one
/// for its last two bytes. Names whose bits are not all in a set of names' bits are not in
/// that set.
fn name_bits(name: &[u8]) -> u64 {
    let tail = match name {
        [.., a, b] => usize::from(a | 0x20) * 3 + usize::from(b | 0x20),
        _ => 0,
    };
    1 << name.len().min(63) | 1 << (tail & 63)
}

/// A response header name that plugins insert as a line ([`UpstreamHead::insert_field`]):
/// the name and how it is spelled on the wire, checked once.
#[derive(Debug, Clone)]
pub(crate) struct LineName {
    name: HeaderName,
    /// `Name: `, how a line of it starts.
    start: Box<[u8]>,
    bits: u64,
}

impl LineName {
    /// `spelled` as a line name; `None` when it is not a header name, or names a field the
    /// gateway sets or treats apart (framing, hop-by-hop, `Date`, `Server`, `Via`,
    /// `X-Kong-*`): those go into the map.
    pub(crate) fn new(spelled: &str) -> Option<LineName> {
        let name = HeaderName::from_bytes(spelled.as_bytes()).ok()?;
        (Field::of(spelled.as_bytes()) == Field::Other).then(|| LineName {
            name,
            start: [spelled.as_bytes(), b": "].concat().into(),
            bits: name_bits(spelled.as_bytes()),
        })
    }

    /// The name as lines spell it.
    fn spelled(&self) -> &[u8] {
        self.start.strip_suffix(b": ").unwrap_or(&self.start)
    }
}

/// How a response field name is treated when it is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Connection,
    TransferEncoding,
    ContentLength,
    /// Hop-by-hop besides `Connection` and `Transfer-Encoding` (RFC 9110 §7.6.1, nginx's
    /// list): `TE`, `Upgrade`, `Keep-Alive`, `Proxy-Connection`.
    HopByHop,
    Date,
    Server,
    /// `Via` and the `X-Kong-*` fields the gateway sets on proxied responses.
    Gateway,
    Other,
}

/// `name` equals `lower`, ignoring ASCII case, where `lower` holds only `a`–`z` and `-`
/// (the names [`Field::of`] knows). Exact for header names (tokens): setting bit 5 maps
/// only `A`–`Z` onto those letters, and only CR (never in a token) onto `-`. Not for other
/// names: `_` and `^` never match themselves this way.
fn token_is(name: &[u8], lower: &str) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower.as_bytes())
            .fold(0, |diff, (a, b)| diff | ((a | 0x20) ^ b))
            == 0
}

impl Field {
    /// Classifies a field name (a token), ignoring ASCII case.
    pub(crate) fn of(name: &[u8]) -> Field {
        let is = |s: &str| token_is(name, s);
        match name.len() {
            2 if is("te") => Field::HopByHop,
            3 if is("via") => Field::Gateway,
            4 if is("date") => Field::Date,
            6 if is("server") => Field::Server,
            7 if is("upgrade") => Field::HopByHop,
            10 if is("connection") => Field::Connection,
            10 if is("keep-alive") => Field::HopByHop,
            14 if is("content-length") => Field::ContentLength,
            16 if is("proxy-connection") => Field::HopByHop,
            17 if is("transfer-encoding") => Field::TransferEncoding,
            17 if is("x-kong-request-id") => Field::Gateway,
            20 if is("x-kong-proxy-latency") => Field::Gateway,
            23 if is("x-kong-upstream-latency") => Field::Gateway,
            _ => Field::Other,
        }
    }
}

impl UpstreamHead {
    /// Lines in `buffer`'s memory (empty, or an earlier response's lines: see
    /// [`into_buffer`](Self::into_buffer)), with room for upstream fields of `bytes` bytes
    /// in all, the gateway's lines (about 150 bytes) and a few plugin lines (rate-limiting's
    /// five take about 200), so that the usual response is written without growing it.
    pub(crate) fn in_buffer(mut buffer: Vec<u8>, bytes: usize) -> UpstreamHead {
        buffer.clear();
        buffer.reserve(bytes + 400);
        UpstreamHead {
            lines: buffer,
            ..UpstreamHead::default()
        }
    }

    /// The lines' memory, emptied, for the next response on the connection.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        let mut lines = self.lines;
        lines.clear();
        lines
    }

    /// Adds one upstream field that is passed on (not hop-by-hop, not framing). `value` was
    /// checked by the parser (no CR, LF or NUL).
    pub(crate) fn push(&mut self, kind: Field, name: &[u8], value: &[u8]) -> Result<(), ()> {
        match kind {
            Field::Gateway => {
                let name = HeaderName::from_bytes(name).map_err(|_| ())?;
                let value = HeaderValue::from_bytes(value).map_err(|_| ())?;
                self.aside.push((name, value));
                return Ok(());
            }
            kind => self.note(kind, name),
        }
        push_field(&mut self.lines, name, value);
        Ok(())
    }

    /// Adds upstream lines already in `name: value` CRLF form (checked by the parser); `note`
    /// must be told each one's kind and name.
    pub(crate) fn push_lines(&mut self, lines: &[u8]) {
        self.lines.extend_from_slice(lines);
    }

    /// Records the kind (`Date`, `Server`) and name of a line added with
    /// [`Self::push_lines`].
    pub(crate) fn note(&mut self, kind: Field, name: &[u8]) {
        match kind {
            Field::Date => self.has_date = true,
            Field::Server => self.has_server = true,
            _ => {}
        }
        self.upstream_names |= name_bits(name);
    }

    pub(crate) fn set_content_length(&mut self, n: Option<u64>) {
        self.content_length = n;
    }

    /// The length the upstream gave its body.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Bytes in the lines.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn has_date(&self) -> bool {
        self.has_date
    }

    /// Inserts the response header `name` as a line, with `value` (a valid header value,
    /// which is not checked again: callers write digits and the like): as
    /// `set.insert(name, value)` would, it replaces the upstream's lines, `set`'s entries and
    /// an earlier inserted line of that name. For
    /// [`Plugin::INSERTS_RESPONSE_HEADERS_ONLY`] plugins, on the head [`insert_target`]
    /// gives. `false` (nothing done; insert into `set` instead) once the gateway's own lines
    /// are there.
    pub(crate) fn insert_field(
        &mut self,
        set: &mut HeaderMap,
        name: &LineName,
        value: &[u8],
    ) -> bool {
        debug_assert!(HeaderValue::from_bytes(value).is_ok(), "{value:?}");
        if self.gateway_at.is_some() {
            return false;
        }
        if !set.is_empty() {
            set.remove(&name.name);
        }
        let at = *self.inserted_at.get_or_insert(self.lines.len());
        if self.inserted_names & name.bits == name.bits {
            // Perhaps inserted before (once at most): that line goes.
            let mut start = at;
            let found = field_lines(&self.lines[at..]).find_map(|l| {
                let range = start..start + l.line.len();
                start = range.end;
                l.name.eq_ignore_ascii_case(name.spelled()).then_some(range)
            });
            if let Some(range) = found {
                self.lines.drain(range);
            }
        }
        self.inserted_names |= name.bits;
        self.may_shadow |= self.upstream_names & name.bits == name.bits;
        self.lines.extend_from_slice(&name.start);
        self.lines.extend_from_slice(value);
        self.lines.extend_from_slice(b"\r\n");
        true
    }

    /// The lines are split into the upstream's, the inserted ones and the gateway's.
    fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        self.parts_of(&self.lines)
    }

    /// [`parts`](Self::parts) of `lines`, which holds this head's lines.
    fn parts_of<'a>(&self, lines: &'a [u8]) -> (&'a [u8], &'a [u8], &'a [u8]) {
        let gateway_at = self.gateway_at.unwrap_or(lines.len());
        let inserted_at = self.inserted_at.unwrap_or(gateway_at);
        let (upstream, rest) = lines.split_at(inserted_at);
        let (inserted, gateway) = rest.split_at(gateway_at - inserted_at);
        (upstream, inserted, gateway)
    }

    /// A plugin inserted `name` as a line.
    fn inserted(&self, inserted: &[u8], name: &[u8]) -> bool {
        let bits = name_bits(name);
        self.inserted_names & bits == bits
            && field_lines(inserted).any(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// Appends the lines to an HTTP/1 head, leaving out those whose name `set` has or a
    /// plugin inserted as a line (what plugins set replaces what the upstream sent).
    pub(crate) fn write(&self, out: &mut Vec<u8>, set: &HeaderMap) {
        if set.is_empty() && !self.may_shadow {
            debug_assert!(field_lines(self.parts().0)
                .all(|l| self.upstream_names & name_bits(l.name) == name_bits(l.name)));
            out.extend_from_slice(&self.lines);
            return;
        }
        // A few names at most: comparing beats hashing each line's name.
        let in_set = |name: &[u8]| {
            !set.is_empty()
                && set
                    .keys()
                    .any(|k| name.eq_ignore_ascii_case(k.as_str().as_bytes()))
        };
        let (upstream, inserted, gateway) = self.parts();
        for FieldLine { line, name, .. } in field_lines(upstream) {
            if !in_set(name) && !self.inserted(inserted, name) {
                out.extend_from_slice(line);
            }
        }
        if set.is_empty() {
            out.extend_from_slice(inserted);
        } else {
            for FieldLine { line, name, .. } in field_lines(inserted) {
                if !in_set(name) {
                    out.extend_from_slice(line);
                }
            }
        }
        out.extend_from_slice(gateway);
    }

    /// The gateway's headers on a proxied response (`Server` unless the upstream or a plugin
    /// set one, `Via` after the upstream's, the latencies and the request id). `None` when
    /// they cannot be added as lines: the caller then moves everything into the map.
    pub(crate) fn add_gateway_fields(
        &mut self,
        set: &mut HeaderMap,
        cx: &mut Ctx,
        server: &HeaderValue,
        via: &str,
    ) -> Option<()> {
        if !self.aside.is_empty() || set.contains_key(header::VIA) {
            return None;
        }
        self.gateway_at = Some(self.lines.len());
        if !self.has_server && !set.contains_key(header::SERVER) {
            push_field(&mut self.lines, b"Server", server.as_bytes());
        }
        push_field(&mut self.lines, b"Via", via.as_bytes());
        // Written in Kong's case; `set` is only searched when it has entries.
        let mut latency = |name: &HeaderName, line: &[u8], ms: Option<u64>, lines: &mut Vec<u8>| {
            if let Some(ms) = ms {
                if !set.is_empty() {
                    set.remove(name);
                }
                lines.extend_from_slice(line);
                crate::response::push_decimal(lines, ms);
                lines.extend_from_slice(b"\r\n");
            }
        };
        latency(
            &X_KONG_UPSTREAM_LATENCY,
            b"X-Kong-Upstream-Latency: ",
            cx.upstream_latency_ms,
            &mut self.lines,
        );
        latency(
            &X_KONG_PROXY_LATENCY,
            b"X-Kong-Proxy-Latency: ",
            cx.proxy_latency_ms,
            &mut self.lines,
        );
        if !set.is_empty() {
            set.remove(&crate::proxy::X_KONG_REQUEST_ID);
        }
        push_field(
            &mut self.lines,
            b"X-Kong-Request-Id",
            cx.request_id.as_bytes(),
        );
        Some(())
    }

    /// Everything as map entries, as if the upstream's head had been parsed into `headers`
    /// before the inserted lines and the entries `headers` already holds were inserted.
    pub(crate) fn into_map(mut self, headers: &mut HeaderMap) {
        let aside = std::mem::take(&mut self.aside);
        let mut all = HeaderMap::with_capacity(aside.len() + 8 + headers.len());
        // The values become slices of the lines' memory: one shared buffer, not a copy each.
        // Trimmed to the lines first, so that what a kept value holds on to (proxy-cache
        // keeps them) is no more than the head itself, not the buffer's spare room.
        let mut lines = std::mem::take(&mut self.lines);
        lines.shrink_to_fit();
        let lines = Bytes::from(lines);
        let (upstream, inserted, gateway) = self.parts_of(&lines);
        let entry = |FieldLine { name, value, .. }| {
            // The parser checked both when the lines were written (httparse takes the same
            // bytes as `http`, and heads are at most `client::HEAD_LIMIT` long), and inserted
            // lines are valid by contract, so nothing is left out here.
            debug_assert!(
                HeaderName::from_bytes(name).is_ok() && HeaderValue::from_bytes(value).is_ok()
            );
            match (
                known_name(name).map_or_else(|| HeaderName::from_bytes(name), Ok),
                HeaderValue::from_maybe_shared(lines.slice_ref(value)),
            ) {
                (Ok(name), Ok(value)) => Some((name, value)),
                _ => None,
            }
        };
        for (name, value) in field_lines(upstream)
            .chain(field_lines(gateway))
            .filter_map(entry)
        {
            all.append(name, value);
        }
        if let Some(n) = self.content_length {
            all.append(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        for (name, value) in aside {
            all.append(name, value);
        }
        for (name, value) in field_lines(inserted).filter_map(entry) {
            all.insert(name, value);
        }
        let set = std::mem::take(headers);
        let mut last = None;
        for (name, value) in set {
            let name = match name {
                Some(name) => {
                    all.remove(&name);
                    last = Some(name.clone());
                    name
                }
                None => match &last {
                    Some(name) => name.clone(),
                    None => continue,
                },
            };
            all.append(name, value);
        }
        *headers = all;
    }
}

/// The name of a field every proxied response has, as the gateway writes it or as it is
/// usually spelled: no parsing, and no copy of the gateway's own (non-standard) names.
fn known_name(name: &[u8]) -> Option<HeaderName> {
    Some(match name {
        b"Server" | b"server" => header::SERVER,
        b"Date" | b"date" => header::DATE,
        b"Content-Type" | b"content-type" => header::CONTENT_TYPE,
        b"Via" => header::VIA,
        b"X-Kong-Upstream-Latency" => X_KONG_UPSTREAM_LATENCY.clone(),
        b"X-Kong-Proxy-Latency" => X_KONG_PROXY_LATENCY.clone(),
        b"X-Kong-Request-Id" => crate::proxy::X_KONG_REQUEST_ID.clone(),
        _ => return None,
    })
}

/// One `name: value` CRLF line of [`UpstreamHead::lines`].
struct FieldLine<'a> {
    line: &'a [u8],
    name: &'a [u8],
    value: &'a [u8],
}

/// The field lines of `lines`: every line ends with CRLF and has a colon followed by one
/// space (see [`UpstreamHead::push`] and [`UpstreamHead::push_lines`]).
fn field_lines(mut lines: &[u8]) -> impl Iterator<Item = FieldLine<'_>> {
    std::iter::from_fn(move || {
        if lines.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', lines).map_or(lines.len(), |i| i + 1);
        let (line, rest) = lines.split_at(end);
        lines = rest;
        let colon = memchr::memchr(b':', line).unwrap_or(0);
        let value = line
            .get(colon + 2..line.len().saturating_sub(2))
            .unwrap_or_default();
        Some(FieldLine {
            line,
            name: &line[..colon],
            value,
        })
    })
}

/// Moves the upstream's header lines kept in `cx` into `resp`'s map (see the module docs).
/// Does nothing when there are none.
pub fn materialize(cx: &mut Ctx, resp: &mut Response) {
    if let Some(head) = cx.upstream_head.take() {
        head.into_map(resp.headers_mut());
    }
}

/// Where a plugin whose `header_filter` only inserts response headers may insert them as
/// lines ([`UpstreamHead::insert_field`]): the upstream's head while its lines are still
/// lines. `None` for a response the gateway produced, or once the lines are in the map:
/// insert into the response's map then.
pub(crate) fn insert_target(cx: &mut Ctx) -> Option<&mut UpstreamHead> {
    if cx.kong_generated {
        return None;
    }
    cx.upstream_head.as_mut()
}

/// Runs `plugin`'s `header_filter`, first moving the upstream's header lines into the map
/// unless the plugin only inserts headers. Generated chains call this.
pub fn header_filter<P: Plugin>(plugin: &P, cx: &mut Ctx, resp: &mut Response) {
    if !P::INSERTS_RESPONSE_HEADERS_ONLY {
        materialize(cx, resp);
    }
    plugin.header_filter(cx, resp);
}

#[cfg(test)]
mod tests;
