//! Integration tests: the real server on a random port, over HTTP, on SQLite and on
//! PostgreSQL. One test binary for the crate (linking dominates build time).

mod auth;
mod authz;
mod bad_input;
mod bot;
mod cli;
mod client;
mod dataplane;
mod dataplane_e2e;
mod gateways;
mod gateways_crypto_stars;
mod money;
mod money_gateways;
mod panels;
mod receipts;
mod resources;
mod schema;
mod shop;
mod sub;
mod subscriptions;
mod support;

pub use mrjbot_testkit::{Backend, TestApp};
pub use reqwest::{Method, StatusCode};
pub use serde_json::{Value, json};

/// Starts an app or returns from the test when the backend is unavailable locally.
#[macro_export]
macro_rules! app {
    ($backend:expr) => {
        match $crate::TestApp::spawn($backend).await {
            Some(t) => t,
            None => return,
        }
    };
    ($backend:expr, $adjust:expr) => {
        match $crate::TestApp::spawn_with($backend, $adjust).await {
            Some(t) => t,
            None => return,
        }
    };
}
