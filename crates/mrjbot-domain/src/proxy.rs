//! What a VPN client needs to connect: protocols, transports, TLS flavours, the
//! credentials of a subscription and the settings a seller gives an inbound.
//!
//! These types are shared by the share-link module (`share`), the subscription
//! documents (`document`) and, later, the node agent's core configs. An inbound's
//! settings are parsed strictly (unknown keys are refused) so a typo in the dashboard is
//! an error at save time, not a broken link on every customer's phone.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Protocol of an inbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// VLESS.
    Vless,
    /// VMess.
    Vmess,
    /// Trojan.
    Trojan,
    /// Shadowsocks (incl. 2022 ciphers).
    Shadowsocks,
    /// Hysteria 2.
    Hysteria2,
}

impl Protocol {
    /// The lower-case wire name (`vless`, `shadowsocks`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Vless => "vless",
            Protocol::Vmess => "vmess",
            Protocol::Trojan => "trojan",
            Protocol::Shadowsocks => "shadowsocks",
            Protocol::Hysteria2 => "hysteria2",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "vless" => Protocol::Vless,
            "vmess" => Protocol::Vmess,
            "trojan" => Protocol::Trojan,
            "shadowsocks" => Protocol::Shadowsocks,
            "hysteria2" => Protocol::Hysteria2,
            _ => return None,
        })
    }
}

/// Transport of an inbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Raw TCP.
    Tcp,
    /// WebSocket.
    Ws,
    /// gRPC.
    Grpc,
    /// HTTP upgrade.
    Httpupgrade,
    /// XHTTP (SplitHTTP).
    Xhttp,
    /// mKCP.
    Kcp,
    /// UDP (Hysteria 2).
    Udp,
}

impl Network {
    /// The wire name (`tcp`, `ws`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Ws => "ws",
            Network::Grpc => "grpc",
            Network::Httpupgrade => "httpupgrade",
            Network::Xhttp => "xhttp",
            Network::Kcp => "kcp",
            Network::Udp => "udp",
        }
    }

    /// Parses the wire name (`raw` is Xray's new name for `tcp`).
    pub fn parse(s: &str) -> Option<Network> {
        Some(match s {
            "tcp" | "raw" => Network::Tcp,
            "ws" => Network::Ws,
            "grpc" => Network::Grpc,
            "httpupgrade" => Network::Httpupgrade,
            "xhttp" | "splithttp" => Network::Xhttp,
            "kcp" | "mkcp" => Network::Kcp,
            "udp" => Network::Udp,
            _ => return None,
        })
    }
}

/// Transport security of an inbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain.
    None,
    /// TLS.
    Tls,
    /// REALITY.
    Reality,
}

impl Security {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Tls => "tls",
            Security::Reality => "reality",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Security> {
        Some(match s {
            "none" | "" => Security::None,
            "tls" => Security::Tls,
            "reality" => Security::Reality,
            _ => return None,
        })
    }
}

/// One client-facing endpoint of a connection: the transport layer of a link.
/// Empty strings mean "not set" (the parameter is left out of links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Raw TCP, optionally with the HTTP header camouflage (`header_type = "http"`).
    Tcp {
        /// `none` (empty) or `http`.
        header_type: String,
        /// Host header(s) of the HTTP camouflage.
        host: String,
        /// Path(s) of the HTTP camouflage.
        path: String,
    },
    /// WebSocket.
    Ws {
        /// Path, may carry `?ed=2048`.
        path: String,
        /// Host header.
        host: String,
    },
    /// gRPC ("gun").
    Grpc {
        /// Service name.
        service_name: String,
        /// `:authority`.
        authority: String,
        /// Multi mode instead of gun.
        multi: bool,
    },
    /// HTTP upgrade.
    HttpUpgrade {
        /// Path.
        path: String,
        /// Host header.
        host: String,
    },
    /// XHTTP.
    Xhttp {
        /// Path.
        path: String,
        /// Host header.
        host: String,
        /// `auto`, `packet-up`, `stream-up`, `stream-one` (empty = auto).
        mode: String,
        /// The JSON `extra` object as text (empty = none).
        extra: String,
    },
    /// mKCP.
    Kcp {
        /// Header type (`none`, `srtp`, `utp`, `wechat-video`, `dtls`, `wireguard`).
        header_type: String,
        /// Seed (obfuscation password).
        seed: String,
    },
}

