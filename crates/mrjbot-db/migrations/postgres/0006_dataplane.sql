-- 0006_dataplane: what the node agents tell the control plane about themselves.
-- Kept column for column identical to the other engine's 0006_dataplane.sql.

-- One row per agent node, written at registration and by every heartbeat: the core it
-- drives, versions, the desired state it runs and its last error.
CREATE TABLE node_agents (
    node_id       BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    core_kind     TEXT NOT NULL CHECK (core_kind IN ('xray','v2ray','sing-box')),
    core_version  TEXT,
    agent_version TEXT NOT NULL,
    hostname      TEXT,
    applied_etag  TEXT,
    last_error    TEXT,
    core_restarts BIGINT NOT NULL DEFAULT 0 CHECK (core_restarts >= 0),
    registered_at BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Agents authenticate by the SHA-256 of their secret.
CREATE INDEX nodes_secret_hash_idx ON nodes (secret_hash);
-- Nodes whose heartbeats stopped are found by the time of the last one.
CREATE INDEX nodes_status_last_heartbeat_at_idx ON nodes (status, last_heartbeat_at);
