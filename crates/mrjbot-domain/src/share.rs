//! Share links: the one-line URIs (`vless://`, `vmess://`, `trojan://`, `ss://`,
//! `hysteria2://`) a client imports, and the rules that turn an inbound's settings into them.
//!
//! Every subscription format, the bot's "copy link" button and the dashboard print these
//! links, so they are built in one place and checked against the formats of the spec
//! (`panels-and-protocols.md` §4). What this module guarantees:
//!
//! - [`ShareLink::render`] is deterministic. Query parameters come in one fixed order (see
//!   [`PARAM_ORDER`]), values are percent-encoded with `encodeURIComponent` semantics, the
//!   remark goes in the fragment, IPv6 hosts are bracketed. The spec's examples come out
//!   byte for byte.
//! - [`ShareLink::parse`] never panics and reads what panels emit in the wild (3x-UI and
//!   Marzban variants, `hy2://`, `raw`, every base64 flavour). For any link whose format can
//!   carry it, `parse(render(l)) == Ok(l)` (property tested).
//! - [`validate_settings`] refuses inbound settings that would give clients a broken link,
//!   so [`links_for`] can map settings to links without failing.
//!
//! Limits of the formats (what a link cannot carry, so parsing gives it back differently):
//! - `vmess://` JSON has no REALITY, no `allowInsecure`, no XHTTP `extra`; the XHTTP mode
//!   and the gRPC multi flag travel in `type`, the mKCP seed in `path` (as v2rayN does).
//! - A header type `none` reads back as empty (both mean "no header").
//! - ALPN is a comma-joined list: items must be non-empty and free of commas.
//! - Not supported (parse refuses them rather than silently dropping them): the HTTP/2
//!   transport, VLESS encryption, VMess alterId > 0, Shadowsocks plugins, Hysteria 2 obfs
//!   other than salamander, the query-string `vmess://uuid@host` form. REALITY's `pqv` is
//!   ignored.

use std::net::IpAddr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::Value;

use crate::proxy::{
    Credentials, HostOverride, InboundSettings, Network, Protocol, Proxy, SS_METHODS, Security,
    ShareLink, Tls, Transport, ss2022_key_len,
};

/// The order of query parameters in `vless://` and `trojan://` links (a parameter with an
/// empty value is left out; `encryption` and `flow` are VLESS only). It reproduces the
/// spec's VLESS REALITY, VLESS ws+tls and Trojan examples. Hysteria 2 links use
/// [`HY2_PARAM_ORDER`].
pub const PARAM_ORDER: &[&str] = &[
    "type",
    "security",
    "encryption",
    "flow",
    "headerType",
    "path",
    "host",
    "serviceName",
    "authority",
    "mode",
    "extra",
    "seed",
    "sni",
    "fp",
    "alpn",
    "allowInsecure",
    "pbk",
    "sid",
    "spx",
];

/// The order of query parameters in `hysteria2://` links.
pub const HY2_PARAM_ORDER: &[&str] = &["sni", "insecure", "pinSHA256", "obfs", "obfs-password"];

/// Why a share link could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The scheme is none we know.
    #[error("unknown link scheme `{0}` (expected vless, vmess, trojan, ss, hysteria2 or hy2)")]
    UnknownScheme(String),
    /// The URI's structure is broken.
    #[error("malformed link: {0}")]
    Malformed(&'static str),
    /// A base64 part does not decode.
    #[error("bad base64 in the link")]
    BadBase64,
    /// The vmess JSON does not parse or is not an object.
    #[error("bad vmess JSON: {0}")]
    BadJson(String),
    /// The port is missing, not a number, 0 or out of range.
    #[error("bad port `{0}` (expected 1-65535)")]
    BadPort(String),
    /// The host is empty or has characters a host cannot have.
    #[error("bad host `{0}` (IPv6 addresses need brackets)")]
    BadHost(String),
    /// A VLESS or VMess link without a user id.
    #[error("the link has no user id (uuid)")]
    MissingUuid,
    /// A Trojan or Shadowsocks link without a password.
    #[error("the link has no password")]
    MissingPassword,
    /// A Shadowsocks link without a cipher.
    #[error("the link has no shadowsocks method")]
    MissingMethod,
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding in the link")]
    BadPercentEncoding,
    /// A `type` / `net` we cannot represent.
    #[error("unknown or unsupported transport `{0}`")]
    UnknownTransport(String),
    /// A `security` / `tls` value we do not know.
    #[error("unknown security `{0}`")]
    UnknownSecurity(String),
    /// A feature the link uses that MRJBot cannot carry.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

// ---------------------------------------------------------------------------------------
// Rendering

impl ShareLink {
    /// The share link as one line (no trailing newline).
    ///
    /// Assumes `host` is a host name or an IP address and `hop_ports` a port list (as
    /// [`validate_settings`] ensures); a VMess link with REALITY renders `"tls":"reality"`,
    /// which clients refuse.
    pub fn render(&self) -> String {
        let port = self.port.to_string();
        match &self.proxy {
            Proxy::Vless {
                uuid,
                flow,
                transport,
                tls,
            } => {
                let mut q = Query::default();
                q.push("type", transport.network().as_str());
                q.push("security", tls.security().as_str());
                q.push("encryption", "none");
                q.push("flow", flow);
                transport_params(&mut q, transport);
                tls_params(&mut q, tls);
                self.assemble("vless", &pct(uuid), &port, "", &q)
            }
            Proxy::Trojan {
                password,
                transport,
                tls,
            } => {
                let mut q = Query::default();
                q.push("type", transport.network().as_str());
                q.push("security", tls.security().as_str());
                transport_params(&mut q, transport);
                tls_params(&mut q, tls);
                self.assemble("trojan", &pct(password), &port, "", &q)
            }
            Proxy::Vmess {
                uuid,
                cipher,
                transport,
                tls,
            } => self.render_vmess(uuid, cipher, transport, tls),
            Proxy::Shadowsocks { method, password } => {
                // SIP002: 2022 ciphers must not be base64; classic ones get base64url.
                let userinfo = if ss2022_key_len(method).is_some() {
                    format!("{}:{}", pct(method), pct(password))
                } else {
                    URL_SAFE_NO_PAD.encode(format!("{method}:{password}"))
                };
                self.assemble("ss", &userinfo, &port, "", &Query::default())
            }
            Proxy::Hysteria2 {
                auth,
                sni,
                insecure,
                obfs_password,
                pin_sha256,
                hop_ports,
            } => {
                let mut q = Query::default();
                q.push("sni", sni);
                if *insecure {
                    q.push("insecure", "1");
                }
                q.push("pinSHA256", pin_sha256);
                if !obfs_password.is_empty() {
                    q.push("obfs", "salamander");
                    q.push("obfs-password", obfs_password);
                }
                let port = if hop_ports.is_empty() {
                    port
                } else {
                    format!("{port},{hop_ports}")
                };
                self.assemble("hysteria2", &pct(auth), &port, "/", &q)
            }
        }
    }

    fn assemble(&self, scheme: &str, userinfo: &str, port: &str, path: &str, q: &Query) -> String {
        let mut s = format!("{scheme}://");
        if !userinfo.is_empty() {
            s.push_str(userinfo);
            s.push('@');
        }
        if self.host.contains(':') {
            s.push('[');
            s.push_str(&self.host);
            s.push(']');
        } else {
            s.push_str(&self.host);
        }
        s.push(':');
        s.push_str(port);
        s.push_str(path);
        if !q.0.is_empty() {
            s.push('?');
            s.push_str(&q.0);
        }
        if !self.remark.is_empty() {
            s.push('#');
            s.push_str(&pct(&self.remark));
        }
        s
    }

    fn render_vmess(&self, uuid: &str, cipher: &str, transport: &Transport, tls: &Tls) -> String {
        let (kind, host, path) = match transport {
            Transport::Tcp {
                header_type,
                host,
                path,
            } => (or_none(header_type), host.as_str(), path.as_str()),
            Transport::Ws { path, host } | Transport::HttpUpgrade { path, host } => {
                ("none", host.as_str(), path.as_str())
            }
            Transport::Grpc {
                service_name,
                authority,
                multi,
            } => (
                if *multi { "multi" } else { "gun" },
                authority.as_str(),
                service_name.as_str(),
            ),
            Transport::Xhttp {
                path, host, mode, ..
            } => (mode.as_str(), host.as_str(), path.as_str()),
            Transport::Kcp { header_type, seed } => (or_none(header_type), "", seed.as_str()),
        };
        let (tls_name, sni, alpn, fp) = match tls {
            Tls::None => ("none", "", String::new(), ""),
            Tls::Tls { sni, fp, alpn, .. } => ("tls", sni.as_str(), alpn.join(","), fp.as_str()),
            Tls::Reality { sni, fp, .. } => ("reality", sni.as_str(), String::new(), fp.as_str()),
        };
        let json = VmessJson {
            v: "2",
            ps: &self.remark,
            add: &self.host,
            port: self.port.to_string(),
            id: uuid,
            aid: "0",
            scy: if cipher.is_empty() { "auto" } else { cipher },
            net: transport.network().as_str(),
            kind,
            host,
            path,
            tls: tls_name,
            sni,
            alpn,
            fp,
        };
        // Serialising a struct of strings cannot fail.
        let text = serde_json::to_string(&json).unwrap_or_default();
        format!("vmess://{}", STANDARD.encode(text))
    }
}

/// The v2rayN "v2" JSON; field order is the key order of the link.
#[derive(Serialize)]
struct VmessJson<'a> {
    v: &'a str,
    ps: &'a str,
    add: &'a str,
    port: String,
    id: &'a str,
    aid: &'a str,
    scy: &'a str,
    net: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    host: &'a str,
    path: &'a str,
    tls: &'a str,
    sni: &'a str,
    alpn: String,
    fp: &'a str,
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// A query string under construction; empty values are left out.
#[derive(Default)]
struct Query(String);

impl Query {
    fn push(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(name);
        self.0.push('=');
        self.0.push_str(&pct(value));
    }
}

fn transport_params(q: &mut Query, t: &Transport) {
    match t {
        Transport::Tcp {
            header_type,
            host,
            path,
        } => {
            q.push("headerType", header_type);
            q.push("path", path);
            q.push("host", host);
        }
        Transport::Ws { path, host } | Transport::HttpUpgrade { path, host } => {
            q.push("path", path);
            q.push("host", host);
        }
        Transport::Grpc {
            service_name,
            authority,
            multi,
        } => {
            q.push("serviceName", service_name);
            q.push("authority", authority);
            q.push("mode", if *multi { "multi" } else { "gun" });
        }
        Transport::Xhttp {
            path,
            host,
            mode,
            extra,
        } => {
            q.push("path", path);
            q.push("host", host);
            q.push("mode", mode);
            q.push("extra", extra);
        }
        Transport::Kcp { header_type, seed } => {
            q.push("headerType", header_type);
            q.push("seed", seed);
        }
    }
}

fn tls_params(q: &mut Query, tls: &Tls) {
    match tls {
        Tls::None => {}
        Tls::Tls {
            sni,
            fp,
            alpn,
            allow_insecure,
        } => {
            q.push("sni", sni);
            q.push("fp", fp);
            q.push("alpn", &alpn.join(","));
            if *allow_insecure {
                q.push("allowInsecure", "1");
            }
        }
        Tls::Reality {
            sni,
            fp,
            public_key,
            short_id,
            spider_x,
        } => {
            q.push("sni", sni);
            q.push("fp", fp);
            q.push("pbk", public_key);
            q.push("sid", short_id);
            q.push("spx", spider_x);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Percent-encoding and base64

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `encodeURIComponent`: unreserved `A-Z a-z 0-9 - _ . ! ~ * ' ( )` stay, every other
/// byte of the UTF-8 text becomes `%XX`.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space in query strings, as Go's and Python's
/// form encoders write it); the result must be UTF-8.
fn pct_decode(s: &str, plus_is_space: bool) -> Result<String, LinkError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_val(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_val(*c));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(LinkError::BadPercentEncoding);
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| LinkError::BadPercentEncoding)
}

fn hex_val(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Standard alphabet, padding optional; url-safe input is mapped onto it first.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn b64_decode(s: &str) -> Result<Vec<u8>, LinkError> {
    let norm: String = s
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT_B64
        .decode(norm.as_bytes())
        .map_err(|_| LinkError::BadBase64)
}

// ---------------------------------------------------------------------------------------
// Parsing

impl ShareLink {
    /// Reads a share link. Accepts `hy2://` for `hysteria2://`, `raw` for `tcp`, vmess
    /// base64 in any alphabet with or without padding and numbers or strings in its JSON,
    /// the three `ss://` userinfo forms plus the legacy all-base64 form, a `/` before `?`,
    /// bracketed IPv6 hosts. Parameter names are case-sensitive; unknown parameters are
    /// ignored. Never panics.
    pub fn parse(s: &str) -> Result<ShareLink, LinkError> {
        let s = s.trim();
        let (scheme, body) = s
            .split_once("://")
            .ok_or(LinkError::Malformed("missing `://` after the scheme"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "vless" => parse_vless(body),
            "trojan" => parse_trojan(body),
            "vmess" => parse_vmess(body),
            "ss" => parse_ss(body),
            "hysteria2" | "hy2" => parse_hysteria2(body),
            _ => Err(LinkError::UnknownScheme(snippet(scheme))),
        }
    }
}

/// Error texts quote at most this much of the input.
fn snippet(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A URI cut into its parts: `userinfo@host:port[/]?query#fragment`.
struct Parts<'a> {
    userinfo: Option<&'a str>,
    host: String,
    port: Option<&'a str>,
    query: Vec<(String, String)>,
    remark: String,
}

impl Parts<'_> {
    /// The first value of a parameter, `""` when absent.
    fn get(&self, name: &str) -> &str {
        query_get(&self.query, name)
    }
}

fn query_get<'q>(query: &'q [(String, String)], name: &str) -> &'q str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn split_uri(body: &str) -> Result<Parts<'_>, LinkError> {
    let (body, fragment) = body.split_once('#').unwrap_or((body, ""));
    let remark = pct_decode(fragment, false)?;
    let (body, query) = body.split_once('?').unwrap_or((body, ""));
    let query = parse_query(query)?;
    // The last `@`: panels that forget to encode an `@` in a password still parse.
    let (userinfo, hostpath) = match body.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, body),
    };
    let hostport = match hostpath.split_once('/') {
        Some((hp, "")) => hp,
        Some(_) => return Err(LinkError::Malformed("unexpected path after the port")),
        None => hostpath,
    };
    let (host, port) = split_host_port(hostport)?;
    Ok(Parts {
        userinfo,
        host,
        port,
        query,
        remark,
    })
}

