//! The two migration sets produce the same tables and columns.

use mrjbot_db::{Db, DbOptions};

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sqlite = Db::connect(&DbOptions::sqlite_in(dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlite.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let Some((url, name)) = mrjbot_testkit::fresh_pg_database().await else {
        return;
    };
    let pg = Db::connect(&DbOptions::new(url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pg.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let a = sqlite
        .describe_schema()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = pg.describe_schema().await.unwrap_or_else(|e| panic!("{e}"));
    pg.close().await;
    mrjbot_testkit::drop_pg_database(&name).await;
    let tables: std::collections::BTreeSet<&str> = a.iter().map(|c| c.0.as_str()).collect();
    assert!(
        tables.len() >= 30,
        "the whole domain is in the schema: {tables:?}"
    );
    for t in [
        "users",
        "roles",
        "user_roles",
        "plans",
        "plan_prices",
        "nodes",
        "inbounds",
        "subscriptions",
        "usage",
        "orders",
        "payments",
        "cards",
        "receipts",
        "wallet_ledger",
        "points_ledger",
        "discount_codes",
        "referrals",
        "tickets",
        "ticket_messages",
        "broadcasts",
        "audit_log",
        "settings",
        "jobs",
        "outbox",
    ] {
        assert!(tables.contains(t), "table {t} is missing");
    }
    let diff: Vec<String> = a
        .iter()
        .zip(b.iter())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("sqlite {x:?} vs postgres {y:?}"))
        .collect();
    assert!(
        diff.is_empty() && a.len() == b.len(),
        "{} vs {} columns; differences:\n{}",
        a.len(),
        b.len(),
        diff.join("\n")
    );
}
