//! The panel reconciler: one pass per enabled panel node counts the traffic of the
//! managed accounts, then makes the panel's managed accounts equal the node's desired
//! state (see the module docs of `panels` for the guarantees).
//!
//! A panel enforces the plan on its own too (while the control plane is away): its cap is
//! set to "the account's counter now + what the subscription has left", so the panel cuts
//! the account where MRJBot would, whatever traffic happened on other nodes.

use super::marzban::{MUser, MarzbanClient, MarzbanConfig};
use super::xui::{XClient, XInbound, XuiClient, XuiConfig};
use super::{Expiry, PanelError, Retry, local_tag};
use crate::App;
use crate::dataplane::{DesiredAccount, NodeDesired};
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use mrjbot_db::nodes::NodeRow;
use mrjbot_db::panels::{self as repo, PanelAccountRow, PanelStateRow};
use mrjbot_db::usage::{self as usage_repo, SubUsage};
use mrjbot_domain::ErrorCode;
use mrjbot_node_proto::UserSpec;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
/// Failed syncs in a row after which a panel node is `down` (before: `degraded`).
const DOWN_AFTER: i64 = 3;
/// Longest wait between attempts on a failing panel.
const MAX_BACKOFF_MS: i64 = 300_000;

/// How the reconciler runs.
#[derive(Debug, Clone, Copy)]
pub struct PanelSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Time allowed for one panel call.
    pub timeout: Duration,
    /// Retries of panel calls whose outcome was unknown.
    pub retry: Retry,
}

impl Default for PanelSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            retry: Retry::default(),
        }
    }
}

/// What one sync of a panel node did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// API generation (`3x-ui/panel-api`, `marzban`).
    pub api_version: String,
    /// Accounts created.
    pub created: usize,
    /// Accounts changed (limits, expiry, credentials, re-enabled).
    pub updated: usize,
    /// Accounts disabled (no longer desired; the subscription still exists).
    pub disabled: usize,
    /// Accounts deleted (their subscription is gone).
    pub deleted: usize,
    /// Bytes counted by this sync.
    pub counted_bytes: i64,
}

#[derive(Clone)]
pub(crate) enum Client {
    Xui(Arc<XuiClient>),
    Marzban(Arc<MarzbanClient>),
}

/// Panel clients per node (they keep sessions and detected generations), rebuilt when
/// the node's URL or credentials change.
#[derive(Default)]
pub(crate) struct Clients(Mutex<HashMap<i64, (String, Client)>>);

fn panel_err(e: PanelError) -> AppError {
    AppError::new(ErrorCode::GatewayFailed, e.to_string())
}

/// The delta of a cumulative counter against its baseline; a counter below the baseline
/// was reset by the panel and counts from zero.
fn delta(now: i64, base: i64) -> i64 {
    if now >= base { now - base } else { now.max(0) }
}

/// The cap to set on a panel account whose counter reads `counter` (0: unlimited).
fn panel_cap(acct: &DesiredAccount, counter: i64) -> i64 {
    match acct.data_limit_bytes {
        None => 0,
        Some(limit) => counter.saturating_add((limit - acct.used_bytes).max(1)),
    }
}

fn expiry_of(acct: &DesiredAccount) -> Expiry {
    if acct.hold_days > 0 {
        Expiry::OnHold {
            days: acct.hold_days,
        }
    } else {
        acct.expires_at.map_or(Expiry::Never, Expiry::At)
    }
}

/// The key of `user` for a protocol (and Shadowsocks method).
fn key_for(user: &UserSpec, protocol: &str, ss_method: Option<&str>) -> String {
    match protocol {
        "vless" | "vmess" => user.uuid.clone(),
        "shadowsocks" => ss_method
            .and_then(|m| user.ss_keys.get(m).cloned())
            .unwrap_or_else(|| {
                let creds = mrjbot_domain::proxy::Credentials {
                    uuid: user.uuid.clone(),
                    secret: user.password.clone(),
                };
                creds.shadowsocks_key(ss_method.unwrap_or(""))
            }),
        _ => user.password.clone(),
    }
}

impl App {
    /// Sets how the panel reconciler runs (once; later calls are ignored).
    pub fn set_panel_settings(&self, s: PanelSettings) {
        let _ = self.inner.panel_settings.set(s);
    }

    fn panel_settings(&self) -> PanelSettings {
        self.inner.panel_settings.get().copied().unwrap_or_default()
    }