fn parse_query(q: &str) -> Result<Vec<(String, String)>, LinkError> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Ok((pct_decode(k, true)?, pct_decode(v, true)?))
        })
        .collect()
}

fn split_host_port(s: &str) -> Result<(String, Option<&str>), LinkError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| LinkError::BadHost(snippet(s)))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| LinkError::BadPort(snippet(after)))?,
            ),
        };
        Ok((check_host(host, true)?, port))
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        Ok((check_host(host, false)?, port))
    }
}

fn check_host(host: &str, colon_ok: bool) -> Result<String, LinkError> {
    let bad = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || "/?#@[]\\%\"<>^`{|}".contains(c)
            || (c == ':' && !colon_ok)
    };
    if host.is_empty() || host.chars().any(bad) {
        return Err(LinkError::BadHost(snippet(host)));
    }
    Ok(host.to_string())
}

/// A single port: 1-5 digits, 1-65535.
fn port_num(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    s.parse::<u16>().ok().filter(|p| digits && *p != 0)
}

fn parse_port(p: Option<&str>) -> Result<u16, LinkError> {
    let p = p.unwrap_or("");
    port_num(p).ok_or_else(|| LinkError::BadPort(snippet(p)))
}

/// A port list such as `443,20000-30000`: ports or ascending ranges, comma-separated.
fn valid_port_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => matches!((port_num(a), port_num(b)), (Some(a), Some(b)) if a <= b),
            None => port_num(part).is_some(),
        })
}

/// `"none"` and `""` both mean "no header".
fn header(s: &str) -> String {
    if s == "none" {
        String::new()
    } else {
        s.to_string()
    }
}

fn alpn_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn network_of(name: &str) -> Result<Network, LinkError> {
    match Network::parse(name) {
        Some(n) if n != Network::Udp => Ok(n),
        _ if name.is_empty() => Ok(Network::Tcp),
        _ => Err(LinkError::UnknownTransport(snippet(name))),
    }
}

fn transport_from(p: &Parts<'_>) -> Result<Transport, LinkError> {
    let s = |name: &str| p.get(name).to_string();
    Ok(match network_of(p.get("type"))? {
        Network::Tcp => Transport::Tcp {
            header_type: header(p.get("headerType")),
            host: s("host"),
            path: s("path"),
        },
        Network::Ws => Transport::Ws {
            path: s("path"),
            host: s("host"),
        },
        Network::Grpc => Transport::Grpc {
            service_name: s("serviceName"),
            authority: s("authority"),
            multi: p.get("mode") == "multi",
        },
        Network::Httpupgrade => Transport::HttpUpgrade {
            path: s("path"),
            host: s("host"),
        },
        Network::Xhttp => Transport::Xhttp {
            path: s("path"),
            host: s("host"),
            mode: s("mode"),
            extra: s("extra"),
        },
        Network::Kcp => Transport::Kcp {
            header_type: header(p.get("headerType")),
            seed: s("seed"),
        },
        Network::Udp => return Err(LinkError::UnknownTransport("udp".into())),
    })
}

fn tls_from(p: &Parts<'_>, default: Security) -> Result<Tls, LinkError> {
    let name = p.get("security");
    let security = if name.is_empty() {
        default
    } else {
        Security::parse(name).ok_or_else(|| LinkError::UnknownSecurity(snippet(name)))?
    };
    let s = |name: &str| p.get(name).to_string();
    Ok(match security {
        Security::None => Tls::None,
        Security::Tls => Tls::Tls {
            sni: s("sni"),
            fp: s("fp"),
            alpn: alpn_list(p.get("alpn")),
            allow_insecure: matches!(p.get("allowInsecure"), "1" | "true"),
        },
        Security::Reality => Tls::Reality {
            sni: s("sni"),
            fp: s("fp"),
            public_key: s("pbk"),
            short_id: s("sid"),
            spider_x: s("spx"),
        },
    })
}

fn parse_vless(body: &str) -> Result<ShareLink, LinkError> {
    let p = split_uri(body)?;
    let uuid = pct_decode(p.userinfo.unwrap_or(""), false)?;
    if uuid.is_empty() {
        return Err(LinkError::MissingUuid);
    }
    if !matches!(p.get("encryption"), "" | "none") {
        return Err(LinkError::Unsupported("VLESS encryption other than `none`"));
    }
    let proxy = Proxy::Vless {
        uuid,
        flow: p.get("flow").to_string(),
        transport: transport_from(&p)?,
        tls: tls_from(&p, Security::None)?,
    };
    Ok(ShareLink {
        port: parse_port(p.port)?,
        remark: p.remark,
        host: p.host,
        proxy,
    })
}

