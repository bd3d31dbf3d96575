//! Desired state -> core configuration file (Xray / V2Ray JSON, sing-box JSON).
//!
//! Rendering is pure and deterministic: the same desired state and agent settings give the
//! same bytes, so "did the inbounds change" is a comparison of rendered skeletons. Every
//! inbound carries every user (email = [`UserSpec::email`], level 0); combinations the core
//! cannot serve (REALITY on V2Ray, Shadowsocks multi-user on V2Ray, TLS without the
//! agent's certificate) are errors, not silently dropped inbounds.

use crate::config::Config;
use mrjbot_node_proto::{CoreKind, DesiredState, InboundSpec, UserSpec};
use serde_json::{Value, json};

/// A desired state the core cannot serve.
#[derive(Debug, thiserror::Error)]
#[error("inbound {tag}: {message}")]
pub struct RenderError {
    /// The inbound.
    pub tag: String,
    /// Why.
    pub message: String,
}

fn err(ib: &InboundSpec, message: impl Into<String>) -> RenderError {
    RenderError {
        tag: ib.tag.clone(),
        message: message.into(),
    }
}

fn s<'a>(ib: &'a InboundSpec, key: &str) -> Option<&'a str> {
    ib.settings
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// The tag of the API inbound and routing target (Xray / V2Ray).
pub const API_TAG: &str = "api";

/// Protocols whose users the Xray / V2Ray HandlerService can add and remove at runtime.
pub fn runtime_users(protocol: &str) -> bool {
    matches!(protocol, "vless" | "vmess" | "trojan")
}

/// An Xray / V2Ray client entry for `u` on inbound `ib`.
pub fn xray_client(kind: CoreKind, ib: &InboundSpec, u: &UserSpec) -> Value {
    match ib.protocol.as_str() {
        "vless" => {
            let mut c = json!({"id": u.uuid, "email": u.email, "level": 0});
            if let Some(flow) = s(ib, "flow").filter(|_| kind == CoreKind::Xray) {
                c["flow"] = json!(flow);
            }
            c
        }
        "vmess" => json!({"id": u.uuid, "alterId": 0, "email": u.email, "level": 0}),
        "trojan" => json!({"password": u.password, "email": u.email, "level": 0}),
        _ => {
            let method = s(ib, "method").unwrap_or("");
            let key = u.ss_keys.get(method).unwrap_or(&u.password);
            json!({"password": key, "email": u.email, "level": 0})
        }
    }
}

