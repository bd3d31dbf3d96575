//! gRPC client for the Xray / V2Ray management API (HandlerService, StatsService).
//!
//! Xray and V2Ray 4.x serve the same messages with the same field numbers under different
//! package names (`xray.` versus `v2ray.core.`), and reject each other's names. The
//! messages are written here once as prost structs; [`Api`] picks the prefix for method
//! paths and `TypedMessage` type names from the core kind. "User ... already exists" on
//! add and "User ... not found" on remove are success: reconciling is idempotent.

use crate::usage::{Counters, Traffic};
use mrjbot_node_proto::CoreKind;
use prost::Message;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// `common.serial.TypedMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypedMessage {
    /// Full protobuf name of the message in `value`.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// The serialized message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `common.protocol.User`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    /// Policy level.
    #[prost(uint32, tag = "1")]
    pub level: u32,
    /// Key of the user and its counters.
    #[prost(string, tag = "2")]
    pub email: String,
    /// Protocol account.
    #[prost(message, optional, tag = "3")]
    pub account: Option<TypedMessage>,
}

/// `proxy.vless.Account`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VlessAccount {
    /// UUID.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Flow (`xtls-rprx-vision` or empty).
    #[prost(string, tag = "2")]
    pub flow: String,
    /// Always `none`.
    #[prost(string, tag = "3")]
    pub encryption: String,
}

/// `proxy.vmess.Account`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VmessAccount {
    /// UUID.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Always 0 (AEAD).
    #[prost(uint32, tag = "2")]
    pub alter_id: u32,
}

/// `proxy.trojan.Account`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrojanAccount {
    /// Password.
    #[prost(string, tag = "1")]
    pub password: String,
}

/// `app.proxyman.command.AddUserOperation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddUserOperation {
    /// The user.
    #[prost(message, optional, tag = "1")]
    pub user: Option<User>,
}

/// `app.proxyman.command.RemoveUserOperation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveUserOperation {
    /// The user's email.
    #[prost(string, tag = "1")]
    pub email: String,
}

/// `app.proxyman.command.AlterInboundRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterInboundRequest {
    /// Inbound tag.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The operation as a TypedMessage.
    #[prost(message, optional, tag = "2")]
    pub operation: Option<TypedMessage>,
}

/// `app.proxyman.command.AlterInboundResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterInboundResponse {}

/// `app.stats.command.QueryStatsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryStatsRequest {
    /// Substring of counter names.
    #[prost(string, tag = "1")]
    pub pattern: String,
    /// Zero the counters after reading.
    #[prost(bool, tag = "2")]
    pub reset: bool,
}

/// `app.stats.command.Stat`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stat {
    /// Counter name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(int64, tag = "2")]
    pub value: i64,
}

/// `app.stats.command.QueryStatsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryStatsResponse {
    /// Counters.
    #[prost(message, repeated, tag = "1")]
    pub stat: Vec<Stat>,
}

/// A user account in protocol terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// VLESS id + flow.
    Vless {
        /// UUID.
        id: String,
        /// Flow.
        flow: String,
    },
    /// VMess id.
    Vmess {
        /// UUID.
        id: String,
    },
    /// Trojan password.
    Trojan {
        /// Password.
        password: String,
    },
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Could not connect.
    #[error("core API unreachable: {0}")]
    Connect(String),
    /// The core answered with an error.
    #[error("core API: {0}")]
    Status(String),
}

/// Client of one core's management API.
#[derive(Clone)]
pub struct Api {
    grpc: tonic::client::Grpc<Channel>,
    prefix: &'static str,
    stats_path: String,
}

/// The package prefix for a core kind (`xray.` or `v2ray.core.`).
pub fn prefix(kind: CoreKind) -> &'static str {
    match kind {
        CoreKind::Xray => "xray.",
        _ => "v2ray.core.",
    }
}

fn typed<M: Message>(name: String, m: &M) -> TypedMessage {
    TypedMessage {
        r#type: name,
        value: m.encode_to_vec(),
    }
}