fn parse_trojan(body: &str) -> Result<ShareLink, LinkError> {
    let p = split_uri(body)?;
    let password = pct_decode(p.userinfo.unwrap_or(""), false)?;
    if password.is_empty() {
        return Err(LinkError::MissingPassword);
    }
    let proxy = Proxy::Trojan {
        password,
        transport: transport_from(&p)?,
        tls: tls_from(&p, Security::Tls)?,
    };
    Ok(ShareLink {
        port: parse_port(p.port)?,
        remark: p.remark,
        host: p.host,
        proxy,
    })
}

fn parse_vmess(body: &str) -> Result<ShareLink, LinkError> {
    let bytes = b64_decode(&pct_decode(body, false)?)?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| LinkError::BadJson(e.to_string()))?;
    let obj = json
        .as_object()
        .ok_or_else(|| LinkError::BadJson("not a JSON object".into()))?;
    // v2rayN reads numbers or strings; so do we.
    let field = |k: &str| match obj.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    let uuid = field("id");
    if uuid.is_empty() {
        return Err(LinkError::MissingUuid);
    }
    if !matches!(field("aid").trim(), "" | "0") {
        return Err(LinkError::Unsupported(
            "VMess alterId other than 0 (legacy MD5 auth)",
        ));
    }
    let add = field("add");
    let add = add.trim();
    let add = add
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(add);
    let host = check_host(add, true)?;
    let port = parse_port(Some(field("port").trim()))?;
    let (kind, h, path) = (field("type"), field("host"), field("path"));
    let transport = match network_of(&field("net"))? {
        Network::Tcp => Transport::Tcp {
            header_type: header(&kind),
            host: h,
            path,
        },
        Network::Ws => Transport::Ws { path, host: h },
        Network::Httpupgrade => Transport::HttpUpgrade { path, host: h },
        // 3x-UI writes the multi flag in `type`, Marzban in `mode`.
        Network::Grpc => Transport::Grpc {
            service_name: path,
            authority: h,
            multi: kind == "multi" || field("mode") == "multi",
        },
        Network::Xhttp => {
            let mode = match header(&kind) {
                m if m.is_empty() => header(&field("mode")),
                m => m,
            };
            Transport::Xhttp {
                path,
                host: h,
                mode,
                extra: String::new(),
            }
        }
        Network::Kcp => Transport::Kcp {
            header_type: header(&kind),
            seed: path,
        },
        Network::Udp => return Err(LinkError::UnknownTransport("udp".into())),
    };
    let tls = match field("tls").as_str() {
        "" | "none" => Tls::None,
        "tls" => Tls::Tls {
            sni: field("sni"),
            fp: field("fp"),
            alpn: alpn_list(&field("alpn")),
            allow_insecure: false,
        },
        "reality" => return Err(LinkError::Unsupported("REALITY in a vmess link")),
        other => return Err(LinkError::UnknownSecurity(snippet(other))),
    };
    let cipher = match field("scy") {
        c if c.is_empty() => "auto".to_string(),
        c => c,
    };
    Ok(ShareLink {
        remark: field("ps"),
        host,
        port,
        proxy: Proxy::Vmess {
            uuid,
            cipher,
            transport,
            tls,
        },
    })
}

fn parse_ss(body: &str) -> Result<ShareLink, LinkError> {
    let before_query = body.split(['#', '?']).next().unwrap_or("");
    if !before_query.contains('@') {
        return parse_ss_legacy(body);
    }
    let p = split_uri(body)?;
    if !p.get("plugin").is_empty() {
        return Err(LinkError::Unsupported("Shadowsocks plugins (SIP003)"));
    }
    let (method, password) = ss_userinfo(p.userinfo.unwrap_or(""))?;
    Ok(ShareLink {
        port: parse_port(p.port)?,
        remark: p.remark,
        host: p.host,
        proxy: Proxy::Shadowsocks { method, password },
    })
}

/// `userinfo` in any of SIP002's forms: base64 (std or url-safe, padded or not) of
/// `method:password`, or plain `method:` + percent-encoded password.
fn ss_userinfo(raw: &str) -> Result<(String, String), LinkError> {
    let decoded = pct_decode(raw, false)?;
    // Base64 has no `:`, a plain userinfo always has one.
    let text = if decoded.contains(':') {
        decoded
    } else {
        String::from_utf8(b64_decode(&decoded)?).map_err(|_| LinkError::BadBase64)?
    };
    split_method(&text)
}

fn split_method(text: &str) -> Result<(String, String), LinkError> {
    let (method, password) = text.split_once(':').ok_or(LinkError::Malformed(
        "shadowsocks userinfo is not `method:password`",
    ))?;
    if method.is_empty() {
        return Err(LinkError::MissingMethod);
    }
    if password.is_empty() {
        return Err(LinkError::MissingPassword);
    }
    Ok((method.to_string(), password.to_string()))
}

/// Pre-SIP002 form: `ss://base64(method:password@host:port)#tag`.
fn parse_ss_legacy(body: &str) -> Result<ShareLink, LinkError> {
    let (body, fragment) = body.split_once('#').unwrap_or((body, ""));
    let remark = pct_decode(fragment, false)?;
    let (body, query) = body.split_once('?').unwrap_or((body, ""));
    if !query_get(&parse_query(query)?, "plugin").is_empty() {
        return Err(LinkError::Unsupported("Shadowsocks plugins (SIP003)"));
    }
    let body = body.strip_suffix('/').unwrap_or(body);
    let text = String::from_utf8(b64_decode(&pct_decode(body, false)?)?)
        .map_err(|_| LinkError::BadBase64)?;
    let (userinfo, hostport) = text
        .rsplit_once('@')
        .ok_or(LinkError::Malformed("shadowsocks link has no `@host:port`"))?;
    let (method, password) = split_method(userinfo)?;
    let (host, port) = split_host_port(hostport)?;
    Ok(ShareLink {
        remark,
        host,
        port: parse_port(port)?,
        proxy: Proxy::Shadowsocks { method, password },
    })
}

fn parse_hysteria2(body: &str) -> Result<ShareLink, LinkError> {
    let p = split_uri(body)?;
    let auth = pct_decode(p.userinfo.unwrap_or(""), false)?;
    let (port, mut hop_ports) = match p.port {
        None => (443, String::new()),
        Some(spec) => parse_port_spec(spec)?,
    };
    // v2rayN writes the hop range as `mport` instead.
    let mport = p.get("mport");
    if hop_ports.is_empty() && !mport.is_empty() {
        if !valid_port_list(mport) {
            return Err(LinkError::BadPort(snippet(mport)));
        }
        hop_ports = mport.to_string();
    }
    if !matches!(p.get("obfs"), "" | "salamander") {
        return Err(LinkError::Unsupported(
            "Hysteria 2 obfuscation other than salamander",
        ));
    }
    let proxy = Proxy::Hysteria2 {
        auth,
        sni: p.get("sni").to_string(),
        insecure: matches!(p.get("insecure"), "1" | "true"),
        obfs_password: p.get("obfs-password").to_string(),
        pin_sha256: p.get("pinSHA256").to_string(),
        hop_ports,
    };
    Ok(ShareLink {
        remark: p.remark,
        host: p.host,
        port,
        proxy,
    })
}

/// `443` → (443, ""); `443,20000-30000` → (443, "20000-30000"); a spec that starts with
/// a range keeps it whole and connects first to its lowest port.
fn parse_port_spec(spec: &str) -> Result<(u16, String), LinkError> {
    let bad = || LinkError::BadPort(snippet(spec));
    if !valid_port_list(spec) {
        return Err(bad());
    }
    let (first, rest) = spec.split_once(',').unwrap_or((spec, ""));
    match first.split_once('-') {
        Some((lo, _)) => Ok((port_num(lo).ok_or_else(bad)?, spec.to_string())),
        None => Ok((port_num(first).ok_or_else(bad)?, rest.to_string())),
    }
}

// ---------------------------------------------------------------------------------------
// Remark templates

/// Expands `{NAME}` placeholders (`NAME` of `A-Z`, `0-9`, `_`) with `lookup`. A name
/// `lookup` does not know stays as written, `{{` and `}}` are literal braces, and a
/// substituted value is not expanded again.
pub fn expand_template(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let (plain, tail) = rest.split_at(i);
        out.push_str(plain);
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
            continue;
        }
        if let Some(body) = tail.strip_prefix('{') {
            let len = body
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
                .count();
            let (name, after) = body.split_at(len);
            if let Some(after) = after.strip_prefix('}').filter(|_| len > 0) {
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = after;
                continue;
            }
        }
        // A lone brace: keep it. Both braces are one byte long.
        let (brace, after) = tail.split_at(1);
        out.push_str(brace);
        rest = after;
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// From inbound settings to links

/// The parts of an inbound a link is built from.
#[derive(Debug, Clone, Copy)]
pub struct InboundSpec<'a> {
    /// Protocol.
    pub protocol: Protocol,
    /// Transport network.
    pub network: Network,
    /// Transport security.
    pub security: Security,
    /// Port the inbound listens on.
    pub port: u16,
    /// The node's public address.
    pub address: &'a str,
    /// Client-facing settings.
    pub settings: &'a InboundSettings,
}

/// Cipher used when an inbound sets none.
pub const DEFAULT_SS_METHOD: &str = "chacha20-ietf-poly1305";