    pub(crate) async fn panel_client(&self, node: &NodeRow) -> AppResult<Client> {
        let token = {
            let mut c = self.db().read().await?;
            repo::state(c.conn(), node.id)
                .await?
                .and_then(|s| s.api_token)
        };
        let url = node.api_url.clone().unwrap_or_default();
        let user = node.api_username.clone().unwrap_or_default();
        let pw = node.api_password.clone().unwrap_or_default();
        let fp = format!(
            "{}\n{url}\n{user}\n{pw}\n{}",
            node.kind,
            token.as_deref().unwrap_or("")
        );
        if let Ok(m) = self.inner.panels.0.lock()
            && let Some((f, c)) = m.get(&node.id)
            && *f == fp
        {
            return Ok(c.clone());
        }
        let s = self.panel_settings();
        let client = match node.kind.as_str() {
            "xui" => {
                let mut cfg = XuiConfig::new(&url, &user, &pw);
                cfg.token = token;
                cfg.timeout = s.timeout;
                cfg.retry = s.retry;
                Client::Xui(Arc::new(XuiClient::new(cfg).map_err(panel_err)?))
            }
            "marzban" => {
                let mut cfg = MarzbanConfig::new(&url, &user, &pw);
                cfg.timeout = s.timeout;
                cfg.retry = s.retry;
                Client::Marzban(Arc::new(MarzbanClient::new(cfg).map_err(panel_err)?))
            }
            _ => return Err(AppError::field("kind", "not a panel node")),
        };
        if let Ok(mut m) = self.inner.panels.0.lock() {
            m.insert(node.id, (fp, client.clone()));
        }
        Ok(client)
    }

