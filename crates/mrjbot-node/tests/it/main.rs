//! Integration tests for `mrjbot-node`: one binary, real cores on loopback.
//!
//! Each test starts its own fake control plane, origin, agent process and client core on
//! ports chosen by the kernel, so tests run in parallel with each other and with other
//! suites. Missing core binaries print "skipped" locally and fail with CI=true.

mod cli;
mod singbox;
mod support;
mod v2ray;