/// One link per host override (or one to `address` when there are none). `remark` is called
/// with the template to use for each link (host.remark, else settings.remark, else
/// `default_template`) and returns the finished remark.
///
/// Per link, a host override's non-empty `address`, `port`, `sni` and `host` replace the
/// inbound's. The TLS server name falls back from the host's `sni` to the inbound's `sni`
/// to the effective Host header; when all are empty clients use the address. The TCP
/// transport carries `host`/`path` only with the `http` header. Settings are expected to
/// have passed [`validate_settings`]; the one combination no link can express (a
/// non-Hysteria inbound on `udp`) yields no links.
pub fn links_for(
    creds: &Credentials,
    inbound: &InboundSpec<'_>,
    default_template: &str,
    remark: &dyn Fn(&str) -> String,
) -> Vec<ShareLink> {
    let s = inbound.settings;
    let default_host = HostOverride::default();
    let hosts: Vec<&HostOverride> = if s.hosts.is_empty() {
        vec![&default_host]
    } else {
        s.hosts.iter().collect()
    };
    hosts
        .into_iter()
        .filter_map(|h| {
            let host_header = first_set(&[&h.host, &s.host]);
            let sni = first_set(&[&h.sni, &s.sni, &host_header]);
            let proxy = proxy_for(creds, inbound, &host_header, &sni)?;
            let template = first_set(&[&h.remark, &s.remark, default_template]);
            Some(ShareLink {
                remark: remark(&template),
                host: first_set(&[&h.address, inbound.address]),
                port: h.port.filter(|p| *p != 0).unwrap_or(inbound.port),
                proxy,
            })
        })
        .collect()
}

fn first_set(candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|c| !c.is_empty())
        .map_or_else(String::new, |c| c.to_string())
}

fn proxy_for(
    creds: &Credentials,
    inbound: &InboundSpec<'_>,
    host_header: &str,
    sni: &str,
) -> Option<Proxy> {
    let s = inbound.settings;
    if inbound.protocol == Protocol::Hysteria2 {
        return Some(Proxy::Hysteria2 {
            auth: creds.secret.clone(),
            sni: sni.to_string(),
            insecure: s.allow_insecure,
            obfs_password: s.obfs_password.clone(),
            pin_sha256: String::new(),
            hop_ports: s.hop_ports.clone(),
        });
    }
    if inbound.protocol == Protocol::Shadowsocks {
        let method = first_set(&[&s.method, DEFAULT_SS_METHOD]);
        let user_key = creds.shadowsocks_key(&method);
        let password = if ss2022_key_len(&method).is_some() && !s.server_key.is_empty() {
            format!("{}:{user_key}", s.server_key)
        } else {
            user_key
        };
        return Some(Proxy::Shadowsocks { method, password });
    }
    let transport = transport_for(inbound.network, s, host_header)?;
    let tls = match inbound.security {
        Security::None => Tls::None,
        Security::Tls => Tls::Tls {
            sni: sni.to_string(),
            fp: s.fp.clone(),
            alpn: s.alpn.clone(),
            allow_insecure: s.allow_insecure,
        },
        Security::Reality => Tls::Reality {
            sni: sni.to_string(),
            fp: first_set(&[&s.fp, "chrome"]),
            public_key: s.public_key.clone(),
            short_id: s.short_id.clone(),
            spider_x: s.spider_x.clone(),
        },
    };
    Some(match inbound.protocol {
        Protocol::Vless => {
            let vision_ok = inbound.network == Network::Tcp && inbound.security != Security::None;
            Proxy::Vless {
                uuid: creds.uuid.clone(),
                flow: if vision_ok {
                    s.flow.clone()
                } else {
                    String::new()
                },
                transport,
                tls,
            }
        }
        Protocol::Vmess => Proxy::Vmess {
            uuid: creds.uuid.clone(),
            cipher: first_set(&[&s.cipher, "auto"]),
            transport,
            tls,
        },
        Protocol::Trojan => Proxy::Trojan {
            password: creds.secret.clone(),
            transport,
            tls,
        },
        Protocol::Shadowsocks | Protocol::Hysteria2 => return None,
    })
}