fn xray_stream(cfg: &Config, kind: CoreKind, ib: &InboundSpec) -> Result<Value, RenderError> {
    let xray = kind == CoreKind::Xray;
    let network = match ib.network.as_str() {
        "tcp" | "raw" => "tcp",
        "ws" => "ws",
        "grpc" => "grpc",
        "h2" | "http" => "http",
        "kcp" | "mkcp" => "kcp",
        "quic" => "quic",
        "httpupgrade" | "xhttp" if xray => ib.network.as_str(),
        other => {
            return Err(err(
                ib,
                format!("network {other:?} is not served by {}", kind.as_str()),
            ));
        }
    };
    let mut st = json!({"network": network, "security": "none"});
    let path = s(ib, "path").unwrap_or("/");
    let host = s(ib, "host");
    match network {
        "ws" => {
            st["wsSettings"] = if xray {
                json!({"path": path, "host": host.unwrap_or("")})
            } else {
                let mut w = json!({"path": path});
                if let Some(h) = host {
                    w["headers"] = json!({"Host": h});
                }
                w
            }
        }
        "grpc" => {
            st["grpcSettings"] =
                json!({"serviceName": s(ib, "service_name").or(s(ib, "serviceName")).unwrap_or("")})
        }
        "http" => {
            let mut h = json!({"path": path});
            if let Some(host) = host {
                h["host"] = json!([host]);
            }
            st["httpSettings"] = h;
        }
        "httpupgrade" => {
            st["httpupgradeSettings"] = json!({"path": path, "host": host.unwrap_or("")})
        }
        "xhttp" => st["xhttpSettings"] = json!({"path": path, "host": host.unwrap_or("")}),
        _ => {}
    }
    match ib.security.as_str() {
        "none" | "" => {}
        "tls" => {
            let Some((cert, key)) = &cfg.tls else {
                return Err(err(
                    ib,
                    "security tls needs tls_cert and tls_key in the agent config",
                ));
            };
            st["security"] = json!("tls");
            let mut t = json!({"certificates": [{"certificateFile": cert, "keyFile": key}]});
            if let Some(sni) = s(ib, "sni") {
                t["serverName"] = json!(sni);
            }
            if let Some(alpn) = alpn(ib) {
                t["alpn"] = json!(alpn);
            }
            st["tlsSettings"] = t;
        }
        "reality" if xray => {
            let key = s(ib, "private_key")
                .map(str::to_string)
                .or_else(|| cfg.reality_private_key.clone())
                .ok_or_else(|| err(ib, "reality needs private_key (inbound or agent config)"))?;
            let sni = s(ib, "sni").ok_or_else(|| err(ib, "reality needs sni"))?;
            let target = s(ib, "dest")
                .or(s(ib, "target"))
                .map(str::to_string)
                .unwrap_or_else(|| format!("{sni}:443"));
            st["security"] = json!("reality");
            st["realitySettings"] = json!({
                "show": false, "target": target, "xver": 0, "serverNames": [sni],
                "privateKey": key, "shortIds": [s(ib, "short_id").unwrap_or("")]
            });
        }
        other => {
            return Err(err(
                ib,
                format!("security {other:?} is not served by {}", kind.as_str()),
            ));
        }
    }
    Ok(st)
}

