//! `mrjbot bench dataplane`: the control plane's side of the data plane under load, over
//! loopback HTTP exactly as node agents speak it. Seeds N subscriptions spread over M
//! agent nodes, starts the real server, then measures building each node's desired state,
//! unchanged polls (304), and usage ingestion (full reports of every user of a node, and
//! small reports), and checks that every byte sent was counted exactly once.

use crate::config::Config;
use anyhow::{Context, bail};
use mrjbot_app::Actor;
use mrjbot_node_proto as proto;
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Knobs of the data plane benchmark.
#[derive(Debug, Clone)]
pub struct DataplaneBench {
    /// Subscriptions seeded (spread evenly over the nodes, pinned).
    pub subs: usize,
    /// Agent nodes.
    pub nodes: usize,
    /// Full reports each node sends (one entry per user of the node).
    pub full_reports: usize,
    /// Seconds of the small-report run.
    pub small_secs: u64,
    /// Entries per small report.
    pub small_entries: usize,
    /// Seconds of the unchanged-poll run.
    pub poll_secs: u64,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Runs the benchmark against a fresh store described by `cfg` (SQLite in a temporary
/// directory unless `database_url` names an empty PostgreSQL database).
pub async fn dataplane(mut cfg: Config, b: DataplaneBench) -> anyhow::Result<()> {
    if b.nodes == 0 || b.subs < b.nodes {
        bail!("need at least one node and one subscription per node");
    }
    let dir = tempfile_dir()?;
    if cfg.database_url.is_none() {
        cfg.data_dir = dir.clone();
    }
    cfg.listen = "127.0.0.1:0".into();
    cfg.telegram_token = None;
    let running = crate::start(&cfg, crate::system_clock()).await?;
    let app = running.app.clone();
    let base = format!("http://{}", running.addr);
    println!(
        "mrjbot bench dataplane: {} subscriptions on {} nodes, {} database",
        b.subs,
        b.nodes,
        app.db().engine().name()
    );

    // ------------------------------------------------------------------ seed
    let started = Instant::now();
    let sys = Actor::system("bench");
    let mut secrets = Vec::new();
    let mut node_ids = Vec::new();
    for n in 0..b.nodes {
        let node: mrjbot_app::nodes::NewNode = serde_json::from_value(serde_json::json!({
            "name": format!("bench-{n}"), "kind": "agent", "address": "127.0.0.1"}))?;
        let created = app
            .create_node(&sys, node)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let inbound: mrjbot_app::nodes::InboundInput = serde_json::from_value(
            serde_json::json!({"tag": "vless-in", "protocol": "vless", "port": 443}),
        )?;
        app.create_inbound(&sys, created.node.id, inbound)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        node_ids.push(created.node.id);
        secrets.push(created.secret.unwrap_or_default());
    }
    seed_subscriptions(&app, &node_ids, b.subs).await?;
    app.feed_reload_all()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("seeded in {}", secs(started.elapsed()));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut tokens = Vec::new();
    for s in &secrets {
        let r: proto::RegisterResponse = http
            .post(format!("{base}{}", proto::REGISTER))
            .json(&proto::RegisterRequest {
                secret: s.clone(),
                agent_version: "bench".into(),
                core: proto::CoreKind::Xray,
                core_version: None,
                hostname: None,
            })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens.push(r.token);
    }

    // ------------------------------------------------------------------ desired state
    let mut etags = Vec::new();
    let mut users_per_node = Vec::new();
    let mut build_ms = Vec::new();
    for t in &tokens {
        let at = Instant::now();
        let r = http
            .get(format!("{base}{}", proto::DESIRED))
            .bearer_auth(t)
            .send()
            .await?
            .error_for_status()?;
        let body = r.bytes().await?;
        build_ms.push(at.elapsed().as_secs_f64() * 1000.0);
        let d: proto::DesiredState = serde_json::from_slice(&body)?;
        users_per_node.push(d.users.iter().map(|u| u.email.clone()).collect::<Vec<_>>());
        println!(
            "desired state of node {}: {} users, {} KB, first answer {:.1} ms",
            d.node_id,
            d.users.len(),
            body.len() / 1024,
            build_ms.last().copied().unwrap_or_default()
        );
        etags.push(d.etag);
    }
    let polls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(b.poll_secs);
    let mut tasks = Vec::new();
    for (t, e) in tokens.iter().zip(&etags) {
        for _ in 0..4 {
            let (http, base, t, e, polls) = (
                http.clone(),
                base.clone(),
                t.clone(),
                e.clone(),
                polls.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = http
                        .get(format!("{base}{}", proto::DESIRED))
                        .bearer_auth(&t)
                        .header("If-None-Match", format!("\"{e}\""))
                        .send()
                        .await;
                    if matches!(r, Ok(ref r) if r.status() == reqwest::StatusCode::NOT_MODIFIED) {
                        polls.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "unchanged polls (304): {:.0}/s over {} connections",
        polls.load(Ordering::Relaxed) as f64 / b.poll_secs as f64,
        tokens.len() * 4
    );

    // ------------------------------------------------------------------ usage
    let sent = Arc::new(AtomicU64::new(0));
    let seqs: Vec<Arc<AtomicU64>> = (0..tokens.len())
        .map(|_| Arc::new(AtomicU64::new(1)))
        .collect();
    let at = Instant::now();
    let mut tasks = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (http, base, t, users, sent, seq) = (
            http.clone(),
            base.clone(),
            t.clone(),
            users_per_node[i].clone(),
            sent.clone(),
            seqs[i].clone(),
        );
        let reports = b.full_reports;
        tasks.push(tokio::spawn(async move {
            for _ in 0..reports {
                let entries: Vec<proto::UsageEntry> = {
                    let mut rng = rand::rng();
                    users
                        .iter()
                        .map(|e| proto::UsageEntry {
                            email: e.clone(),
                            up: rng.random_range(1..10_000),
                            down: rng.random_range(1..1_000_000),
                        })
                        .collect()
                };
                let total: u64 = entries.iter().map(|e| e.up + e.down).sum();
                let n = seq.fetch_add(1, Ordering::SeqCst);
                send_report(&http, &base, &t, n, entries).await?;
                sent.fetch_add(total, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let full = at.elapsed();
    let full_reports = b.full_reports * tokens.len();
    println!(
        "full usage reports ({} entries each, {} nodes at once): {} reports in {} = {:.1} reports/s, {:.0} entries/s",
        b.subs / b.nodes,
        tokens.len(),
        full_reports,
        secs(full),
        full_reports as f64 / full.as_secs_f64(),
        (full_reports * (b.subs / b.nodes)) as f64 / full.as_secs_f64()
    );

    let small = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(b.small_secs);
    let mut tasks = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (http, base, t, users, sent, seq, small) = (
            http.clone(),
            base.clone(),
            t.clone(),
            users_per_node[i].clone(),
            sent.clone(),
            seqs[i].clone(),
            small.clone(),
        );
        let per = b.small_entries.min(users.len()).max(1);
        tasks.push(tokio::spawn(async move {
            let mut offset = 0usize;
            while Instant::now() < deadline {
                let entries: Vec<proto::UsageEntry> = (0..per)
                    .map(|k| proto::UsageEntry {
                        email: users[(offset + k) % users.len()].clone(),
                        up: 100,
                        down: 1_000,
                    })
                    .collect();
                offset += per;
                let n = seq.fetch_add(1, Ordering::SeqCst);
                send_report(&http, &base, &t, n, entries).await?;
                sent.fetch_add(1_100 * per as u64, Ordering::Relaxed);
                small.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "small usage reports ({} entries each, {} nodes at once): {:.1} reports/s",
        b.small_entries,
        tokens.len(),
        small.load(Ordering::Relaxed) as f64 / b.small_secs as f64
    );

    // ------------------------------------------------------------------ integrity
    let counted = total_used(&app).await?;
    let sent = sent.load(Ordering::Relaxed);
    println!(
        "bytes sent {sent}, counted {counted}: {}",
        if u64::try_from(counted).ok() == Some(sent) {
            "exact"
        } else {
            "MISMATCH"
        }
    );
    running.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    if u64::try_from(counted).ok() != Some(sent) {
        bail!("usage was lost or doubled");
    }
    Ok(())
}

async fn send_report(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    seq: u64,
    entries: Vec<proto::UsageEntry>,
) -> anyhow::Result<()> {
    let report = proto::UsageReport {
        seq,
        collected_at_ms: 0,
        entries,
    };
    let ack: proto::UsageAck = http
        .post(format!("{base}{}", proto::USAGE))
        .bearer_auth(token)
        .json(&report)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if ack.duplicate {
        bail!("report {seq} was taken for a duplicate");
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("mrjbot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Customers and subscriptions straight into the store (through the API they would take
/// minutes and measure something else), pinned round-robin to the nodes.
async fn seed_subscriptions(app: &mrjbot_app::App, nodes: &[i64], n: usize) -> anyhow::Result<()> {
    let now = app.now().millis();
    let far = now + 365 * 86_400_000;
    let mut tx = app.db().begin().await?;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let users = chunk
            .iter()
            .map(|i| {
                format!(
                    "({}, 'bench {i}', 'en', {now}, {now})",
                    8_000_000_000i64 + *i as i64
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let subs = chunk
            .iter()
            .map(|i| {
                let uuid = uuid::Uuid::new_v4();
                format!(
                    "((SELECT id FROM users WHERE telegram_id = {}), 'benchtoken{i:0>33}', 'active', {far}, 0, NULL, 0, 0, \
                     'dynamic', {}, '{uuid}', 'secret{i:0>18}', {now}, {now})",
                    8_000_000_000i64 + *i as i64,
                    nodes[i % nodes.len()]
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let users_sql = format!(
            "INSERT INTO users (telegram_id, display_name, language, created_at, updated_at) VALUES {users}"
        );
        let subs_sql = format!(
            "INSERT INTO subscriptions (user_id, token, status, expires_at, hold_days, data_limit_bytes, used_bytes, \
             lifetime_used_bytes, ip_type, node_id, credential_uuid, credential_secret, created_at, updated_at) VALUES {subs}"
        );
        mrjbot_db::on!(tx.conn(), c, D => {
            sqlx::query::<D>(sqlx::AssertSqlSafe(users_sql)).execute(&mut *c).await?;
            sqlx::query::<D>(sqlx::AssertSqlSafe(subs_sql)).execute(&mut *c).await?;
        });
    }
    tx.commit().await?;
    Ok(())
}

async fn total_used(app: &mrjbot_app::App) -> anyhow::Result<i64> {
    let mut c = app.db().read().await?;
    let r: (i64,) = mrjbot_db::on!(c.conn(), c, D => sqlx::query_as::<D, (i64,)>(
        "SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) FROM subscriptions").fetch_one(&mut *c).await?);
    Ok(r.0)
}