fn transport_for(network: Network, s: &InboundSettings, host: &str) -> Option<Transport> {
    let host = host.to_string();
    Some(match network {
        Network::Tcp if s.header_type == "http" => Transport::Tcp {
            header_type: s.header_type.clone(),
            host,
            path: s.path.clone(),
        },
        Network::Tcp => Transport::tcp(),
        Network::Ws => Transport::Ws {
            path: s.path.clone(),
            host,
        },
        Network::Grpc => Transport::Grpc {
            service_name: s.service_name.clone(),
            authority: host,
            multi: s.grpc_multi,
        },
        Network::Httpupgrade => Transport::HttpUpgrade {
            path: s.path.clone(),
            host,
        },
        Network::Xhttp => Transport::Xhttp {
            path: s.path.clone(),
            host,
            mode: s.xhttp_mode.clone(),
            extra: String::new(),
        },
        Network::Kcp => Transport::Kcp {
            header_type: header(&s.header_type),
            seed: s.seed.clone(),
        },
        Network::Udp => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Validation of inbound settings

/// uTLS fingerprints clients know.
pub const FINGERPRINTS: &[&str] = &[
    "chrome",
    "firefox",
    "safari",
    "ios",
    "android",
    "edge",
    "360",
    "qq",
    "random",
    "randomized",
];

/// ALPN values we let an inbound advertise.
pub const ALPN_VALUES: &[&str] = &["h2", "http/1.1", "h3"];

const VMESS_CIPHERS: &[&str] = &["auto", "aes-128-gcm", "chacha20-poly1305", "none", "zero"];
const KCP_HEADERS: &[&str] = &["none", "srtp", "utp", "wechat-video", "dtls", "wireguard"];
const XHTTP_MODES: &[&str] = &["auto", "packet-up", "stream-up", "stream-one"];
const MAX_LEN: usize = 256;
const MAX_REMARK: usize = 200;
const MAX_HOST: usize = 253;

type FieldError = (&'static str, String);

fn fail(field: &'static str, msg: impl Into<String>) -> Result<(), FieldError> {
    Err((field, msg.into()))
}

/// Checks an inbound's settings against its protocol, network and security, so every link
/// [`links_for`] builds from them is one clients accept. The error names the field
/// (`sni`, `hosts`, ...) and says what is wrong.
///
/// Rules: no control characters and bounded lengths everywhere (remarks 200, host names
/// 253, the rest 256); Hysteria 2 runs on `udp` with TLS and nothing else runs on `udp`;
/// Shadowsocks runs on `tcp` without TLS (its links carry neither); REALITY is for VLESS
/// and Trojan over tcp, grpc or xhttp and needs a 43-character base64url public key and a
/// non-empty even-length hex short id of at most 16 characters; flow is
/// `xtls-rprx-vision` on VLESS only; ciphers, fingerprints, ALPN, header types and XHTTP
/// modes come from known lists; a 2022 server key is base64 of the cipher's key length;
/// SNI and host addresses are host names or IP addresses.
pub fn validate_settings(
    protocol: Protocol,
    network: Network,
    security: Security,
    s: &InboundSettings,
) -> Result<(), FieldError> {
    check_texts(s)?;
    check_combination(protocol, network, security)?;
    if security == Security::Reality {
        let key_ok = s.public_key.len() == 43
            && URL_SAFE_NO_PAD
                .decode(&s.public_key)
                .is_ok_and(|k| k.len() == 32);
        if !key_ok {
            return fail(
                "public_key",
                "the REALITY public key is 43 characters of base64url (an X25519 key)",
            );
        }
        let sid_ok = !s.short_id.is_empty()
            && s.short_id.len() <= 16
            && s.short_id.len().is_multiple_of(2)
            && s.short_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !sid_ok {
            return fail(
                "short_id",
                "the REALITY short id is 2-16 hex characters, an even number of them",
            );
        }
    }
    if !s.flow.is_empty() {
        if s.flow != "xtls-rprx-vision" {
            return fail("flow", "the only flow is `xtls-rprx-vision`");
        }
        if protocol != Protocol::Vless {
            return fail("flow", "flow is for VLESS only");
        }
    }
    check_ciphers(protocol, s)?;
    if !s.fp.is_empty() && !FINGERPRINTS.contains(&s.fp.as_str()) {
        return fail(
            "fp",
            format!(
                "unknown fingerprint; use one of {}",
                FINGERPRINTS.join(", ")
            ),
        );
    }
    if let Some(bad) = s.alpn.iter().find(|a| !ALPN_VALUES.contains(&a.as_str())) {
        return fail(
            "alpn",
            format!("unknown ALPN `{bad}`; use h2, http/1.1 or h3"),
        );
    }
    let header_ok = match network {
        Network::Tcp => matches!(s.header_type.as_str(), "" | "none" | "http"),
        Network::Kcp => s.header_type.is_empty() || KCP_HEADERS.contains(&s.header_type.as_str()),
        _ => true,
    };
    if !header_ok {
        return fail(
            "header_type",
            format!(
                "header type `{}` does not exist for {}",
                s.header_type,
                network.as_str()
            ),
        );
    }
    if !s.xhttp_mode.is_empty() && !XHTTP_MODES.contains(&s.xhttp_mode.as_str()) {
        return fail(
            "xhttp_mode",
            format!("use one of {}", XHTTP_MODES.join(", ")),
        );
    }
    if !s.hop_ports.is_empty() && !valid_port_list(&s.hop_ports) {
        return fail(
            "hop_ports",
            "port hopping is ports or ranges like `20000-30000`, comma-separated",
        );
    }
    if !s.sni.is_empty() && !is_host_name(&s.sni) {
        return fail(
            "sni",
            "the server name must be a host name or an IP address",
        );
    }
    for (i, h) in s.hosts.iter().enumerate() {
        let n = i + 1;
        if !h.address.is_empty() && !is_host_name(&h.address) {
            return fail(
                "hosts",
                format!("host {n}: the address must be a host name or an IP address"),
            );
        }
        if !h.sni.is_empty() && !is_host_name(&h.sni) {
            return fail(
                "hosts",
                format!("host {n}: the server name must be a host name or an IP address"),
            );
        }
        if h.port == Some(0) {
            return fail("hosts", format!("host {n}: the port must be 1-65535"));
        }
    }
    Ok(())
}

fn check_combination(
    protocol: Protocol,
    network: Network,
    security: Security,
) -> Result<(), FieldError> {
    if (protocol == Protocol::Hysteria2) != (network == Network::Udp) {
        return fail(
            "network",
            "Hysteria 2 runs on udp, and only Hysteria 2 does",
        );
    }
    if protocol == Protocol::Shadowsocks && network != Network::Tcp {
        return fail("network", "Shadowsocks links carry no transport; use tcp");
    }
    if protocol == Protocol::Hysteria2 && security != Security::Tls {
        return fail("security", "Hysteria 2 needs TLS");
    }
    if protocol == Protocol::Shadowsocks && security != Security::None {
        return fail("security", "Shadowsocks links carry no TLS; use none");
    }
    if security == Security::Reality {
        if !matches!(protocol, Protocol::Vless | Protocol::Trojan) {
            return fail("security", "REALITY is for VLESS and Trojan only");
        }
        if !matches!(network, Network::Tcp | Network::Grpc | Network::Xhttp) {
            return fail("security", "REALITY works over tcp, grpc or xhttp only");
        }
    }
    Ok(())
}

fn check_ciphers(protocol: Protocol, s: &InboundSettings) -> Result<(), FieldError> {
    if !s.method.is_empty() && !SS_METHODS.contains(&s.method.as_str()) {
        return fail(
            "method",
            format!("unknown cipher; use one of {}", SS_METHODS.join(", ")),
        );
    }
    if !s.cipher.is_empty() && !VMESS_CIPHERS.contains(&s.cipher.as_str()) {
        return fail(
            "cipher",
            format!("unknown cipher; use one of {}", VMESS_CIPHERS.join(", ")),
        );
    }
    if protocol == Protocol::Shadowsocks && !s.server_key.is_empty() {
        let method = first_set(&[&s.method, DEFAULT_SS_METHOD]);
        let Some(len) = ss2022_key_len(&method) else {
            return fail("server_key", "a server key is only for 2022-blake3 ciphers");
        };
        if !STANDARD.decode(&s.server_key).is_ok_and(|k| k.len() == len) {
            return fail(
                "server_key",
                format!("the server key is base64 of {len} bytes for {method}"),
            );
        }
    }
    Ok(())
}

/// Lengths and control characters of every text field.
fn check_texts(s: &InboundSettings) -> Result<(), FieldError> {
    let fields: [(&'static str, &str, usize); 18] = [
        ("sni", &s.sni, MAX_HOST),
        ("fp", &s.fp, MAX_LEN),
        ("public_key", &s.public_key, MAX_LEN),
        ("short_id", &s.short_id, MAX_LEN),
        ("spider_x", &s.spider_x, MAX_LEN),
        ("flow", &s.flow, MAX_LEN),
        ("cipher", &s.cipher, MAX_LEN),
        ("method", &s.method, MAX_LEN),
        ("server_key", &s.server_key, MAX_LEN),
        ("path", &s.path, MAX_LEN),
        ("host", &s.host, MAX_LEN),
        ("service_name", &s.service_name, MAX_LEN),
        ("xhttp_mode", &s.xhttp_mode, MAX_LEN),
        ("header_type", &s.header_type, MAX_LEN),
        ("seed", &s.seed, MAX_LEN),
        ("obfs_password", &s.obfs_password, MAX_LEN),
        ("hop_ports", &s.hop_ports, MAX_LEN),
        ("remark", &s.remark, MAX_REMARK),
    ];
    for (field, text, max) in fields {
        check_text(field, text, max)?;
    }
    for a in &s.alpn {
        check_text("alpn", a, MAX_LEN)?;
    }
    for h in &s.hosts {
        check_text("hosts", &h.address, MAX_HOST)?;
        check_text("hosts", &h.sni, MAX_HOST)?;
        check_text("hosts", &h.host, MAX_LEN)?;
        check_text("hosts", &h.remark, MAX_REMARK)?;
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.chars().any(char::is_control) {
        return fail(field, "control characters are not allowed");
    }
    if text.chars().count() > max {
        return fail(field, format!("at most {max} characters"));
    }
    Ok(())
}

/// A DNS name (labels of letters, digits, `-`, `_`; no label starts or ends with `-`) or
/// an IP address (IPv6 without brackets).
fn is_host_name(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    s.len() <= MAX_HOST
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const UUID: &str = "a8308d11-a541-4591-ad00-31cea68f8bee";
    const VLESS_REALITY: &str = "vless://a8308d11-a541-4591-ad00-31cea68f8bee@203.0.113.10:443?type=tcp&security=reality&encryption=none&flow=xtls-rprx-vision&sni=www.example.com&fp=chrome&pbk=QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0&sid=0123abcd&spx=%2F#DE-1%20alice";
    const VLESS_WS: &str = "vless://a8308d11-a541-4591-ad00-31cea68f8bee@cdn.example.com:443?type=ws&security=tls&encryption=none&path=%2Fws%3Fed%3D2048&host=cdn.example.com&sni=cdn.example.com&fp=chrome&alpn=h2%2Chttp%2F1.1#CDN%20alice";
    const VMESS_JSON: &str = r#"{"v":"2","ps":"DE-1 bob ws","add":"cdn.example.com","port":"443","id":"7f2ee095-268e-4b72-a912-26c91703ae0c","aid":"0","scy":"auto","net":"ws","type":"none","host":"cdn.example.com","path":"/vm","tls":"tls","sni":"cdn.example.com","alpn":"","fp":"chrome"}"#;
    const VMESS: &str = "vmess://eyJ2IjoiMiIsInBzIjoiREUtMSBib2Igd3MiLCJhZGQiOiJjZG4uZXhhbXBsZS5jb20iLCJwb3J0IjoiNDQzIiwiaWQiOiI3ZjJlZTA5NS0yNjhlLTRiNzItYTkxMi0yNmM5MTcwM2FlMGMiLCJhaWQiOiIwIiwic2N5IjoiYXV0byIsIm5ldCI6IndzIiwidHlwZSI6Im5vbmUiLCJob3N0IjoiY2RuLmV4YW1wbGUuY29tIiwicGF0aCI6Ii92bSIsInRscyI6InRscyIsInNuaSI6ImNkbi5leGFtcGxlLmNvbSIsImFscG4iOiIiLCJmcCI6ImNocm9tZSJ9";
    const TROJAN: &str = "trojan://p%40ss%2Fword@vpn.example.com:443?type=tcp&security=tls&sni=vpn.example.com&fp=chrome&alpn=h2%2Chttp%2F1.1#DE-1%20bob";
    const SS: &str =
        "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpzM2NyM3QtcGFzcw@203.0.113.10:8388#DE-1%20ss";
    const SS2022: &str = "ss://2022-blake3-aes-128-gcm:qNeEgmABWLP5%2Fd4g3%2B35dw%3D%3D%3A3iwD3C%2FkZdBx2%2BbDzcvvCw%3D%3D@127.0.0.1:22004#local%20sing-box%20ss2022%20dave";
    const HY2: &str = "hysteria2://erin-pass@vpn.example.com:443/?sni=vpn.example.com&obfs=salamander&obfs-password=gawr-obfs#DE-1%20erin";

    fn link(remark: &str, host: &str, port: u16, proxy: Proxy) -> ShareLink {
        ShareLink {
            remark: remark.into(),
            host: host.into(),
            port,
            proxy,
        }
    }

    fn tls(sni: &str, fp: &str, alpn: &[&str], allow_insecure: bool) -> Tls {
        Tls::Tls {
            sni: sni.into(),
            fp: fp.into(),
            alpn: alpn.iter().map(|a| a.to_string()).collect(),
            allow_insecure,
        }
    }

    fn ws(path: &str, host: &str) -> Transport {
        Transport::Ws {
            path: path.into(),
            host: host.into(),
        }
    }

    /// Render must give the spec's text and parse must give the link back.
    fn golden(expected: &str, l: &ShareLink) {
        assert_eq!(l.render(), expected);
        assert_eq!(ShareLink::parse(expected).as_ref(), Ok(l));
    }

    #[test]
    fn spec_vless_reality() {
        let proxy = Proxy::Vless {
            uuid: UUID.into(),
            flow: "xtls-rprx-vision".into(),
            transport: Transport::tcp(),
            tls: Tls::Reality {
                sni: "www.example.com".into(),
                fp: "chrome".into(),
                public_key: "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0".into(),
                short_id: "0123abcd".into(),
                spider_x: "/".into(),
            },
        };
        golden(
            VLESS_REALITY,
            &link("DE-1 alice", "203.0.113.10", 443, proxy),
        );
    }

    #[test]
    fn spec_vless_ws_tls() {
        let proxy = Proxy::Vless {
            uuid: UUID.into(),
            flow: String::new(),
            transport: ws("/ws?ed=2048", "cdn.example.com"),
            tls: tls("cdn.example.com", "chrome", &["h2", "http/1.1"], false),
        };
        golden(VLESS_WS, &link("CDN alice", "cdn.example.com", 443, proxy));
    }

    #[test]
    fn spec_vmess() -> Result<(), LinkError> {
        let proxy = Proxy::Vmess {
            uuid: "7f2ee095-268e-4b72-a912-26c91703ae0c".into(),
            cipher: "auto".into(),
            transport: ws("/vm", "cdn.example.com"),
            tls: tls("cdn.example.com", "chrome", &[], false),
        };
        golden(VMESS, &link("DE-1 bob ws", "cdn.example.com", 443, proxy));
        let json = b64_decode(VMESS.trim_start_matches("vmess://"))?;
        assert_eq!(String::from_utf8_lossy(&json), VMESS_JSON);
        Ok(())
    }

    #[test]
    fn spec_trojan() {
        let proxy = Proxy::Trojan {
            password: "p@ss/word".into(),
            transport: Transport::tcp(),
            tls: tls("vpn.example.com", "chrome", &["h2", "http/1.1"], false),
        };
        golden(TROJAN, &link("DE-1 bob", "vpn.example.com", 443, proxy));
    }

    #[test]
    fn spec_shadowsocks() {
        let classic = Proxy::Shadowsocks {
            method: "chacha20-ietf-poly1305".into(),
            password: "s3cr3t-pass".into(),
        };
        golden(SS, &link("DE-1 ss", "203.0.113.10", 8388, classic));
        let multi_user = Proxy::Shadowsocks {
            method: "2022-blake3-aes-128-gcm".into(),
            password: "qNeEgmABWLP5/d4g3+35dw==:3iwD3C/kZdBx2+bDzcvvCw==".into(),
        };
        golden(
            SS2022,
            &link("local sing-box ss2022 dave", "127.0.0.1", 22004, multi_user),
        );
    }

    #[test]
    fn spec_hysteria2() {
        let proxy = Proxy::Hysteria2 {
            auth: "erin-pass".into(),
            sni: "vpn.example.com".into(),
            insecure: false,
            obfs_password: "gawr-obfs".into(),
            pin_sha256: String::new(),
            hop_ports: String::new(),
        };
        golden(HY2, &link("DE-1 erin", "vpn.example.com", 443, proxy));
    }

    fn ss_of(l: &Result<ShareLink, LinkError>) -> Option<(&str, &str)> {
        match l {
            Ok(ShareLink {
                proxy: Proxy::Shadowsocks { method, password },
                ..
            }) => Some((method.as_str(), password.as_str())),
            _ => None,
        }
    }

    #[test]
    fn panel_shadowsocks_forms() {
        // 3x-UI / Marzban: standard alphabet, padded; this one has `+`, `/` and `=`.
        let std = STANDARD.encode("aes-256-gcm:a?>b~?x");
        assert!(std.contains('+') && std.contains('/') && std.ends_with('='));
        let l = ShareLink::parse(&format!("ss://{std}@1.2.3.4:8388#m"));
        assert_eq!(ss_of(&l), Some(("aes-256-gcm", "a?>b~?x")));
        // 3x-UI 2022 multi-user: base64 of method:serverPSK:userPSK.
        let three = STANDARD.encode("2022-blake3-aes-128-gcm:c2VydmVy:dXNlcg==");
        let l = ShareLink::parse(&format!("ss://{three}@h.example:1/?type=tcp"));
        assert_eq!(
            ss_of(&l),
            Some(("2022-blake3-aes-128-gcm", "c2VydmVy:dXNlcg=="))
        );
        let plain = ShareLink::parse("ss://aes-128-gcm:p%40ss%3Aw@h.example:1");
        assert_eq!(ss_of(&plain), Some(("aes-128-gcm", "p@ss:w")));
        let legacy = STANDARD.encode("aes-128-gcm:pa@ss@[::1]:8388");
        let l = ShareLink::parse(&format!("ss://{legacy}#old"));
        assert_eq!(ss_of(&l), Some(("aes-128-gcm", "pa@ss")));
        assert_eq!(
            l.map(|l| (l.host, l.port, l.remark)),
            Ok(("::1".into(), 8388, "old".into()))
        );
    }

    #[test]
    fn panel_vmess_forms() {
        let json = r#"{"v":2,"ps":"grpc","add":"[2001:db8::1]","port":2053,"id":"u-1","aid":0,"net":"grpc","type":"multi","host":"auth.example","path":"svc","tls":"tls","sni":"a.example","alpn":"h2"}"#;
        let expected = link(
            "grpc",
            "2001:db8::1",
            2053,
            Proxy::Vmess {
                uuid: "u-1".into(),
                cipher: "auto".into(),
                transport: Transport::Grpc {
                    service_name: "svc".into(),
                    authority: "auth.example".into(),
                    multi: true,
                },
                tls: tls("a.example", "", &["h2"], false),
            },
        );
        let url_safe = URL_SAFE_NO_PAD.encode(json);
        assert_eq!(
            ShareLink::parse(&format!("vmess://{url_safe}")),
            Ok(expected)
        );
        // Marzban writes the gRPC mode under `mode`.
        let marzban = r#"{"add":"h.example","port":"443","id":"u","net":"grpc","type":"gun","mode":"multi","tls":""}"#;
        let l = ShareLink::parse(&format!("vmess://{}", STANDARD.encode(marzban)));
        assert!(matches!(
            l,
            Ok(ShareLink {
                proxy: Proxy::Vmess {
                    transport: Transport::Grpc { multi: true, .. },
                    tls: Tls::None,
                    ..
                },
                ..
            })
        ));
        let old = r#"{"add":"h.example","port":"443","id":"u","aid":"64"}"#;
        assert!(matches!(
            ShareLink::parse(&format!("vmess://{}", STANDARD.encode(old))),
            Err(LinkError::Unsupported(_))
        ));
    }

    #[test]
    fn lenient_uri_forms() {
        let l = ShareLink::parse(
            "VLESS://u@[2001:db8::1]:8443/?type=raw&security=tls&sni=a.example&alpn=h2,http/1.1&allowInsecure=1&headerType=none&host=x&path=%2Fa+b#a+b%20c",
        );
        let expected = link(
            "a+b c",
            "2001:db8::1",
            8443,
            Proxy::Vless {
                uuid: "u".into(),
                flow: String::new(),
                transport: Transport::Tcp {
                    header_type: String::new(),
                    host: "x".into(),
                    path: "/a b".into(),
                },
                tls: tls("a.example", "", &["h2", "http/1.1"], true),
            },
        );
        assert_eq!(l, Ok(expected));
        // Trojan defaults to TLS; names are case-sensitive (`SNI` is not `sni`).
        let t = ShareLink::parse("trojan://pw@h.example:443?SNI=x");
        assert_eq!(
            t.map(|l| l.proxy),
            Ok(Proxy::Trojan {
                password: "pw".into(),
                transport: Transport::tcp(),
                tls: tls("", "", &[], false),
            })
        );
    }

    fn hy2_ports(s: &str) -> Result<(u16, String), LinkError> {
        match ShareLink::parse(s)? {
            ShareLink {
                port,
                proxy: Proxy::Hysteria2 { hop_ports, .. },
                ..
            } => Ok((port, hop_ports)),
            _ => Err(LinkError::Malformed("not hysteria2")),
        }
    }

    #[test]
    fn hysteria2_ports() {
        assert_eq!(
            hy2_ports("hy2://pw@h.example/?sni=x"),
            Ok((443, String::new()))
        );
        assert_eq!(hy2_ports("hy2://h.example"), Ok((443, String::new())));
        assert_eq!(
            hy2_ports("hysteria2://pw@[::1]:443,20000-30000/?insecure=1"),
            Ok((443, "20000-30000".into()))
        );
        assert_eq!(
            hy2_ports("hysteria2://pw@h.example:20000-30000"),
            Ok((20000, "20000-30000".into()))
        );
        assert_eq!(
            hy2_ports("hysteria2://pw@h.example:443?mport=1000-2000"),
            Ok((443, "1000-2000".into()))
        );
        assert!(matches!(
            hy2_ports("hy2://h.example:30-20"),
            Err(LinkError::BadPort(_))
        ));
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| ShareLink::parse(s).err();
        assert_eq!(
            err("http://x"),
            Some(LinkError::UnknownScheme("http".into()))
        );
        assert_eq!(
            err("no scheme"),
            Some(LinkError::Malformed("missing `://` after the scheme"))
        );
        assert_eq!(err("vmess://!!!"), Some(LinkError::BadBase64));
        assert!(matches!(err("vmess://W10"), Some(LinkError::BadJson(_))));
        assert_eq!(
            err("vless://u@h.example:99999"),
            Some(LinkError::BadPort("99999".into()))
        );
        assert_eq!(
            err("vless://u@h.example"),
            Some(LinkError::BadPort(String::new()))
        );
        assert_eq!(
            err("vless://u@h.example:0"),
            Some(LinkError::BadPort("0".into()))
        );
        assert_eq!(err("vless://@h.example:1"), Some(LinkError::MissingUuid));
        assert_eq!(err("vless://h.example:1"), Some(LinkError::MissingUuid));
        assert_eq!(
            err("trojan://h.example:1"),
            Some(LinkError::MissingPassword)
        );
        assert_eq!(
            err("trojan://%ZZ@h.example:1"),
            Some(LinkError::BadPercentEncoding)
        );
        assert_eq!(
            err("trojan://%C3@h.example:1"),
            Some(LinkError::BadPercentEncoding)
        );
        assert_eq!(
            err("vless://u@h.example:1?type=h2"),
            Some(LinkError::UnknownTransport("h2".into()))
        );
        assert_eq!(
            err("vless://u@h.example:1?security=xtls"),
            Some(LinkError::UnknownSecurity("xtls".into()))
        );
        assert!(matches!(
            err("vless://u@::1:443"),
            Some(LinkError::BadHost(_))
        ));
        assert!(matches!(
            err("vless://u@h.example:1/path"),
            Some(LinkError::Malformed(_))
        ));
        assert!(matches!(
            err("vless://u@h.example:1?encryption=mlkem"),
            Some(LinkError::Unsupported(_))
        ));
        assert!(matches!(
            err("ss://YWVzOnB3@h.example:1?plugin=obfs-local"),
            Some(LinkError::Unsupported(_))
        ));
        assert_eq!(err("ss://:pw@h.example:1"), Some(LinkError::MissingMethod));
        assert!(matches!(
            err("hy2://h.example?obfs=other"),
            Some(LinkError::Unsupported(_))
        ));
        let message = LinkError::BadPort("x".into()).to_string();
        assert_eq!(message, "bad port `x` (expected 1-65535)");
    }

    #[test]
    fn template_expansion() {
        let lookup = |name: &str| match name {
            "USERNAME" => Some("علی".to_string()),
            "DAYS_LEFT" => Some("12".to_string()),
            "LOOP" => Some("{USERNAME}".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_template("{USERNAME} {DAYS_LEFT}d", lookup),
            "علی 12d"
        );
        assert_eq!(
            expand_template("{NOPE} {lower} {} {A-B}", lookup),
            "{NOPE} {lower} {} {A-B}"
        );
        assert_eq!(
            expand_template("{{USERNAME}} }{ {", lookup),
            "{USERNAME} }{ {"
        );
        assert_eq!(expand_template("{{{DAYS_LEFT}}}", lookup), "{12}");
        assert_eq!(expand_template("{LOOP}", lookup), "{USERNAME}");
        assert_eq!(expand_template("{USERNAME", lookup), "{USERNAME");
    }

    fn creds() -> Credentials {
        Credentials {
            uuid: UUID.into(),
            secret: "s3cret".into(),
        }
    }

    fn spec<'a>(
        protocol: Protocol,
        network: Network,
        security: Security,
        settings: &'a InboundSettings,
    ) -> InboundSpec<'a> {
        InboundSpec {
            protocol,
            network,
            security,
            port: 8443,
            address: "node.example",
            settings,
        }
    }

    #[test]
    fn links_for_reality_defaults() {
        let settings = InboundSettings {
            sni: "www.example.com".into(),
            public_key: "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0".into(),
            short_id: "0123abcd".into(),
            flow: "xtls-rprx-vision".into(),
            ..InboundSettings::default()
        };
        let inbound = spec(Protocol::Vless, Network::Tcp, Security::Reality, &settings);
        assert_eq!(
            validate_settings(Protocol::Vless, Network::Tcp, Security::Reality, &settings),
            Ok(())
        );
        let links = links_for(&creds(), &inbound, "{USERNAME}", &|t| format!("<{t}>"));
        let expected = link(
            "<{USERNAME}>",
            "node.example",
            8443,
            Proxy::Vless {
                uuid: UUID.into(),
                flow: "xtls-rprx-vision".into(),
                transport: Transport::tcp(),
                tls: Tls::Reality {
                    sni: "www.example.com".into(),
                    fp: "chrome".into(),
                    public_key: settings.public_key.clone(),
                    short_id: "0123abcd".into(),
                    spider_x: String::new(),
                },
            },
        );
        assert_eq!(links, vec![expected]);
    }

    #[test]
    fn links_for_host_overrides() {
        let settings = InboundSettings {
            path: "/ws".into(),
            host: "origin.example".into(),
            flow: "xtls-rprx-vision".into(),
            remark: "inbound".into(),
            hosts: vec![
                HostOverride {
                    address: "cdn.example".into(),
                    port: Some(443),
                    sni: "front.example".into(),
                    host: "front.example".into(),
                    remark: "cdn".into(),
                },
                HostOverride {
                    address: "104.16.0.1".into(),
                    ..HostOverride::default()
                },
            ],
            ..InboundSettings::default()
        };
        let inbound = spec(Protocol::Vless, Network::Ws, Security::Tls, &settings);
        let links = links_for(&creds(), &inbound, "default", &|t| t.to_string());
        let summary: Vec<_> = links
            .iter()
            .map(|l| match &l.proxy {
                Proxy::Vless {
                    flow,
                    transport,
                    tls: Tls::Tls { sni, .. },
                    ..
                } => (
                    l.remark.as_str(),
                    l.host.as_str(),
                    l.port,
                    flow.as_str(),
                    transport.clone(),
                    sni.as_str(),
                ),
                _ => ("", "", 0, "", Transport::tcp(), ""),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "cdn",
                    "cdn.example",
                    443,
                    "",
                    ws("/ws", "front.example"),
                    "front.example"
                ),
                (
                    "inbound",
                    "104.16.0.1",
                    8443,
                    "",
                    ws("/ws", "origin.example"),
                    "origin.example"
                ),
            ]
        );
    }

    #[test]
    fn links_for_other_protocols() -> Result<(), LinkError> {
        let c = creds();
        let key = STANDARD.encode([7u8; 16]);
        let ss = InboundSettings {
            method: "2022-blake3-aes-128-gcm".into(),
            server_key: key.clone(),
            ..InboundSettings::default()
        };
        assert_eq!(
            validate_settings(Protocol::Shadowsocks, Network::Tcp, Security::None, &ss),
            Ok(())
        );
        let links = links_for(
            &c,
            &spec(Protocol::Shadowsocks, Network::Tcp, Security::None, &ss),
            "r",
            &|t| t.to_string(),
        );
        let user_key = c.shadowsocks_key("2022-blake3-aes-128-gcm");
        assert_eq!(STANDARD.decode(&user_key).map(|k| k.len()), Ok(16));
        assert_eq!(
            links.first().map(|l| l.proxy.clone()),
            Some(Proxy::Shadowsocks {
                method: "2022-blake3-aes-128-gcm".into(),
                password: format!("{key}:{user_key}"),
            })
        );
        let plain = InboundSettings::default();
        let links = links_for(
            &c,
            &spec(Protocol::Shadowsocks, Network::Tcp, Security::None, &plain),
            "r",
            &|t| t.to_string(),
        );
        assert_eq!(
            links.first().map(|l| l.proxy.clone()),
            Some(Proxy::Shadowsocks {
                method: DEFAULT_SS_METHOD.into(),
                password: "s3cret".into(),
            })
        );

        let hy = InboundSettings {
            sni: "vpn.example".into(),
            obfs_password: "o".into(),
            hop_ports: "20000-30000".into(),
            allow_insecure: true,
            ..InboundSettings::default()
        };
        let links = links_for(
            &c,
            &spec(Protocol::Hysteria2, Network::Udp, Security::Tls, &hy),
            "r",
            &|t| t.to_string(),
        );
        let rendered: Vec<String> = links.iter().map(ShareLink::render).collect();
        assert_eq!(rendered, vec!["hysteria2://s3cret@node.example:8443,20000-30000/?sni=vpn.example&insecure=1&obfs=salamander&obfs-password=o#r".to_string()]);

        let vm = InboundSettings {
            service_name: "svc".into(),
            grpc_multi: true,
            ..InboundSettings::default()
        };
        let links = links_for(
            &c,
            &spec(Protocol::Vmess, Network::Grpc, Security::None, &vm),
            "r",
            &|t| t.to_string(),
        );
        let back = links
            .first()
            .map(|l| ShareLink::parse(&l.render()))
            .transpose()?;
        assert_eq!(
            back.map(|l| l.proxy),
            Some(Proxy::Vmess {
                uuid: UUID.into(),
                cipher: "auto".into(),
                transport: Transport::Grpc {
                    service_name: "svc".into(),
                    authority: String::new(),
                    multi: true
                },
                tls: Tls::None,
            })
        );

        let tr = InboundSettings::default();
        let links = links_for(
            &c,
            &spec(Protocol::Trojan, Network::Udp, Security::Tls, &tr),
            "r",
            &|t| t.to_string(),
        );
        assert!(links.is_empty(), "no link can carry trojan over udp");
        Ok(())
    }

    #[test]
    fn validation_refuses_broken_settings() {
        let ok = InboundSettings::default();
        let check = |p, n, s, settings: &InboundSettings| {
            validate_settings(p, n, s, settings).map_err(|(f, _)| f)
        };
        let vless = |settings: &InboundSettings| {
            check(Protocol::Vless, Network::Tcp, Security::Tls, settings)
        };
        let with = |f: fn(&mut InboundSettings)| {
            let mut s = InboundSettings::default();
            f(&mut s);
            s
        };
        assert_eq!(vless(&ok), Ok(()));
        assert_eq!(
            check(Protocol::Vmess, Network::Ws, Security::Reality, &ok),
            Err("security")
        );
        assert_eq!(
            check(Protocol::Vless, Network::Ws, Security::Reality, &ok),
            Err("security")
        );
        assert_eq!(
            check(Protocol::Hysteria2, Network::Udp, Security::None, &ok),
            Err("security")
        );
        assert_eq!(
            check(Protocol::Hysteria2, Network::Tcp, Security::Tls, &ok),
            Err("network")
        );
        assert_eq!(
            check(Protocol::Vless, Network::Udp, Security::Tls, &ok),
            Err("network")
        );
        assert_eq!(
            check(Protocol::Shadowsocks, Network::Tcp, Security::Tls, &ok),
            Err("security")
        );
        let reality = |pk: &str, sid: &str| {
            let s = InboundSettings {
                public_key: pk.into(),
                short_id: sid.into(),
                ..InboundSettings::default()
            };
            check(Protocol::Vless, Network::Tcp, Security::Reality, &s)
        };
        let pk = "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0";
        assert_eq!(reality(pk, "0123abcd"), Ok(()));
        assert_eq!(
            reality("QZnlifLjPPBYHmN+ndbgBOmCrHMopjdKEZCnF3tUxz0", "ab"),
            Err("public_key")
        );
        assert_eq!(reality("short", "ab"), Err("public_key"));
        assert_eq!(reality(pk, "abc"), Err("short_id"));
        assert_eq!(reality(pk, "zz"), Err("short_id"));
        assert_eq!(reality(pk, "0123456789abcdef01"), Err("short_id"));
        assert_eq!(reality(pk, ""), Err("short_id"));
        assert_eq!(
            vless(&with(|s| s.flow = "xtls-rprx-direct".into())),
            Err("flow")
        );
        let vision = with(|s| s.flow = "xtls-rprx-vision".into());
        assert_eq!(vless(&vision), Ok(()));
        assert_eq!(
            check(Protocol::Trojan, Network::Tcp, Security::Tls, &vision),
            Err("flow")
        );
        assert_eq!(vless(&with(|s| s.method = "rc4-md5".into())), Err("method"));
        assert_eq!(
            vless(&with(|s| s.cipher = "aes-256-cfb".into())),
            Err("cipher")
        );
        let ss =
            |s: &InboundSettings| check(Protocol::Shadowsocks, Network::Tcp, Security::None, s);
        assert_eq!(
            ss(&with(|s| {
                s.method = "2022-blake3-aes-256-gcm".into();
                s.server_key = STANDARD.encode([1u8; 16]);
            })),
            Err("server_key")
        );
        assert_eq!(
            ss(&with(|s| s.server_key = STANDARD.encode([1u8; 32]))),
            Err("server_key")
        );
        assert_eq!(
            check(Protocol::Shadowsocks, Network::Ws, Security::None, &ok),
            Err("network")
        );
        assert_eq!(vless(&with(|s| s.fp = "netscape".into())), Err("fp"));
        assert_eq!(
            vless(&with(|s| s.alpn = vec!["h2".into(), "spdy/3".into()])),
            Err("alpn")
        );
        assert_eq!(
            vless(&with(|s| s.header_type = "srtp".into())),
            Err("header_type")
        );
        assert_eq!(
            vless(&with(|s| s.xhttp_mode = "fast".into())),
            Err("xhttp_mode")
        );
        assert_eq!(
            vless(&with(|s| s.hop_ports = "1-2,x".into())),
            Err("hop_ports")
        );
        assert_eq!(vless(&with(|s| s.sni = "a b.example".into())), Err("sni"));
        assert_eq!(vless(&with(|s| s.remark = "x".repeat(201))), Err("remark"));
        assert_eq!(vless(&with(|s| s.remark = "é".repeat(200))), Ok(()));
        assert_eq!(vless(&with(|s| s.path = "/a\nb".into())), Err("path"));
        assert_eq!(
            vless(&with(|s| s.service_name = "s".repeat(257))),
            Err("service_name")
        );
        let host = |address: &str| {
            let s = InboundSettings {
                hosts: vec![HostOverride {
                    address: address.into(),
                    ..HostOverride::default()
                }],
                ..InboundSettings::default()
            };
            vless(&s)
        };
        assert_eq!(host("cdn.example.com"), Ok(()));
        assert_eq!(host("2001:db8::1"), Ok(()));
        assert_eq!(host("104.16.0.1"), Ok(()));
        assert_eq!(host("[2001:db8::1]"), Err("hosts"));
        assert_eq!(host("-bad.example"), Err("hosts"));
        assert_eq!(host("a..b"), Err("hosts"));
        assert_eq!(host(&format!("{}.example", "a".repeat(250))), Err("hosts"));
        assert_eq!(host("evil.example/path"), Err("hosts"));
    }

    // -----------------------------------------------------------------------------------
    // Properties

    /// Text with the characters that break naive encoders, and anything at all.
    fn text() -> BoxedStrategy<String> {
        prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9/@:?#%+&=;, ._~!*'()\\[\\]-]{1,20}",
            any::<String>(),
        ]
        .boxed()
    }

    fn nonempty() -> BoxedStrategy<String> {
        text().prop_filter("non-empty", |s| !s.is_empty()).boxed()
    }

    fn one_of(items: &'static [&'static str]) -> BoxedStrategy<String> {
        prop::sample::select(items).prop_map(String::from).boxed()
    }

    fn host() -> BoxedStrategy<String> {
        prop_oneof![
            "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){0,3}",
            any::<Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<Ipv6Addr>().prop_map(|a| a.to_string()),
        ]
        .boxed()
    }

    fn alpn() -> BoxedStrategy<Vec<String>> {
        prop::collection::vec("[^,]{1,8}", 0..3).boxed()
    }

    // `none` is left out: it reads back as empty.
    const HEADERS: &[&str] = &[
        "",
        "http",
        "srtp",
        "utp",
        "wechat-video",
        "dtls",
        "wireguard",
    ];

    fn transport() -> BoxedStrategy<Transport> {
        prop_oneof![
            (one_of(HEADERS), text(), text()).prop_map(|(header_type, host, path)| {
                Transport::Tcp {
                    header_type,
                    host,
                    path,
                }
            }),
            (text(), text()).prop_map(|(path, host)| Transport::Ws { path, host }),
            (text(), text(), any::<bool>()).prop_map(|(service_name, authority, multi)| {
                Transport::Grpc {
                    service_name,
                    authority,
                    multi,
                }
            }),
            (text(), text()).prop_map(|(path, host)| Transport::HttpUpgrade { path, host }),
            (text(), text(), text(), text()).prop_map(|(path, host, mode, extra)| {
                Transport::Xhttp {
                    path,
                    host,
                    mode,
                    extra,
                }
            }),
            (one_of(HEADERS), text())
                .prop_map(|(header_type, seed)| Transport::Kcp { header_type, seed }),
        ]
        .boxed()
    }

    /// What the vmess JSON carries: no xhttp `extra`, a known xhttp mode.
    fn vmess_transport() -> BoxedStrategy<Transport> {
        let modes: &'static [&'static str] = &["", "auto", "packet-up", "stream-up", "stream-one"];
        prop_oneof![
            transport().prop_filter("xhttp handled below", |t| t.network() != Network::Xhttp),
            (text(), text(), one_of(modes)).prop_map(|(path, host, mode)| Transport::Xhttp {
                path,
                host,
                mode,
                extra: String::new()
            }),
        ]
        .boxed()
    }

    fn tls_any() -> BoxedStrategy<Tls> {
        prop_oneof![
            Just(Tls::None),
            (text(), text(), alpn(), any::<bool>()).prop_map(|(sni, fp, alpn, allow_insecure)| {
                Tls::Tls {
                    sni,
                    fp,
                    alpn,
                    allow_insecure,
                }
            }),
            (text(), text(), text(), text(), text()).prop_map(
                |(sni, fp, public_key, short_id, spider_x)| Tls::Reality {
                    sni,
                    fp,
                    public_key,
                    short_id,
                    spider_x
                }
            ),
        ]
        .boxed()
    }

    /// What the vmess JSON carries: no REALITY, no `allowInsecure`.
    fn vmess_tls() -> BoxedStrategy<Tls> {
        prop_oneof![
            Just(Tls::None),
            (text(), text(), alpn()).prop_map(|(sni, fp, alpn)| Tls::Tls {
                sni,
                fp,
                alpn,
                allow_insecure: false
            }),
        ]
        .boxed()
    }

    fn hop_ports() -> BoxedStrategy<String> {
        prop_oneof![
            Just(String::new()),
            (1u16..=65535, 0u16..5000).prop_map(|(lo, d)| format!("{lo}-{}", lo.saturating_add(d))),
            (1u16..=65535, 1u16..=65535).prop_map(|(a, b)| format!("{a},{b}")),
        ]
        .boxed()
    }

    fn proxy() -> BoxedStrategy<Proxy> {
        prop_oneof![
            (
                nonempty(),
                one_of(&["", "xtls-rprx-vision"]),
                transport(),
                tls_any()
            )
                .prop_map(|(uuid, flow, transport, tls)| Proxy::Vless {
                    uuid,
                    flow,
                    transport,
                    tls
                }),
            (
                nonempty(),
                one_of(VMESS_CIPHERS),
                vmess_transport(),
                vmess_tls()
            )
                .prop_map(|(uuid, cipher, transport, tls)| Proxy::Vmess {
                    uuid,
                    cipher,
                    transport,
                    tls
                }),
            (nonempty(), transport(), tls_any()).prop_map(|(password, transport, tls)| {
                Proxy::Trojan {
                    password,
                    transport,
                    tls,
                }
            }),
            (one_of(SS_METHODS), nonempty())
                .prop_map(|(method, password)| Proxy::Shadowsocks { method, password }),
            (text(), text(), any::<bool>(), text(), text(), hop_ports()).prop_map(
                |(auth, sni, insecure, obfs_password, pin_sha256, hop_ports)| Proxy::Hysteria2 {
                    auth,
                    sni,
                    insecure,
                    obfs_password,
                    pin_sha256,
                    hop_ports,
                }
            ),
        ]
        .boxed()
    }

    fn share_link() -> BoxedStrategy<ShareLink> {
        (text(), host(), 1u16..=65535, proxy())
            .prop_map(|(remark, host, port, proxy)| ShareLink {
                remark,
                host,
                port,
                proxy,
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn render_parse_round_trip(l in share_link()) {
            let text = l.render();
            prop_assert!(!text.chars().any(char::is_whitespace), "{}", text);
            prop_assert_eq!(ShareLink::parse(&text), Ok(l));
        }

        #[test]
        fn parse_never_panics(s in any::<String>(), scheme in one_of(&["vless", "vmess", "trojan", "ss", "hy2", "hysteria2"])) {
            let _ = ShareLink::parse(&s);
            let _ = ShareLink::parse(&format!("{scheme}://{s}"));
            let _ = ShareLink::parse(&format!("{scheme}://{}", STANDARD.encode(&s)));
        }

        #[test]
        fn parse_never_panics_on_vmess_json(json in r#"\{("[a-z]{1,4}":("[^"]{0,6}"|-?[0-9]{1,6}|null|true|\[\]|\{\}|1e99),?){0,8}\}"#) {
            let _ = ShareLink::parse(&format!("vmess://{}", STANDARD.encode(&json)));
        }

        #[test]
        fn parse_never_panics_on_mutated_links(
            l in share_link(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
        ) {
            let mut chars: Vec<char> = l.render().chars().collect();
            for (at, op, c) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = at.index(chars.len());
                match op {
                    0 => { chars.remove(i); }
                    1 => chars.insert(i, c),
                    _ => chars[i] = c,
                }
            }
            let _ = ShareLink::parse(&chars.into_iter().collect::<String>());
        }

        #[test]
        fn template_without_placeholders_is_unchanged(t in any::<String>()) {
            prop_assume!(!t.contains("{{") && !t.contains("}}"));
            prop_assert_eq!(expand_template(&t, |_| None), t);
        }
    }
}