fn alpn(ib: &InboundSpec) -> Option<Vec<String>> {
    match ib.settings.get("alpn")? {
        Value::String(a) if !a.is_empty() => {
            Some(a.split(',').map(|x| x.trim().to_string()).collect())
        }
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// One Xray / V2Ray inbound without its clients (what decides whether a restart is needed).
fn xray_inbound(cfg: &Config, kind: CoreKind, ib: &InboundSpec) -> Result<Value, RenderError> {
    let settings = match ib.protocol.as_str() {
        "vless" => json!({"decryption": "none", "clients": []}),
        "vmess" | "trojan" => json!({"clients": []}),
        "shadowsocks" if kind == CoreKind::Xray => {
            let method = s(ib, "method").ok_or_else(|| err(ib, "shadowsocks needs method"))?;
            let mut v = json!({"method": method, "network": "tcp,udp", "clients": []});
            if let Some(k) = s(ib, "server_key") {
                v["password"] = json!(k);
            }
            v
        }
        "shadowsocks" => return Err(err(ib, "v2ray serves shadowsocks to one user only")),
        other => {
            return Err(err(
                ib,
                format!("protocol {other:?} is not served by {}", kind.as_str()),
            ));
        }
    };
    Ok(json!({
        "tag": ib.tag,
        "listen": cfg.listen.to_string(),
        "port": ib.port,
        "protocol": ib.protocol,
        "settings": settings,
        "streamSettings": xray_stream(cfg, kind, ib)?,
    }))
}

/// The Xray / V2Ray skeleton: everything but the users. Equal skeletons mean users can be
/// changed through the API without a restart.
pub fn xray_skeleton(cfg: &Config, inbounds: &[InboundSpec]) -> Result<Value, RenderError> {
    let kind = cfg.core;
    let mut ins = vec![json!({
        "tag": API_TAG, "listen": "127.0.0.1", "port": cfg.api_port,
        "protocol": "dokodemo-door", "settings": {"address": "127.0.0.1"}
    })];
    for ib in inbounds {
        ins.push(xray_inbound(cfg, kind, ib)?);
    }
    Ok(json!({
        "log": {"loglevel": "warning"},
        "stats": {},
        "api": {"tag": API_TAG, "services": ["HandlerService", "StatsService", "LoggerService"]},
        "policy": {
            "levels": {"0": {"statsUserUplink": true, "statsUserDownlink": true}},
            "system": {"statsInboundUplink": true, "statsInboundDownlink": true,
                       "statsOutboundUplink": true, "statsOutboundDownlink": true}
        },
        "inbounds": ins,
        "outbounds": [
            {"tag": "direct", "protocol": "freedom", "settings": {}},
            {"tag": "block", "protocol": "blackhole", "settings": {}}
        ],
        "routing": {"rules": [{"type": "field", "inboundTag": [API_TAG], "outboundTag": API_TAG}]}
    }))
}

/// The full Xray / V2Ray configuration for `d`.
pub fn xray_config(cfg: &Config, d: &DesiredState) -> Result<Value, RenderError> {
    let mut c = xray_skeleton(cfg, &d.inbounds)?;
    if let Some(ins) = c.get_mut("inbounds").and_then(Value::as_array_mut) {
        for (v, ib) in ins.iter_mut().skip(1).zip(&d.inbounds) {
            let clients: Vec<Value> = d
                .users
                .iter()
                .map(|u| xray_client(cfg.core, ib, u))
                .collect();
            v["settings"]["clients"] = Value::Array(clients);
        }
    }
    Ok(c)
}

/// sing-box build features that change what the agent can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingBoxTags {
    /// `with_v2ray_api`: per-user counters for every protocol.
    pub v2ray_api: bool,
}

/// The SSM API endpoint path of a Shadowsocks inbound.
pub fn ssm_path(tag: &str) -> String {
    format!("/{tag}")
}

/// Port of sing-box's `v2ray_api` stats listener (next to the SSM API port).
pub fn v2ray_api_port(cfg: &Config) -> u16 {
    cfg.api_port.wrapping_add(1)
}

fn sb_tls(cfg: &Config, ib: &InboundSpec, required: bool) -> Result<Option<Value>, RenderError> {
    match ib.security.as_str() {
        "none" | "" if !required => Ok(None),
        "tls" | "none" | "" => {
            let Some((cert, key)) = &cfg.tls else {
                return Err(err(
                    ib,
                    "tls needs tls_cert and tls_key in the agent config",
                ));
            };
            let mut t = json!({"enabled": true, "certificate_path": cert, "key_path": key});
            if let Some(sni) = s(ib, "sni") {
                t["server_name"] = json!(sni);
            }
            match alpn(ib) {
                Some(a) => t["alpn"] = json!(a),
                None if ib.protocol == "hysteria2" => t["alpn"] = json!(["h3"]),
                None => {}
            }
            Ok(Some(t))
        }
        "reality" => {
            let key = s(ib, "private_key")
                .map(str::to_string)
                .or_else(|| cfg.reality_private_key.clone())
                .ok_or_else(|| err(ib, "reality needs private_key (inbound or agent config)"))?;
            let sni = s(ib, "sni").ok_or_else(|| err(ib, "reality needs sni"))?;
            let (server, port) = match s(ib, "dest").or(s(ib, "target")) {
                Some(t) => match t.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), p.parse::<u16>().unwrap_or(443)),
                    None => (t.to_string(), 443),
                },
                None => (sni.to_string(), 443),
            };
            Ok(Some(
                json!({"enabled": true, "server_name": sni, "reality": {
                "enabled": true, "handshake": {"server": server, "server_port": port},
                "private_key": key, "short_id": [s(ib, "short_id").unwrap_or("")]}}),
            ))
        }
        other => Err(err(
            ib,
            format!("security {other:?} is not served by sing-box"),
        )),
    }
}

