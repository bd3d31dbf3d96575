-- 0007_panels: what the panel reconciler (3x-UI, Marzban) remembers per panel node.
-- Kept column for column identical to the other engine's 0007_panels.sql.

-- The accounts MRJBot manages on a panel (created by it or imported into it): the remote
-- name (3x-UI client email, Marzban username), the subscription it serves, and the
-- traffic counters already counted (the baseline deltas are taken from). Accounts of the
-- seller that are not in this table are never touched. No foreign key to subscriptions:
-- when a subscription is deleted the row must survive until its remote account is gone.
CREATE TABLE panel_accounts (
    node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    remote_name     TEXT NOT NULL,
    subscription_id INTEGER NOT NULL,
    remote_ref      TEXT NOT NULL DEFAULT '',
    base_up         INTEGER NOT NULL DEFAULT 0 CHECK (base_up >= 0),
    base_down       INTEGER NOT NULL DEFAULT 0 CHECK (base_down >= 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (node_id, remote_name)
);
CREATE INDEX panel_accounts_subscription_id_idx ON panel_accounts (subscription_id);

-- One row per panel node: the API generation found, the v3 API token (3x-UI; preferred
-- over a session when set), the last sync and the last error,
-- and the backoff after failures.
CREATE TABLE panel_state (
    node_id         INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    api_version     TEXT,
    api_token       TEXT,
    last_sync_at    INTEGER,
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);