impl Transport {
    /// The network of this transport.
    pub fn network(&self) -> Network {
        match self {
            Transport::Tcp { .. } => Network::Tcp,
            Transport::Ws { .. } => Network::Ws,
            Transport::Grpc { .. } => Network::Grpc,
            Transport::HttpUpgrade { .. } => Network::Httpupgrade,
            Transport::Xhttp { .. } => Network::Xhttp,
            Transport::Kcp { .. } => Network::Kcp,
        }
    }

    /// Plain TCP with no camouflage.
    pub fn tcp() -> Transport {
        Transport::Tcp {
            header_type: String::new(),
            host: String::new(),
            path: String::new(),
        }
    }
}

/// Client-side TLS of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// No TLS.
    None,
    /// TLS.
    Tls {
        /// Server name (empty = the address).
        sni: String,
        /// uTLS fingerprint (`chrome`, ...; empty = none).
        fp: String,
        /// ALPN list.
        alpn: Vec<String>,
        /// Skip certificate verification (tests, self-signed).
        allow_insecure: bool,
    },
    /// REALITY.
    Reality {
        /// Server name.
        sni: String,
        /// uTLS fingerprint (clients need one; `chrome` when unset).
        fp: String,
        /// X25519 public key, base64url.
        public_key: String,
        /// Short id, 0-16 hex characters.
        short_id: String,
        /// spiderX initial path.
        spider_x: String,
    },
}

impl Tls {
    /// The security kind.
    pub fn security(&self) -> Security {
        match self {
            Tls::None => Security::None,
            Tls::Tls { .. } => Security::Tls,
            Tls::Reality { .. } => Security::Reality,
        }
    }
}

/// The protocol part of a link: who the user is and how the payload is wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// VLESS.
    Vless {
        /// User id.
        uuid: String,
        /// `xtls-rprx-vision` or empty.
        flow: String,
        /// Transport.
        transport: Transport,
        /// TLS / REALITY.
        tls: Tls,
    },
    /// VMess (AEAD, alterId 0).
    Vmess {
        /// User id.
        uuid: String,
        /// `auto`, `aes-128-gcm`, `chacha20-poly1305`, `none`, `zero`.
        cipher: String,
        /// Transport.
        transport: Transport,
        /// TLS (REALITY is not used with VMess).
        tls: Tls,
    },
    /// Trojan.
    Trojan {
        /// Password.
        password: String,
        /// Transport.
        transport: Transport,
        /// TLS / REALITY.
        tls: Tls,
    },
    /// Shadowsocks (SIP002).
    Shadowsocks {
        /// Cipher, e.g. `chacha20-ietf-poly1305` or `2022-blake3-aes-128-gcm`.
        method: String,
        /// Password; for 2022 multi-user inbounds `serverPSK:userPSK`.
        password: String,
    },
    /// Hysteria 2.
    Hysteria2 {
        /// Auth string (password).
        auth: String,
        /// TLS server name.
        sni: String,
        /// Skip certificate verification.
        insecure: bool,
        /// `salamander` obfuscation password (empty = no obfs).
        obfs_password: String,
        /// Pinned certificate SHA-256 (empty = none).
        pin_sha256: String,
        /// Port hopping spec, e.g. `20000-30000` (empty = none).
        hop_ports: String,
    },
}

impl Proxy {
    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        match self {
            Proxy::Vless { .. } => Protocol::Vless,
            Proxy::Vmess { .. } => Protocol::Vmess,
            Proxy::Trojan { .. } => Protocol::Trojan,
            Proxy::Shadowsocks { .. } => Protocol::Shadowsocks,
            Proxy::Hysteria2 { .. } => Protocol::Hysteria2,
        }
    }
}

/// One server a client can connect to: exactly what one share link carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// Name shown in the client.
    pub remark: String,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protocol, credentials, transport, TLS.
    pub proxy: Proxy,
}