fn sb_transport(ib: &InboundSpec) -> Result<Option<Value>, RenderError> {
    let path = s(ib, "path").unwrap_or("/");
    let host = s(ib, "host");
    Ok(match ib.network.as_str() {
        "tcp" | "raw" | "" => None,
        "ws" => {
            let mut t = json!({"type": "ws", "path": path});
            if let Some(h) = host {
                t["headers"] = json!({"Host": h});
            }
            Some(t)
        }
        "grpc" => Some(json!({"type": "grpc",
            "service_name": s(ib, "service_name").or(s(ib, "serviceName")).unwrap_or("")})),
        "httpupgrade" => {
            Some(json!({"type": "httpupgrade", "path": path, "host": host.unwrap_or("")}))
        }
        "h2" | "http" => {
            let mut t = json!({"type": "http", "path": path});
            if let Some(h) = host {
                t["host"] = json!([h]);
            }
            Some(t)
        }
        "quic" => Some(json!({"type": "quic"})),
        other => {
            return Err(err(
                ib,
                format!("network {other:?} is not served by sing-box"),
            ));
        }
    })
}

/// The full sing-box configuration for `d`. Shadowsocks inbounds are `managed`: their users
/// live in the SSM API (pushed after every start and reload), not in this file.
pub fn singbox_config(
    cfg: &Config,
    tags: SingBoxTags,
    d: &DesiredState,
) -> Result<Value, RenderError> {
    let listen = cfg.listen.to_string();
    let mut ins = Vec::new();
    let mut ssm = serde_json::Map::new();
    for ib in &d.inbounds {
        let mut v =
            json!({"type": ib.protocol, "tag": ib.tag, "listen": listen, "listen_port": ib.port});
        match ib.protocol.as_str() {
            "vless" => {
                let flow = s(ib, "flow").unwrap_or("");
                v["users"] = d
                    .users
                    .iter()
                    .map(|u| json!({"name": u.email, "uuid": u.uuid, "flow": flow}))
                    .collect();
            }
            "vmess" => {
                v["users"] = d
                    .users
                    .iter()
                    .map(|u| json!({"name": u.email, "uuid": u.uuid, "alterId": 0}))
                    .collect();
            }
            "trojan" | "hysteria2" => {
                v["users"] = d
                    .users
                    .iter()
                    .map(|u| json!({"name": u.email, "password": u.password}))
                    .collect();
                if let Some(o) = s(ib, "obfs_password").filter(|_| ib.protocol == "hysteria2") {
                    v["obfs"] = json!({"type": "salamander", "password": o});
                }
            }
            "shadowsocks" => {
                let method = s(ib, "method").ok_or_else(|| err(ib, "shadowsocks needs method"))?;
                let key =
                    s(ib, "server_key").ok_or_else(|| err(ib, "shadowsocks needs server_key"))?;
                v["method"] = json!(method);
                v["password"] = json!(key);
                v["managed"] = json!(true);
                ssm.insert(ssm_path(&ib.tag), json!(ib.tag));
            }
            other => {
                return Err(err(
                    ib,
                    format!("protocol {other:?} is not served by sing-box"),
                ));
            }
        }
        if let Some(t) = sb_tls(cfg, ib, ib.protocol == "hysteria2")? {
            v["tls"] = t;
        }
        if ib.protocol != "hysteria2"
            && ib.protocol != "shadowsocks"
            && let Some(t) = sb_transport(ib)?
        {
            v["transport"] = t;
        }
        ins.push(v);
    }
    let mut c = json!({
        "log": {"level": "warn", "timestamp": true},
        "inbounds": ins,
        "outbounds": [{"type": "direct", "tag": "direct"}],
    });
    if !ssm.is_empty() {
        c["services"] = json!([{"type": "ssm-api", "tag": "ssm-api", "listen": "127.0.0.1",
            "listen_port": cfg.api_port, "servers": ssm}]);
    }
    if tags.v2ray_api {
        let users: Vec<&str> = d.users.iter().map(|u| u.email.as_str()).collect();
        c["experimental"] = json!({"v2ray_api": {
            "listen": format!("127.0.0.1:{}", v2ray_api_port(cfg)),
            "stats": {"enabled": true, "users": users}}});
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn cfg(core: &str) -> Config {
        Config::from_raw(RawConfig {
            control_plane_url: Some("http://x".into()),
            secret: Some("s".into()),
            core: Some(core.into()),
            core_bin: Some("/bin/sh".into()),
            state_dir: Some("/tmp".into()),
            listen: Some("127.0.0.1".into()),
            api_port: Some(10085),
            ..RawConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ib(protocol: &str, network: &str, security: &str, settings: Value) -> InboundSpec {
        InboundSpec {
            tag: format!("{protocol}-in"),
            protocol: protocol.into(),
            port: 2000,
            network: network.into(),
            security: security.into(),
            settings,
        }
    }

    fn user() -> UserSpec {
        UserSpec {
            email: "s1-n1".into(),
            uuid: "a8308d11-a541-4591-ad00-31cea68f8bee".into(),
            password: "pw".into(),
            ss_keys: [("2022-blake3-aes-128-gcm".to_string(), "KEY".to_string())].into(),
        }
    }

    fn state(inbounds: Vec<InboundSpec>) -> DesiredState {
        DesiredState {
            etag: "e".into(),
            node_id: 1,
            inbounds,
            users: vec![user()],
        }
    }

    #[test]
    fn v2ray_config_has_api_stats_and_all_users() {
        let d = state(vec![
            ib(
                "vless",
                "ws",
                "none",
                json!({"path": "/v", "host": "h", "flow": "xtls-rprx-vision"}),
            ),
            ib("vmess", "grpc", "none", json!({"service_name": "g"})),
        ]);
        let c = xray_config(&cfg("v2ray"), &d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c["inbounds"][0]["protocol"], "dokodemo-door");
        assert_eq!(c["inbounds"][0]["port"], 10085);
        assert_eq!(c["routing"]["rules"][0]["outboundTag"], "api");
        let vless = &c["inbounds"][1];
        assert_eq!(vless["settings"]["decryption"], "none");
        assert_eq!(vless["settings"]["clients"][0]["email"], "s1-n1");
        // v2ray 4.x has no Vision: the flow is left out there.
        assert!(vless["settings"]["clients"][0].get("flow").is_none());
        assert_eq!(
            vless["streamSettings"]["wsSettings"]["headers"]["Host"],
            "h"
        );
        let vmess = &c["inbounds"][2];
        assert_eq!(vmess["settings"]["clients"][0]["alterId"], 0);
        assert_eq!(vmess["streamSettings"]["grpcSettings"]["serviceName"], "g");
        let x = xray_config(&cfg("xray"), &d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            x["inbounds"][1]["settings"]["clients"][0]["flow"],
            "xtls-rprx-vision"
        );
    }

    #[test]
    fn unservable_inbounds_are_errors() {
        let c = cfg("v2ray");
        for bad in [
            ib("vless", "tcp", "tls", json!({})),
            ib("vless", "tcp", "reality", json!({"sni": "a"})),
            ib(
                "shadowsocks",
                "tcp",
                "none",
                json!({"method": "aes-128-gcm"}),
            ),
            ib("hysteria2", "quic", "tls", json!({})),
            ib("vless", "xhttp", "none", json!({})),
        ] {
            let e = xray_config(&c, &state(vec![bad.clone()]));
            assert!(e.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn singbox_config_manages_shadowsocks_through_ssm() {
        let d = state(vec![
            ib("vless", "ws", "none", json!({"path": "/v"})),
            ib(
                "shadowsocks",
                "tcp",
                "none",
                json!({"method": "2022-blake3-aes-128-gcm", "server_key": "SK"}),
            ),
        ]);
        let c = singbox_config(&cfg("sing-box"), SingBoxTags::default(), &d)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c["inbounds"][0]["users"][0]["name"], "s1-n1");
        assert_eq!(c["inbounds"][0]["transport"]["type"], "ws");
        assert_eq!(c["inbounds"][1]["managed"], true);
        assert!(c["inbounds"][1].get("users").is_none());
        assert_eq!(
            c["services"][0]["servers"]["/shadowsocks-in"],
            "shadowsocks-in"
        );
        assert!(c.get("experimental").is_none());
        let c = singbox_config(&cfg("sing-box"), SingBoxTags { v2ray_api: true }, &d)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c["experimental"]["v2ray_api"]["stats"]["users"][0], "s1-n1");
    }
}
