//! `mrjbot import 3x-ui|marzban`: takes over a running panel. Creates (or finds) the
//! panel node with its credentials, mirrors the panel's inbounds, and turns every panel
//! account into a customer and a subscription pinned to that node with the same
//! credentials, expiry, data limit, used traffic and status, so customers' existing
//! links keep working. Each imported account is recorded as managed with its current
//! counters as the baseline: the reconciler takes it over without recreating it and
//! without counting the imported traffic again.
//!
//! Idempotent: an account already recorded for the node is skipped, so a second run
//! imports only what appeared since. 3x-UI clients sharing a `subId` (one customer on
//! several inbounds) become one subscription.

use super::marzban::{MUser, MarzbanClient, MarzbanConfig};
use super::xui::{XClient, XInbound, XuiClient, XuiConfig};
use super::{PanelError, local_tag};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::subscriptions::new_secret;
use mrjbot_db::nodes::{self as nodes_repo, InboundRow, NodeRow};
use mrjbot_db::panels::{self as repo, PanelAccountRow};
use mrjbot_db::subscriptions::{self as subs_repo, SubscriptionRow};
use mrjbot_db::users::{self as users_repo, UserRow};
use mrjbot_domain::{ErrorCode, SecretToken};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const DAY_MS: i64 = 86_400_000;

/// Which panel to import from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// 3x-UI (any generation).
    Xui,
    /// Marzban / PasarGuard.
    Marzban,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The panel.
    pub kind: ImportKind,
    /// Panel URL with its base path.
    pub url: String,
    /// Panel user.
    pub username: String,
    /// Panel password.
    pub password: String,
    /// 3x-UI v3 API token.
    pub token: Option<String>,
}

/// One account that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFailure {
    /// Client email / username.
    pub account: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// The panel node.
    pub node_id: i64,
    /// The node was created by this run.
    pub node_created: bool,
    /// Inbounds created.
    pub inbounds_created: usize,
    /// Subscriptions created.
    pub imported: usize,
    /// Accounts already imported (or not importable: protocol we do not serve).
    pub skipped: usize,
    /// Accounts that failed.
    pub failed: Vec<ImportFailure>,
}

/// Progress of an import (the CLI draws a bar).
pub trait ImportProgress: Send + Sync {
    /// The number of accounts to go through.
    fn total(&self, n: u64);
    /// One account done.
    fn step(&self, account: &str);
}

impl ImportProgress for () {
    fn total(&self, _: u64) {}
    fn step(&self, _: &str) {}
}

/// One customer to create: the accounts that make it up (name, inbound ref, up, down).
struct Candidate {
    label: String,
    accounts: Vec<(String, String, i64, i64)>,
    uuid: Option<String>,
    secret: Option<String>,
    status: &'static str,
    expires_at: Option<i64>,
    hold_days: i64,
    data_limit: Option<i64>,
    used: i64,
}

fn ours(protocol: &str) -> bool {
    matches!(
        protocol,
        "vless" | "vmess" | "trojan" | "shadowsocks" | "hysteria2"
    )
}

fn err(e: PanelError) -> AppError {
    AppError::new(ErrorCode::GatewayFailed, e.to_string())
}

/// Our inbound settings from a 3x-UI inbound's stream settings.
fn xui_inbound_row(node_id: i64, i: &XInbound, now: i64) -> InboundRow {
    let s = &i.stream;
    let mut network = s["network"].as_str().unwrap_or("tcp").to_owned();
    if network == "raw" {
        network = "tcp".into();
    }
    if !matches!(
        network.as_str(),
        "tcp" | "ws" | "grpc" | "httpupgrade" | "xhttp" | "kcp"
    ) {
        network = "tcp".into();
    }
    if i.protocol == "hysteria2" {
        network = "udp".into();
    }
    let security = match s["security"].as_str() {
        Some("tls") => "tls",
        Some("reality") => "reality",
        _ => "none",
    };
    let mut st = serde_json::Map::new();
    let mut put = |k: &str, v: &Value| {
        if let Some(x) = v.as_str().filter(|x| !x.is_empty()) {
            st.insert(k.into(), json!(x));
        }
    };
    put("sni", &s["tlsSettings"]["serverName"]);
    put("sni", &s["realitySettings"]["serverNames"][0]);
    put("public_key", &s["realitySettings"]["settings"]["publicKey"]);
    put("short_id", &s["realitySettings"]["shortIds"][0]);
    put("fp", &s["realitySettings"]["settings"]["fingerprint"]);
    put("fp", &s["tlsSettings"]["settings"]["fingerprint"]);
    put("path", &s["wsSettings"]["path"]);
    put("host", &s["wsSettings"]["headers"]["Host"]);
    put("path", &s["httpupgradeSettings"]["path"]);
    put("service_name", &s["grpcSettings"]["serviceName"]);
    if i.protocol == "shadowsocks" {
        put("method", &i.settings["method"]);
    }
    if i.protocol == "vless" {
        put(
            "flow",
            &i.clients
                .first()
                .map_or(Value::Null, |c| c.raw["flow"].clone()),
        );
    }
    InboundRow {
        id: 0,
        node_id,
        tag: local_tag(if i.tag.is_empty() { "inbound" } else { &i.tag }),
        protocol: i.protocol.clone(),
        port: i.port,
        network,
        security: security.into(),
        settings: Value::Object(st).to_string(),
        is_enabled: i.enable,
        created_at: now,
        updated_at: now,
    }
}