impl Api {
    /// Connects lazily to `127.0.0.1:port`; each call has a 10 s deadline. For sing-box
    /// only the stats service of its `v2ray_api` exists.
    pub fn new(kind: CoreKind, port: u16) -> Result<Api, ApiError> {
        let ep = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| ApiError::Connect(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10));
        let stats_path = match kind {
            CoreKind::SingBox => "/experimental.v2rayapi.StatsService/QueryStats".to_string(),
            _ => format!("/{}app.stats.command.StatsService/QueryStats", prefix(kind)),
        };
        Ok(Api {
            grpc: tonic::client::Grpc::new(ep.connect_lazy()),
            prefix: prefix(kind),
            stats_path,
        })
    }

    async fn unary<Req, Resp>(&self, path: String, req: Req) -> Result<Resp, tonic::Status>
    where
        Req: Message + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        let mut g = self.grpc.clone();
        g.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::try_from(path)
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        Ok(g.unary(tonic::Request::new(req), path, codec)
            .await?
            .into_inner())
    }

    fn status(s: tonic::Status) -> ApiError {
        if matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ) {
            ApiError::Connect(s.message().to_string())
        } else {
            ApiError::Status(format!("{:?}: {}", s.code(), s.message()))
        }
    }

    async fn alter(&self, tag: &str, op: TypedMessage) -> Result<(), tonic::Status> {
        let req = AlterInboundRequest {
            tag: tag.to_string(),
            operation: Some(op),
        };
        let path = format!(
            "/{}app.proxyman.command.HandlerService/AlterInbound",
            self.prefix
        );
        self.unary::<_, AlterInboundResponse>(path, req)
            .await
            .map(|_| ())
    }

    /// Adds a user to inbound `tag`; an existing user counts as added.
    pub async fn add_user(
        &self,
        tag: &str,
        email: &str,
        account: &Account,
    ) -> Result<(), ApiError> {
        let p = self.prefix;
        let account = match account {
            Account::Vless { id, flow } => typed(
                format!("{p}proxy.vless.Account"),
                &VlessAccount {
                    id: id.clone(),
                    flow: flow.clone(),
                    encryption: "none".into(),
                },
            ),
            Account::Vmess { id } => typed(
                format!("{p}proxy.vmess.Account"),
                &VmessAccount {
                    id: id.clone(),
                    alter_id: 0,
                },
            ),
            Account::Trojan { password } => typed(
                format!("{p}proxy.trojan.Account"),
                &TrojanAccount {
                    password: password.clone(),
                },
            ),
        };
        let op = AddUserOperation {
            user: Some(User {
                level: 0,
                email: email.to_string(),
                account: Some(account),
            }),
        };
        match self
            .alter(
                tag,
                typed(format!("{p}app.proxyman.command.AddUserOperation"), &op),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(s) if s.message().contains("already exists") => Ok(()),
            Err(s) => Err(Self::status(s)),
        }
    }

    /// Removes a user from inbound `tag`; a missing user counts as removed.
    pub async fn remove_user(&self, tag: &str, email: &str) -> Result<(), ApiError> {
        let op = RemoveUserOperation {
            email: email.to_string(),
        };
        let name = format!("{}app.proxyman.command.RemoveUserOperation", self.prefix);
        match self.alter(tag, typed(name, &op)).await {
            Ok(()) => Ok(()),
            Err(s) if s.message().contains("not found") && !s.message().contains("handler") => {
                Ok(())
            }
            Err(s) => Err(Self::status(s)),
        }
    }

    /// All counters whose name contains `pattern`, without resetting them.
    pub async fn query(&self, pattern: &str) -> Result<Vec<Stat>, ApiError> {
        let path = self.stats_path.clone();
        let req = QueryStatsRequest {
            pattern: pattern.to_string(),
            reset: false,
        };
        self.unary::<_, QueryStatsResponse>(path, req)
            .await
            .map(|r| r.stat)
            .map_err(Self::status)
    }

    /// Per-user cumulative traffic (`user>>>EMAIL>>>traffic>>>uplink|downlink`).
    pub async fn user_counters(&self) -> Result<Counters, ApiError> {
        Ok(parse_user_stats(&self.query("user>>>").await?))
    }
}

/// Folds `user>>>EMAIL>>>traffic>>>uplink|downlink` counters into per-email traffic.
pub fn parse_user_stats(stats: &[Stat]) -> Counters {
    let mut out = Counters::new();
    for s in stats {
        let mut parts = s.name.split(">>>");
        let (Some("user"), Some(email), Some("traffic"), Some(dir), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            continue;
        };
        let v = u64::try_from(s.value).unwrap_or(0);
        let t: &mut Traffic = out.entry(email.to_string()).or_default();
        match dir {
            "uplink" => t.up = v,
            "downlink" => t.down = v,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_user_encodes_like_the_reference_protos() {
        // Bytes as protoc encodes AddUserOperation{user{level 0, email "a", account
        // TypedMessage{"t", Account{id "i", encryption "none"}}}}.
        let acc = typed(
            "t".into(),
            &VlessAccount {
                id: "i".into(),
                flow: String::new(),
                encryption: "none".into(),
            },
        );
        assert_eq!(acc.value, b"\x0a\x01i\x1a\x04none");
        let op = AddUserOperation {
            user: Some(User {
                level: 0,
                email: "a".into(),
                account: Some(acc),
            }),
        };
        let bytes = op.encode_to_vec();
        assert_eq!(
            bytes,
            b"\x0a\x13\x12\x01a\x1a\x0e\x0a\x01t\x12\x09\x0a\x01i\x1a\x04none"
        );
    }

    #[test]
    fn user_stats_are_folded_per_email() {
        let s = |n: &str, v| Stat {
            name: n.into(),
            value: v,
        };
        let c = parse_user_stats(&[
            s("user>>>a@x>>>traffic>>>uplink", 5),
            s("user>>>a@x>>>traffic>>>downlink", 7),
            s("inbound>>>api>>>traffic>>>downlink", 9),
            s("user>>>b>>>online", 1),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("a@x"), Some(&Traffic { up: 5, down: 7 }));
        assert_eq!(prefix(CoreKind::Xray), "xray.");
        assert_eq!(prefix(CoreKind::V2ray), "v2ray.core.");
    }
}
