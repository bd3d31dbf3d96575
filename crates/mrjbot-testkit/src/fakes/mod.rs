//! Local fakes of the services on the internet that MRJBot talks to (payment gateways,
//! the Telegram Bot API). Each follows ../shared/specs exactly, errors included, listens
//! on 127.0.0.1:0, and has test controls (in-process methods and `/__test/...` routes)
//! that play the human paying in a browser.

pub mod cryptopay;
pub mod marzban;
mod params;
pub mod telegram;

use anyhow::Context;
use tokio::task::JoinHandle;

/// A fake server running on loopback; stops when dropped.
#[derive(Debug)]
pub struct Served {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on a fresh loopback port.
pub async fn serve(router: axum::Router) -> anyhow::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port for a fake")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok(Served {
        base_url: format!("http://{addr}"),
        task,
    })
}

pub mod xui;
pub mod yookassa;
pub mod zarinpal;