fn xui_candidates(inbounds: &[XInbound], now: i64) -> Vec<Candidate> {
    let mut groups: BTreeMap<String, Vec<(&XInbound, &XClient)>> = BTreeMap::new();
    for i in inbounds.iter().filter(|i| ours(&i.protocol)) {
        for c in &i.clients {
            let key = if c.sub_id.is_empty() {
                format!("e:{}", c.email)
            } else {
                format!("s:{}", c.sub_id)
            };
            groups.entry(key).or_default().push((i, c));
        }
    }
    groups
        .into_values()
        .map(|members| {
            let first = members[0].1;
            let uuid = members
                .iter()
                .find(|(i, c)| matches!(i.protocol.as_str(), "vless" | "vmess") && !c.id.is_empty())
                .map(|(_, c)| c.id.clone());
            let secret = members.iter().find_map(|(i, c)| match i.protocol.as_str() {
                "trojan" if !c.password.is_empty() => Some(c.password.clone()),
                "hysteria2" if !c.auth.is_empty() => Some(c.auth.clone()),
                _ => None,
            });
            let used: i64 = members.iter().map(|(_, c)| c.up + c.down).sum();
            let limit = members.iter().map(|(_, c)| c.total_gb).max().unwrap_or(0);
            let expiry = members
                .iter()
                .map(|(_, c)| c.expiry_time)
                .max()
                .unwrap_or(0);
            let enabled = members.iter().any(|(_, c)| c.enable);
            let (status, expires_at, hold_days) = if expiry < 0 {
                ("on_hold", None, (-expiry / DAY_MS).max(1))
            } else {
                let exp = (expiry > 0).then_some(expiry);
                let st = if limit > 0 && used >= limit {
                    "limited"
                } else if exp.is_some_and(|e| e <= now) {
                    "expired"
                } else if enabled {
                    "active"
                } else {
                    "disabled"
                };
                (st, exp, 0)
            };
            Candidate {
                label: first.email.clone(),
                accounts: members
                    .iter()
                    .map(|(i, c)| (c.email.clone(), i.id.to_string(), c.up, c.down))
                    .collect(),
                uuid,
                secret,
                status,
                expires_at,
                hold_days,
                data_limit: (limit > 0).then_some(limit),
                used,
            }
        })
        .collect()
}