    /// The panel loop (`mrjbot serve`): every interval, syncs each enabled panel node
    /// whose backoff has passed. Never returns.
    pub async fn run_panels(self) {
        let every = self.panel_settings().interval;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.sync_due_panels().await {
                tracing::warn!(error = %e, "panel reconciliation pass failed");
            }
        }
    }

    /// Syncs every enabled panel node whose backoff has passed; a failing panel does not
    /// stop the others. Returns how many synced successfully.
    pub async fn sync_due_panels(&self) -> AppResult<usize> {
        let nodes = {
            let mut c = self.db().read().await?;
            repo::panel_nodes(c.conn()).await?
        };
        let now = self.now().millis();
        let mut ok = 0;
        for id in nodes {
            let due = {
                let mut c = self.db().read().await?;
                repo::state(c.conn(), id)
                    .await?
                    .is_none_or(|s| s.next_attempt_at <= now)
            };
            if due && self.sync_panel(id).await.is_ok() {
                ok += 1;
            }
        }
        Ok(ok)
    }

    /// Syncs one panel node now (ignoring backoff) and records the outcome: the node's
    /// status, the last error, and the next attempt.
    pub async fn sync_panel(&self, node_id: i64) -> AppResult<SyncReport> {
        let node = {
            let mut c = self.db().read().await?;
            mrjbot_db::nodes::get(c.conn(), node_id).await?
        }
        .ok_or_else(|| AppError::not_found(ErrorCode::NodeNotFound, "node"))?;
        let result = match self.panel_client(&node).await {
            Ok(Client::Xui(c)) => self.sync_xui(&node, &c).await,
            Ok(Client::Marzban(c)) => self.sync_marzban(&node, &c).await,
            Err(e) => Err(e),
        };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let before = repo::state(tx.conn(), node_id).await?;
        let mut st = before.clone().unwrap_or(PanelStateRow {
            node_id,
            api_version: None,
            api_token: None,
            last_sync_at: None,
            last_error: None,
            failures: 0,
            next_attempt_at: 0,
            updated_at: now,
        });
        st.updated_at = now;
        let status = match &result {
            Ok(r) => {
                st.api_version = Some(r.api_version.clone());
                st.last_sync_at = Some(now);
                st.last_error = None;
                st.failures = 0;
                st.next_attempt_at = 0;
                "online"
            }
            Err(e) => {
                st.failures += 1;
                st.last_error = Some(e.message.chars().take(2000).collect());
                let interval =
                    i64::try_from(self.panel_settings().interval.as_millis()).unwrap_or(10_000);
                let wait = interval
                    .saturating_mul(1 << st.failures.clamp(0, 16))
                    .min(MAX_BACKOFF_MS);
                let jitter = rand::rng().random_range(0..=wait / 4);
                st.next_attempt_at = now + wait + jitter;
                if st.failures >= DOWN_AFTER {
                    "down"
                } else {
                    "degraded"
                }
            }
        };
        repo::put_state(tx.conn(), &st).await?;
        let changed = repo::set_node_status(tx.conn(), node_id, status, now).await?;
        if let Some(from) = changed {
            tracing::info!(
                node = node_id,
                from,
                to = status,
                "panel node status changed"
            );
            self.commit_changed(tx, Changed::Topology).await?;
        } else {
            tx.commit().await?;
        }
        if let Err(e) = &result {
            tracing::warn!(node = node_id, failures = st.failures, error = %e, "panel sync failed");
        }
        result
    }

    /// Counts `counters` (remote name → (up, down)) of the managed accounts against their
    /// baselines, adds the deltas and moves the baselines in one transaction.
    async fn count_usage(
        &self,
        node_id: i64,
        mapped: &[PanelAccountRow],
        counters: &HashMap<String, (i64, i64)>,
    ) -> AppResult<i64> {
        let mut merged: BTreeMap<i64, SubUsage> = BTreeMap::new();
        let mut moves = Vec::new();
        for a in mapped {
            let Some(&(up, down)) = counters.get(&a.remote_name) else {
                continue;
            };
            if up == a.base_up && down == a.base_down {
                continue;
            }
            let (du, dd) = (delta(up, a.base_up), delta(down, a.base_down));
            let m = merged.entry(a.subscription_id).or_insert(SubUsage {
                subscription_id: a.subscription_id,
                up: 0,
                down: 0,
            });
            m.up = m.up.saturating_add(du);
            m.down = m.down.saturating_add(dd);
            moves.push((a.remote_name.clone(), up, down));
        }
        if moves.is_empty() {
            return Ok(0);
        }
        let entries: Vec<SubUsage> = merged.into_values().collect();
        let total = entries
            .iter()
            .map(|e| e.up.saturating_add(e.down))
            .fold(0, i64::saturating_add);
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let applied = usage_repo::apply(tx.conn(), node_id, &entries, now).await?;
        for (name, up, down) in &moves {
            repo::set_baseline(tx.conn(), node_id, name, *up, *down, now).await?;
        }
        self.usage_commit(tx, applied).await?;
        Ok(total)
    }

    async fn remember(
        &self,
        node_id: i64,
        name: &str,
        sub: i64,
        remote_ref: &str,
    ) -> AppResult<()> {
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        repo::upsert_account(
            tx.conn(),
            &PanelAccountRow {
                node_id,
                remote_name: name.to_owned(),
                subscription_id: sub,
                remote_ref: remote_ref.to_owned(),
                base_up: 0,
                base_down: 0,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget(&self, node_id: i64, name: &str) -> AppResult<()> {
        let mut tx = self.db().begin().await?;
        repo::delete_account(tx.conn(), node_id, name).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mapped_and_existing(
        &self,
        node_id: i64,
    ) -> AppResult<(Vec<PanelAccountRow>, HashSet<i64>)> {
        let mut c = self.db().read().await?;
        let mapped = repo::accounts(c.conn(), node_id).await?;
        let mut ids: Vec<i64> = mapped.iter().map(|a| a.subscription_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let existing = repo::existing_subscriptions(c.conn(), &ids).await?;
        Ok((mapped, existing.into_iter().collect()))
    }

    async fn sync_xui(&self, node: &NodeRow, c: &XuiClient) -> AppResult<SyncReport> {
        let mut report = SyncReport {
            api_version: c.generation().await.map_err(panel_err)?.label().to_owned(),
            ..SyncReport::default()
        };
        let inbounds = c.inbounds().await.map_err(panel_err)?;
        let (mapped, _) = self.mapped_and_existing(node.id).await?;
        let counters: HashMap<String, (i64, i64)> = inbounds
            .iter()
            .flat_map(|i| i.clients.iter().map(|c| (c.email.clone(), (c.up, c.down))))
            .collect();
        report.counted_bytes = self.count_usage(node.id, &mapped, &counters).await?;
        let desired = self.node_desired(node.id);
        // The usage just counted may have changed which subscriptions are usable.
        let (mapped, existing) = self.mapped_and_existing(node.id).await?;
        let tags: HashSet<&str> = desired
            .state
            .inbounds
            .iter()
            .map(|i| i.tag.as_str())
            .collect();
        let served: Vec<&XInbound> = inbounds
            .iter()
            .filter(|i| tags.contains(local_tag(&i.tag).as_str()))
            .collect();
        let find = |email: &str| -> Option<(&XInbound, &XClient)> {
            inbounds
                .iter()
                .find_map(|i| i.clients.iter().find(|c| c.email == email).map(|c| (i, c)))
        };
        let mut wanted: HashSet<String> = HashSet::new();
        for (user, acct) in desired.state.users.iter().zip(&desired.accounts) {
            for ib in &served {
                let inbound_ref = ib.id.to_string();
                let name = mapped
                    .iter()
                    .find(|m| {
                        m.subscription_id == acct.subscription_id && m.remote_ref == inbound_ref
                    })
                    .map_or_else(
                        || format!("mrj{}-{}", acct.subscription_id, ib.id),
                        |m| m.remote_name.clone(),
                    );
                wanted.insert(name.clone());
                let current = ib.clients.iter().find(|c| c.email == name);
                let counter = current.map_or(0, |c| c.up + c.down);
                let spec = xui_client(ib, &name, user, acct, panel_cap(acct, counter), current);
                match current {
                    Some(cur) if xui_same(ib, cur, &spec) => {}
                    Some(cur) => {
                        c.update_client(ib, cur, &spec).await.map_err(panel_err)?;
                        report.updated += 1;
                    }
                    None => {
                        if !mapped.iter().any(|m| m.remote_name == name) {
                            self.remember(node.id, &name, acct.subscription_id, &inbound_ref)
                                .await?;
                        }
                        if self.xui_create(c, ib, &name, &spec).await? {
                            report.created += 1;
                        } else {
                            report.updated += 1;
                        }
                    }
                }
            }
        }
        for m in mapped.iter().filter(|m| !wanted.contains(&m.remote_name)) {
            let remote = find(&m.remote_name);
            if existing.contains(&m.subscription_id) {
                if let Some((ib, cur)) = remote
                    && cur.enable
                {
                    let mut off = cur.raw.clone();
                    off["enable"] = Value::Bool(false);
                    c.update_client(ib, cur, &off).await.map_err(panel_err)?;
                    report.disabled += 1;
                }
            } else {
                if let Some((ib, cur)) = remote {
                    c.delete_client(ib, cur).await.map_err(panel_err)?;
                    report.deleted += 1;
                }
                self.forget(node.id, &m.remote_name).await?;
            }
        }
        Ok(report)
    }

    /// Creates a client; after a refusal or an unknown outcome looks the email up and
    /// updates what is there instead of creating twice. True when created.
    async fn xui_create(
        &self,
        c: &XuiClient,
        ib: &XInbound,
        name: &str,
        spec: &Value,
    ) -> AppResult<bool> {
        let retry = self.panel_settings().retry;
        let mut attempt = 1;
        loop {
            let err = match c.add_client(ib, spec).await {
                Ok(()) => return Ok(true),
                Err(e) => e,
            };
            let unknown = err.is_unknown();
            let inbounds = c.inbounds().await.map_err(panel_err)?;
            let found = inbounds.iter().find_map(|i| {
                i.clients
                    .iter()
                    .find(|x| x.email == name)
                    .map(|x| (i.clone(), x.clone()))
            });
            match found {
                Some((i, cur)) => {
                    tracing::info!(email = name, error = %err, "3x-UI client exists after a failed create; updated instead");
                    if !xui_same(&i, &cur, spec) {
                        c.update_client(&i, &cur, spec).await.map_err(panel_err)?;
                    }
                    return Ok(false);
                }
                None if unknown && attempt < retry.attempts.max(1) => {
                    attempt += 1;
                }
                None => return Err(panel_err(err)),
            }
        }
    }

    async fn sync_marzban(&self, node: &NodeRow, c: &MarzbanClient) -> AppResult<SyncReport> {
        let mut report = SyncReport {
            api_version: "marzban".into(),
            ..SyncReport::default()
        };
        let users = c.users().await.map_err(panel_err)?;
        let by_name: HashMap<&str, &MUser> =
            users.iter().map(|u| (u.username.as_str(), u)).collect();
        let (mapped, _) = self.mapped_and_existing(node.id).await?;
        let counters: HashMap<String, (i64, i64)> = users
            .iter()
            .map(|u| (u.username.clone(), (0, u.counter())))
            .collect();
        report.counted_bytes = self.count_usage(node.id, &mapped, &counters).await?;
        let desired = self.node_desired(node.id);
        let (mapped, existing) = self.mapped_and_existing(node.id).await?;
        let tags: HashSet<&str> = desired
            .state
            .inbounds
            .iter()
            .map(|i| i.tag.as_str())
            .collect();
        let mut by_protocol: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in c.inbounds().await.map_err(panel_err)? {
            if tags.contains(local_tag(&i.tag).as_str()) {
                by_protocol
                    .entry(i.protocol.clone())
                    .or_default()
                    .push(i.tag.clone());
            }
        }
        let mut wanted: HashSet<String> = HashSet::new();
        if !by_protocol.is_empty() {
            for (user, acct) in desired.state.users.iter().zip(&desired.accounts) {
                let name = mapped
                    .iter()
                    .find(|m| m.subscription_id == acct.subscription_id)
                    .map_or_else(
                        || format!("mrj{}", acct.subscription_id),
                        |m| m.remote_name.clone(),
                    );
                wanted.insert(name.clone());
                let current = by_name.get(name.as_str()).copied();
                let body = marzban_user(&name, user, acct, &by_protocol, &desired, current);
                match current {
                    Some(cur) if marzban_same(cur, &body) => {}
                    Some(_) => {
                        c.modify(&name, &body).await.map_err(panel_err)?;
                        report.updated += 1;
                    }
                    None => {
                        if !mapped.iter().any(|m| m.remote_name == name) {
                            self.remember(node.id, &name, acct.subscription_id, "")
                                .await?;
                        }
                        if self.marzban_create(c, &name, &body).await? {
                            report.created += 1;
                        } else {
                            report.updated += 1;
                        }
                    }
                }
            }
        }
        for m in mapped.iter().filter(|m| !wanted.contains(&m.remote_name)) {
            let remote = by_name.get(m.remote_name.as_str());
            if existing.contains(&m.subscription_id) {
                if let Some(u) = remote
                    && u.status != "disabled"
                {
                    c.modify(&m.remote_name, &json!({"status": "disabled"}))
                        .await
                        .map_err(panel_err)?;
                    report.disabled += 1;
                }
            } else {
                if remote.is_some() {
                    c.delete(&m.remote_name).await.map_err(panel_err)?;
                    report.deleted += 1;
                }
                self.forget(node.id, &m.remote_name).await?;
            }
        }
        Ok(report)
    }

    /// Creates a user; a 409 or an unknown outcome is followed by a lookup, and an
    /// existing user is modified instead. True when created.
    async fn marzban_create(&self, c: &MarzbanClient, name: &str, body: &Value) -> AppResult<bool> {
        let retry = self.panel_settings().retry;
        let mut attempt = 1;
        loop {
            let err = match c.create(body).await {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            if !err.is_unknown() && err.refused_status() != Some(409) {
                return Err(panel_err(err));
            }
            match c.user(name).await.map_err(panel_err)? {
                Some(cur) => {
                    tracing::info!(username = name, error = %err, "Marzban user exists after a failed create; modified instead");
                    if !marzban_same(&cur, body) {
                        c.modify(name, body).await.map_err(panel_err)?;
                    }
                    return Ok(false);
                }
                None if attempt < retry.attempts.max(1) => attempt += 1,
                None => return Err(panel_err(err)),
            }
        }
    }
}

/// The full 3x-UI client object for a desired account (fields the panel added to an
/// existing client are kept).
fn xui_client(
    ib: &XInbound,
    name: &str,
    user: &UserSpec,
    acct: &DesiredAccount,
    cap: i64,
    current: Option<&XClient>,
) -> Value {
    let expiry = match expiry_of(acct) {
        Expiry::Never => 0,
        Expiry::At(ms) => ms,
        Expiry::OnHold { days } => -days.saturating_mul(DAY_MS),
    };
    let mut c = current.map_or_else(|| json!({}), |c| c.raw.clone());
    if !c.is_object() {
        c = json!({});
    }
    c["email"] = json!(name);
    c["enable"] = json!(true);
    c["totalGB"] = json!(cap);
    c["expiryTime"] = json!(expiry);
    if current.is_none() {
        c["limitIp"] = json!(0);
        c["tgId"] = json!(0);
        c["subId"] = json!(format!("mrj{}", acct.subscription_id));
        c["comment"] = json!("mrjbot");
        c["reset"] = json!(0);
    }
    let method = ib.settings["method"].as_str();
    let key = key_for(user, &ib.protocol, method);
    match ib.protocol.as_str() {
        "vless" => {
            c["id"] = json!(key);
            if c.get("flow").is_none() {
                c["flow"] = json!("");
            }
        }
        "vmess" => {
            c["id"] = json!(key);
            if c.get("security").is_none() {
                c["security"] = json!("auto");
            }
        }
        "hysteria" | "hysteria2" => c["auth"] = json!(key),
        _ => c["password"] = json!(key),
    }
    c
}

fn xui_same(ib: &XInbound, cur: &XClient, spec: &Value) -> bool {
    let key_field = match ib.protocol.as_str() {
        "vless" | "vmess" => "id",
        "hysteria" | "hysteria2" => "auth",
        _ => "password",
    };
    let want_expiry = spec["expiryTime"].as_i64().unwrap_or(0);
    // A "start on first use" account the panel already started is not put back on hold.
    let expiry_ok = cur.expiry_time == want_expiry || (want_expiry < 0 && cur.expiry_time > 0);
    cur.enable == spec["enable"].as_bool().unwrap_or(true)
        && cur.total_gb == spec["totalGB"].as_i64().unwrap_or(0)
        && expiry_ok
        && cur.raw[key_field] == spec[key_field]
}

/// The `UserCreate` / `UserModify` body of a desired account.
fn marzban_user(
    name: &str,
    user: &UserSpec,
    acct: &DesiredAccount,
    by_protocol: &BTreeMap<String, Vec<String>>,
    desired: &NodeDesired,
    current: Option<&MUser>,
) -> Value {
    let mut proxies = serde_json::Map::new();
    for protocol in by_protocol.keys() {
        let p = match protocol.as_str() {
            "vless" => {
                let flow = desired
                    .state
                    .inbounds
                    .iter()
                    .find(|i| i.protocol == "vless")
                    .and_then(|i| {
                        i.settings
                            .get("flow")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                json!({"id": user.uuid, "flow": flow})
            }
            "vmess" => json!({"id": user.uuid}),
            "shadowsocks" => {
                let method = "chacha20-ietf-poly1305";
                json!({"password": key_for(user, "shadowsocks", Some(method)), "method": method})
            }
            _ => json!({"password": user.password}),
        };
        proxies.insert(protocol.clone(), p);
    }
    let counter = current.map_or(0, |u| u.used_traffic);
    let mut body = json!({
        "username": name,
        "proxies": proxies,
        "inbounds": by_protocol,
        "data_limit": panel_cap(acct, counter),
        "data_limit_reset_strategy": "no_reset",
        "note": format!("mrjbot subscription {}", acct.subscription_id),
    });
    match expiry_of(acct) {
        Expiry::OnHold { days } => {
            body["status"] = json!("on_hold");
            body["expire"] = json!(0);
            body["on_hold_expire_duration"] = json!(days.saturating_mul(86_400));
        }
        Expiry::At(ms) => {
            body["status"] = json!("active");
            body["expire"] = json!(ms / 1000);
        }
        Expiry::Never => {
            body["status"] = json!("active");
            body["expire"] = json!(0);
        }
    }
    body
}

fn marzban_same(cur: &MUser, body: &Value) -> bool {
    let want_status = body["status"].as_str().unwrap_or("active");
    // An on-hold user the panel already started is not put back on hold.
    let status_ok =
        cur.status == want_status || (want_status == "on_hold" && cur.status == "active");
    let expire_ok =
        want_status != "active" || cur.expire.unwrap_or(0) == body["expire"].as_i64().unwrap_or(0);
    let proxies_ok = body["proxies"].as_object().is_some_and(|want| {
        want.iter().all(|(p, w)| {
            let have = cur.proxies.get(p);
            ["id", "password"]
                .iter()
                .all(|k| w.get(*k).is_none() || have.and_then(|h| h.get(*k)) == w.get(*k))
        })
    });
    let inbounds_ok = serde_json::to_value(&cur.inbounds).ok().as_ref() == Some(&body["inbounds"]);
    status_ok
        && expire_ok
        && proxies_ok
        && inbounds_ok
        && cur.data_limit.unwrap_or(0) == body["data_limit"].as_i64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_survive_resets() {
        assert_eq!(delta(150, 100), 50);
        assert_eq!(delta(30, 100), 30);
        assert_eq!(delta(0, 0), 0);
    }

    #[test]
    fn caps_leave_what_the_plan_has_left() {
        let mut a = DesiredAccount {
            subscription_id: 1,
            expires_at: None,
            hold_days: 0,
            data_limit_bytes: Some(1000),
            used_bytes: 400,
            username: "u".into(),
        };
        assert_eq!(panel_cap(&a, 100), 700);
        a.used_bytes = 1000;
        assert_eq!(panel_cap(&a, 100), 101);
        a.data_limit_bytes = None;
        assert_eq!(panel_cap(&a, 100), 0);
    }
}