/// A subscription's credentials: one UUID for VLESS/VMess, one secret for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// RFC 4122 v4 UUID.
    pub uuid: String,
    /// Random secret (Trojan / Hysteria 2 password; seeds the Shadowsocks key).
    pub secret: String,
}

impl Credentials {
    /// The Shadowsocks user password for `method`. 2022 ciphers need a base64 key of the
    /// cipher's exact length, derived here from the secret so the node agent and the
    /// link agree without storing another column; classic AEAD ciphers take the secret.
    pub fn shadowsocks_key(&self, method: &str) -> String {
        match ss2022_key_len(method) {
            Some(len) => {
                let digest = Sha256::new()
                    .chain_update(b"mrjbot-ss2022:")
                    .chain_update(self.secret.as_bytes())
                    .finalize();
                base64_std(&digest[..len])
            }
            None => self.secret.clone(),
        }
    }
}

/// Key length in bytes of a Shadowsocks 2022 cipher, `None` for classic ciphers.
pub fn ss2022_key_len(method: &str) -> Option<usize> {
    match method {
        "2022-blake3-aes-128-gcm" => Some(16),
        "2022-blake3-aes-256-gcm" | "2022-blake3-chacha20-poly1305" => Some(32),
        _ => None,
    }
}

/// Shadowsocks ciphers we accept on an inbound.
pub const SS_METHODS: &[&str] = &[
    "2022-blake3-aes-128-gcm",
    "2022-blake3-aes-256-gcm",
    "2022-blake3-chacha20-poly1305",
    "aes-128-gcm",
    "aes-256-gcm",
    "chacha20-ietf-poly1305",
    "xchacha20-ietf-poly1305",
];

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// One extra address under which an inbound is reachable (CDN fronting, a second domain).
/// Each host of an inbound becomes its own link; empty fields fall back to the inbound's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HostOverride {
    /// Address clients connect to (e.g. a CDN domain or clean IP).
    pub address: String,
    /// Port clients connect to (e.g. 443 in front of the inbound's 8080).
    pub port: Option<u16>,
    /// TLS server name.
    pub sni: String,
    /// Host header (ws / httpupgrade / xhttp / grpc authority).
    pub host: String,
    /// Remark template for this host's link.
    pub remark: String,
}

/// Client-facing settings of an inbound, as the seller sets them. Every field is
/// optional; unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSettings {
    /// TLS / REALITY server name.
    pub sni: String,
    /// uTLS fingerprint (`chrome`, `firefox`, `safari`, `ios`, `android`, `edge`, `random`, `randomized`).
    pub fp: String,
    /// ALPN list (`h2`, `http/1.1`, `h3`).
    pub alpn: Vec<String>,
    /// Let clients skip certificate checks (self-signed certificates only).
    pub allow_insecure: bool,
    /// REALITY public key (base64url X25519).
    pub public_key: String,
    /// REALITY short id given to clients (hex, up to 16 characters).
    pub short_id: String,
    /// REALITY spiderX.
    pub spider_x: String,
    /// VLESS flow (`xtls-rprx-vision`).
    pub flow: String,
    /// VMess cipher (default `auto`).
    pub cipher: String,
    /// Shadowsocks method (default `chacha20-ietf-poly1305`).
    pub method: String,
    /// Shadowsocks 2022 server key (base64), prefixed to each user's key in links.
    pub server_key: String,
    /// Path (ws, httpupgrade, xhttp, tcp http header).
    pub path: String,
    /// Host header (ws, httpupgrade, xhttp, tcp http header).
    pub host: String,
    /// gRPC service name.
    pub service_name: String,
    /// gRPC multi mode.
    pub grpc_multi: bool,
    /// XHTTP mode.
    pub xhttp_mode: String,
    /// TCP header type (`http`) or mKCP header type.
    pub header_type: String,
    /// mKCP seed.
    pub seed: String,
    /// Hysteria 2 salamander obfuscation password.
    pub obfs_password: String,
    /// Hysteria 2 port-hopping range, e.g. `20000-30000`.
    pub hop_ports: String,
    /// Remark template for this inbound's links (default: the shop's template).
    pub remark: String,
    /// Extra addresses (CDN fronting). Empty: one link to the node's address.
    pub hosts: Vec<HostOverride>,
}