fn marzban_candidate(u: &MUser) -> Candidate {
    let proxy = |p: &str, k: &str| {
        u.proxies
            .get(p)
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (status, hold_days) = match u.status.as_str() {
        "on_hold" => (
            "on_hold",
            (u.on_hold_expire_duration.unwrap_or(86_400) / 86_400).max(1),
        ),
        "disabled" => ("disabled", 0),
        "limited" => ("limited", 0),
        "expired" => ("expired", 0),
        _ => ("active", 0),
    };
    Candidate {
        label: u.username.clone(),
        accounts: vec![(u.username.clone(), String::new(), 0, u.counter())],
        uuid: proxy("vless", "id").or_else(|| proxy("vmess", "id")),
        secret: proxy("trojan", "password"),
        status,
        expires_at: u
            .expire
            .filter(|e| *e > 0 && status != "on_hold")
            .map(|e| e * 1000),
        hold_days,
        data_limit: u.data_limit.filter(|d| *d > 0),
        used: u.used_traffic,
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl App {
    /// Imports a panel (see the module docs).
    pub async fn import_panel(
        &self,
        req: &ImportRequest,
        progress: &dyn ImportProgress,
    ) -> AppResult<ImportSummary> {
        let settings = self.panel_settings_for_import();
        let now = self.now().millis();
        let kind = match req.kind {
            ImportKind::Xui => "xui",
            ImportKind::Marzban => "marzban",
        };
        let base = super::normalize_base(kind, &req.url).map_err(err)?;
        let (inbound_rows, candidates, version) = match req.kind {
            ImportKind::Xui => {
                let mut cfg = XuiConfig::new(base.as_str(), &req.username, &req.password);
                cfg.token = req.token.clone();
                cfg.timeout = settings.timeout;
                cfg.retry = settings.retry;
                let c = XuiClient::new(cfg).map_err(err)?;
                let g = c.generation().await.map_err(err)?;
                let inbounds = c.inbounds().await.map_err(err)?;
                let rows: Vec<InboundRow> = inbounds
                    .iter()
                    .filter(|i| ours(&i.protocol))
                    .map(|i| xui_inbound_row(0, i, now))
                    .collect();
                (rows, xui_candidates(&inbounds, now), g.label().to_owned())
            }
            ImportKind::Marzban => {
                let mut cfg = MarzbanConfig::new(base.as_str(), &req.username, &req.password);
                cfg.timeout = settings.timeout;
                cfg.retry = settings.retry;
                let c = MarzbanClient::new(cfg).map_err(err)?;
                let rows = c
                    .inbounds()
                    .await
                    .map_err(err)?
                    .into_iter()
                    .filter(|i| ours(&i.protocol))
                    .map(|i| InboundRow {
                        id: 0,
                        node_id: 0,
                        tag: local_tag(&i.tag),
                        network: match i.network.as_str() {
                            n @ ("ws" | "grpc" | "httpupgrade" | "xhttp" | "kcp") => n.to_owned(),
                            _ => "tcp".to_owned(),
                        },
                        security: match i.tls.as_str() {
                            s @ ("tls" | "reality") => s.to_owned(),
                            _ => "none".to_owned(),
                        },
                        port: i
                            .port
                            .as_i64()
                            .or_else(|| i.port.as_str().and_then(|p| p.parse().ok()))
                            .unwrap_or(443),
                        protocol: i.protocol,
                        settings: "{}".into(),
                        is_enabled: true,
                        created_at: now,
                        updated_at: now,
                    })
                    .collect();
                let users = c.users().await.map_err(err)?;
                (
                    rows,
                    users.iter().map(marzban_candidate).collect(),
                    "marzban".to_owned(),
                )
            }
        };
        let mut summary = ImportSummary::default();
        let node = self.import_node(kind, &base, req, &mut summary).await?;
        summary.inbounds_created = self.import_inbounds(node.id, inbound_rows).await?;
        progress.total(u64::try_from(candidates.len()).unwrap_or(0));
        let known: HashSet<String> = {
            let mut c = self.db().read().await?;
            repo::accounts(c.conn(), node.id)
                .await?
                .into_iter()
                .map(|a| a.remote_name)
                .collect()
        };
        for cand in candidates {
            if cand.accounts.iter().all(|a| known.contains(&a.0)) {
                summary.skipped += 1;
            } else {
                match self.import_one(&node, &cand, now).await {
                    Ok(()) => summary.imported += 1,
                    Err(e) => summary.failed.push(ImportFailure {
                        account: cand.label.clone(),
                        reason: e.message,
                    }),
                }
            }
            progress.step(&cand.label);
        }
        let mut tx = self.db().begin().await?;
        let mut st =
            repo::state(tx.conn(), node.id)
                .await?
                .unwrap_or(mrjbot_db::panels::PanelStateRow {
                    node_id: node.id,
                    api_version: None,
                    api_token: None,
                    last_sync_at: None,
                    last_error: None,
                    failures: 0,
                    next_attempt_at: 0,
                    updated_at: now,
                });
        st.api_version = Some(version);
        repo::put_state(tx.conn(), &st).await?;
        tx.commit().await?;
        self.feed_reload_all().await?;
        tracing::info!(
            node = node.id,
            imported = summary.imported,
            skipped = summary.skipped,
            failed = summary.failed.len(),
            "panel imported"
        );
        Ok(summary)
    }

    fn panel_settings_for_import(&self) -> super::PanelSettings {
        self.inner.panel_settings.get().copied().unwrap_or_default()
    }

    async fn import_node(
        &self,
        kind: &str,
        base: &url::Url,
        req: &ImportRequest,
        summary: &mut ImportSummary,
    ) -> AppResult<NodeRow> {
        let now = self.now().millis();
        let url = base.as_str().to_owned();
        let mut tx = self.db().begin().await?;
        let (nodes, _) = nodes_repo::all_with_inbounds(tx.conn()).await?;
        let node = if let Some(mut n) = nodes
            .iter()
            .find(|n| n.kind == kind && n.api_url.as_deref() == Some(&url))
            .cloned()
        {
            n.api_username = Some(req.username.clone());
            n.api_password = Some(req.password.clone());
            n.updated_at = now;
            nodes_repo::update(tx.conn(), &n).await?;
            n
        } else {
            let host = base.host_str().unwrap_or("panel").to_owned();
            let mut name = format!(
                "{kind}-{host}-{}",
                base.port_or_known_default().unwrap_or(0)
            );
            name.truncate(60);
            let taken: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            let mut unique = name.clone();
            let mut i = 2;
            while taken.contains(unique.as_str()) {
                unique = format!("{name}-{i}");
                i += 1;
            }
            let mut row = NodeRow {
                id: 0,
                name: unique,
                kind: kind.into(),
                address: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                region: None,
                ip_type: "dynamic".into(),
                api_url: Some(url),
                api_username: Some(req.username.clone()),
                api_password: Some(req.password.clone()),
                secret_hash: None,
                status: "unknown".into(),
                is_enabled: true,
                capacity: None,
                last_heartbeat_at: None,
                created_at: now,
                updated_at: now,
            };
            row.id = nodes_repo::insert(tx.conn(), &row).await?;
            summary.node_created = true;
            row
        };
        if req.token.is_some() {
            repo::set_api_token(tx.conn(), node.id, req.token.as_deref(), now).await?;
        }
        tx.commit().await?;
        summary.node_id = node.id;
        Ok(node)
    }

    async fn import_inbounds(&self, node_id: i64, rows: Vec<InboundRow>) -> AppResult<usize> {
        let mut tx = self.db().begin().await?;
        let existing: HashSet<String> = nodes_repo::list_inbounds(tx.conn(), node_id)
            .await?
            .into_iter()
            .map(|i| i.tag)
            .collect();
        let mut n = 0;
        let mut seen = HashSet::new();
        for mut r in rows {
            if existing.contains(&r.tag)
                || !seen.insert(r.tag.clone())
                || !(1..=65_535).contains(&r.port)
            {
                continue;
            }
            r.node_id = node_id;
            nodes_repo::insert_inbound(tx.conn(), &r).await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn import_one(&self, node: &NodeRow, cand: &Candidate, now: i64) -> AppResult<()> {
        let mut tx = self.db().begin().await?;
        let mut username: String = cand
            .label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_.-@".contains(*c))
            .take(48)
            .collect();
        if username.is_empty() {
            username = format!("panel{}", node.id);
        }
        if users_repo::get_by_username(tx.conn(), &username)
            .await?
            .is_some()
        {
            username = format!("{username}-n{}", node.id);
        }
        let user = UserRow {
            id: 0,
            username: Some(username),
            email: None,
            telegram_id: None,
            display_name: Some(cand.label.clone()),
            language: "fa".into(),
            password_hash: None,
            status: "active".into(),
            failed_logins: 0,
            locked_until: None,
            note: Some(format!("imported from panel node {}", node.name)),
            password_changed_at: None,
            last_login_at: None,
            created_at: now,
            updated_at: now,
        };
        let user_id = users_repo::insert(tx.conn(), &user)
            .await
            .map_err(|e| AppError::new(ErrorCode::AlreadyExists, format!("customer: {e}")))?;
        let sub = SubscriptionRow {
            id: 0,
            user_id,
            plan_id: None,
            token: Some(SecretToken::generate().as_str().to_owned()),
            status: cand.status.into(),
            expires_at: cand.expires_at,
            hold_days: cand.hold_days,
            data_limit_bytes: cand.data_limit,
            used_bytes: cand.used,
            lifetime_used_bytes: cand.used,
            device_limit: None,
            ip_type: node.ip_type.clone(),
            node_id: Some(node.id),
            credential_uuid: cand.uuid.clone().unwrap_or_else(new_uuid),
            credential_secret: cand.secret.clone().unwrap_or_else(new_secret),
            note: Some(format!("imported from {}: {}", node.name, cand.label)),
            version: 1,
            online_at: None,
            created_at: now,
            updated_at: now,
        };
        let sub_id = subs_repo::insert(tx.conn(), &sub).await.map_err(|e| {
            AppError::new(
                ErrorCode::AlreadyExists,
                format!("subscription (credentials already used by another subscription?): {e}"),
            )
        })?;
        for (name, remote_ref, up, down) in &cand.accounts {
            repo::upsert_account(
                tx.conn(),
                &PanelAccountRow {
                    node_id: node.id,
                    remote_name: name.clone(),
                    subscription_id: sub_id,
                    remote_ref: remote_ref.clone(),
                    base_up: *up,
                    base_down: *down,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
