//! `mrjbot-node`: the agent that runs beside a VPN core (Xray, V2Ray 4.x or sing-box) and
//! makes it serve exactly the users the MRJBot control plane wants.
//!
//! It calls the control plane (never the reverse), so nodes behind NAT work; it keeps
//! serving the last desired state while the control plane is away, and its usage reports
//! are journaled so that killing it at any moment neither loses nor doubles traffic. The
//! core's counters are sampled every few seconds, so a crashed core loses at most one
//! sampling period of traffic.
//! Modules: [`config`] (settings), [`client`] (control-plane API), [`render`] (core
//! configuration files), [`grpc`] (Xray / V2Ray API), [`ssm`] (sing-box Shadowsocks API),
//! [`core`] (the core process), [`usage`] (the report journal), [`metrics`] (heartbeat
//! figures), [`agent`] (the loop tying them together), [`bench`] (measurements).

pub mod agent;
pub mod bench;
pub mod client;
pub mod config;
pub mod core;
pub mod grpc;
pub mod metrics;
pub mod render;
pub mod ssm;
pub mod state;
pub mod usage;
