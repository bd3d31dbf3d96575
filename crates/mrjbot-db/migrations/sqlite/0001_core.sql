-- 0001_core: people and access (users, roles, sessions), the catalogue (plans, prices),
-- the data plane (nodes, inbounds), subscriptions, the audit log and settings.
--
-- Kept column for column identical to migrations/postgres/0001_core.sql (a test compares
-- them). Ids are 64-bit integers; timestamps are UTC epoch milliseconds in `*_at` columns
-- set by the application, never by the database clock; sizes are bytes; JSON is TEXT.
-- Unique indexes are named `<table>_<cols>_key` so a violation maps to a field error.

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT,
    email               TEXT,
    telegram_id         INTEGER,
    display_name        TEXT,
    language            TEXT NOT NULL DEFAULT 'fa' CHECK (language IN ('fa','en','ru')),
    password_hash       TEXT,
    status              TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','disabled')),
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER,
    note                TEXT,
    password_changed_at INTEGER,
    last_login_at       INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_telegram_id_key ON users (telegram_id);
CREATE INDEX users_created_at_idx ON users (created_at);
CREATE INDEX users_status_idx ON users (status);

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_builtin  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX roles_name_key ON roles (name);

-- Permissions of custom roles; built-in roles take theirs from the code.
CREATE TABLE role_permissions (
    role_id    INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    granted_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);
CREATE INDEX user_roles_granted_by_idx ON user_roles (granted_by);

-- One row per login. The refresh token is stored only as its SHA-256; refreshing rotates
-- it in place and keeps the previous hash to detect reuse of a stolen token.
CREATE TABLE sessions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash       TEXT NOT NULL,
    prev_refresh_hash  TEXT,
    user_agent         TEXT,
    ip                 TEXT,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    revoked_at         INTEGER
);
CREATE UNIQUE INDEX sessions_refresh_hash_key ON sessions (refresh_hash);
CREATE INDEX sessions_prev_refresh_hash_idx ON sessions (prev_refresh_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE plans (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    duration_days      INTEGER NOT NULL CHECK (duration_days BETWEEN 1 AND 3650),
    data_limit_bytes   INTEGER CHECK (data_limit_bytes > 0),
    device_limit       INTEGER CHECK (device_limit > 0),
    ip_type            TEXT NOT NULL DEFAULT 'dynamic' CHECK (ip_type IN ('constant','dynamic')),
    region             TEXT,
    start_on_first_use INTEGER NOT NULL DEFAULT 0,
    is_active          INTEGER NOT NULL DEFAULT 1,
    sort_order         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX plans_name_key ON plans (name);

CREATE TABLE plan_prices (
    plan_id      INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    currency     TEXT NOT NULL CHECK (currency = upper(currency)),
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (plan_id, currency)
);

CREATE TABLE nodes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('agent','xui','marzban')),
    address           TEXT NOT NULL,
    region            TEXT,
    ip_type           TEXT NOT NULL DEFAULT 'dynamic' CHECK (ip_type IN ('constant','dynamic')),
    api_url           TEXT,
    api_username      TEXT,
    api_password      TEXT,
    secret_hash       TEXT,
    status            TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown','online','degraded','down')),
    is_enabled        INTEGER NOT NULL DEFAULT 1,
    capacity          INTEGER CHECK (capacity > 0),
    last_heartbeat_at INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX nodes_name_key ON nodes (name);

CREATE TABLE inbounds (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    protocol   TEXT NOT NULL CHECK (protocol IN ('vless','vmess','trojan','shadowsocks','hysteria2')),
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    network    TEXT NOT NULL DEFAULT 'tcp',
    security   TEXT NOT NULL DEFAULT 'none' CHECK (security IN ('none','tls','reality')),
    settings   TEXT NOT NULL DEFAULT '{}',
    is_enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX inbounds_node_id_tag_key ON inbounds (node_id, tag);

-- What a customer bought. `token` is the secret of the subscription link (NULL once
-- revoked); `version` grows with every change so caches and agents can tell what moved.
CREATE TABLE subscriptions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    plan_id             INTEGER REFERENCES plans(id) ON DELETE SET NULL,
    token               TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active','on_hold','limited','expired','disabled','temporary')),
    expires_at          INTEGER,
    hold_days           INTEGER NOT NULL DEFAULT 0,
    data_limit_bytes    INTEGER,
    used_bytes          INTEGER NOT NULL DEFAULT 0,
    lifetime_used_bytes INTEGER NOT NULL DEFAULT 0,
    device_limit        INTEGER,
    ip_type             TEXT NOT NULL DEFAULT 'dynamic' CHECK (ip_type IN ('constant','dynamic')),
    node_id             INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
    credential_uuid     TEXT NOT NULL,
    credential_secret   TEXT NOT NULL,
    note                TEXT,
    version             INTEGER NOT NULL DEFAULT 1,
    online_at           INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX subscriptions_token_key ON subscriptions (token);
CREATE UNIQUE INDEX subscriptions_credential_uuid_key ON subscriptions (credential_uuid);
CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id);
CREATE INDEX subscriptions_plan_id_idx ON subscriptions (plan_id);
CREATE INDEX subscriptions_node_id_idx ON subscriptions (node_id);
CREATE INDEX subscriptions_status_expires_at_idx ON subscriptions (status, expires_at);

-- Which nodes serve a subscription (desired state for the reconcilers).
CREATE TABLE subscription_nodes (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, node_id)
);
CREATE INDEX subscription_nodes_node_id_idx ON subscription_nodes (node_id);

-- Append-only record of every mutating admin action: who, what, before and after.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor_label TEXT NOT NULL,
    action      TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   INTEGER,
    before      TEXT,
    after       TEXT,
    request_id  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_actor_id_idx ON audit_log (actor_id);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX settings_updated_by_idx ON settings (updated_by);
