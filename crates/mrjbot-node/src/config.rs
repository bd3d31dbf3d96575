//! Agent configuration: `mrjbot-node.toml`, then `MRJBOT_NODE_*` variables, then flags.
//!
//! [`Config::load`] returns a value that has been checked as a whole: the URL parses, the
//! secret is not empty, the core binary exists and is executable, ports are distinct, the
//! TLS files exist when given. Every bad value is reported with the key that holds it, so
//! an operator can fix the file without reading code.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use mrjbot_node_proto::CoreKind;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Figment could not read or merge the sources.
    #[error("configuration: {0}")]
    Read(String),
    /// One key has a bad value.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// The key, as written in the TOML file.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Raw settings as read from the sources; all optional so that each source may give some.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Base URL of the control plane (`https://panel.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_url: Option<String>,
    /// The node secret shown once when the node was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `xray`, `v2ray` or `sing-box`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// Path of the core's executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_bin: Option<PathBuf>,
    /// Directory for the core config, logs and the agent's durable state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Address the inbounds listen on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Loopback port of the core's management API (gRPC for Xray/v2ray, SSM for sing-box).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_port: Option<u16>,
    /// Certificate chain (PEM) for `security = tls` inbounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `security = tls` inbounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// REALITY private key used when an inbound's settings carry none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reality_private_key: Option<String>,
    /// Seconds between local reads of the core's usage counters (1-60, default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_secs: Option<u64>,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Control plane base URL, without a trailing slash.
    pub control_plane_url: String,
    /// Node secret.
    pub secret: String,
    /// Which core.
    pub core: CoreKind,
    /// Core executable.
    pub core_bin: PathBuf,
    /// State directory (created when missing).
    pub state_dir: PathBuf,
    /// Inbound listen address.
    pub listen: IpAddr,
    /// Core API port on 127.0.0.1.
    pub api_port: u16,
    /// TLS certificate and key, when configured.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Fallback REALITY private key.
    pub reality_private_key: Option<String>,
    /// Seconds between usage samples: at most this much traffic is lost when the core
    /// crashes.
    pub sample_secs: u64,
}

/// Default API port.
pub const DEFAULT_API_PORT: u16 = 10085;
/// Default seconds between usage samples.
pub const DEFAULT_SAMPLE_SECS: u64 = 2;

impl Config {
    /// Reads `file` (when it exists), then `MRJBOT_NODE_*`, then `overrides`, and checks
    /// the result.
    pub fn load(file: Option<&Path>, overrides: RawConfig) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            if !f.exists() {
                return Err(invalid(
                    "--config",
                    format!("{} does not exist", f.display()),
                ));
            }
            fig = fig.merge(Toml::file(f));
        }
        let raw: RawConfig = fig
            .merge(Env::prefixed("MRJBOT_NODE_").ignore(&["LOG", "CONFIG"]))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        Config::from_raw(raw)
    }

    /// Checks raw settings.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let url = raw
            .control_plane_url
            .ok_or_else(|| invalid("control_plane_url", "missing"))?;
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| invalid("control_plane_url", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid(
                "control_plane_url",
                format!("{url:?} must be an http(s) URL with a host"),
            ));
        }
        let secret = raw.secret.unwrap_or_default();
        if secret.trim().is_empty() {
            return Err(invalid("secret", "missing or empty"));
        }
        let core = match raw.core.as_deref() {
            Some("xray") => CoreKind::Xray,
            Some("v2ray") => CoreKind::V2ray,
            Some("sing-box") | Some("singbox") => CoreKind::SingBox,
            Some(other) => {
                return Err(invalid(
                    "core",
                    format!("{other:?} is not one of xray, v2ray, sing-box"),
                ));
            }
            None => return Err(invalid("core", "missing (xray, v2ray or sing-box)")),
        };
        let core_bin = raw
            .core_bin
            .unwrap_or_else(|| PathBuf::from(format!("/usr/local/bin/{}", core.as_str())));
        check_executable(&core_bin)?;
        let state_dir = raw
            .state_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/mrjbot-node"));
        if state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "empty"));
        }
        let listen_s = raw.listen.unwrap_or_else(|| "0.0.0.0".into());
        let listen: IpAddr = listen_s
            .parse()
            .map_err(|_| invalid("listen", format!("{listen_s:?} is not an IP address")))?;
        let api_port = raw.api_port.unwrap_or(DEFAULT_API_PORT);
        if api_port == 0 {
            return Err(invalid("api_port", "must be 1-65535"));
        }
        let tls = match (raw.tls_cert, raw.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                for (key, p) in [("tls_cert", &c), ("tls_key", &k)] {
                    if !p.is_file() {
                        return Err(invalid(
                            key,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
                Some((c, k))
            }
            (Some(_), None) => return Err(invalid("tls_key", "missing while tls_cert is set")),
            (None, Some(_)) => return Err(invalid("tls_cert", "missing while tls_key is set")),
        };
        let reality_private_key = raw.reality_private_key.filter(|k| !k.trim().is_empty());
        if let Some(k) = &reality_private_key
            && (k.len() != 43
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(invalid(
                "reality_private_key",
                "must be a base64url X25519 key (43 characters)",
            ));
        }
        let sample_secs = raw.sample_secs.unwrap_or(DEFAULT_SAMPLE_SECS);
        if !(1..=60).contains(&sample_secs) {
            return Err(invalid(
                "sample_secs",
                format!("{sample_secs} is not between 1 and 60 seconds"),
            ));
        }
        Ok(Config {
            control_plane_url: url.trim_end_matches('/').to_string(),
            secret,
            core,
            core_bin,
            state_dir,
            listen,
            api_port,
            tls,
            reality_private_key,
            sample_secs,
        })
    }
}

fn check_executable(p: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(p).map_err(|e| invalid("core_bin", format!("{}: {e}", p.display())))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(invalid(
            "core_bin",
            format!("{} is not an executable file", p.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RawConfig {
        RawConfig {
            control_plane_url: Some("http://127.0.0.1:8080/".into()),
            secret: Some("s3cret".into()),
            core: Some("v2ray".into()),
            core_bin: Some("/bin/sh".into()),
            state_dir: Some("/tmp/x".into()),
            ..RawConfig::default()
        }
    }

    fn key_of(r: RawConfig) -> String {
        match Config::from_raw(r) {
            Err(ConfigError::Invalid { key, .. }) => key.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_good_config_is_normalised() {
        let c = Config::from_raw(base()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.control_plane_url, "http://127.0.0.1:8080");
        assert_eq!(c.core, CoreKind::V2ray);
        assert_eq!(c.api_port, DEFAULT_API_PORT);
        assert_eq!(c.listen.to_string(), "0.0.0.0");
        assert_eq!(c.sample_secs, DEFAULT_SAMPLE_SECS);
    }

    #[test]
    fn the_example_file_loads_with_flags_overriding_it() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("mrjbot-node.example.toml");
        let c = Config::load(
            Some(&file),
            RawConfig {
                core_bin: Some("/bin/sh".into()),
                core: Some("sing-box".into()),
                ..RawConfig::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.core, CoreKind::SingBox);
        assert_eq!(c.control_plane_url, "https://panel.example.com");
        assert_eq!(c.api_port, 10085);
        assert_eq!(c.sample_secs, 2);
        assert!(Config::load(Some(Path::new("/nonexistent.toml")), base()).is_err());
    }

    #[test]
    fn each_bad_value_names_its_key() {
        type Edit = Box<dyn Fn(&mut RawConfig)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "control_plane_url",
                Box::new(|r| r.control_plane_url = Some("ftp://x".into())),
            ),
            (
                "control_plane_url",
                Box::new(|r| r.control_plane_url = None),
            ),
            ("secret", Box::new(|r| r.secret = Some(" ".into()))),
            ("core", Box::new(|r| r.core = Some("clash".into()))),
            (
                "core_bin",
                Box::new(|r| r.core_bin = Some("/nonexistent/v2ray".into())),
            ),
            (
                "core_bin",
                Box::new(|r| r.core_bin = Some("/proc/version".into())),
            ),
            ("listen", Box::new(|r| r.listen = Some("localhost".into()))),
            ("api_port", Box::new(|r| r.api_port = Some(0))),
            (
                "tls_key",
                Box::new(|r| r.tls_cert = Some("/etc/hostname".into())),
            ),
            (
                "tls_cert",
                Box::new(|r| {
                    r.tls_cert = Some("/nonexistent".into());
                    r.tls_key = Some("/etc/hostname".into());
                }),
            ),
            (
                "reality_private_key",
                Box::new(|r| r.reality_private_key = Some("short".into())),
            ),
            ("sample_secs", Box::new(|r| r.sample_secs = Some(0))),
            ("sample_secs", Box::new(|r| r.sample_secs = Some(61))),
        ];
        for (want, f) in cases {
            let mut r = base();
            f(&mut r);
            assert_eq!(key_of(r), want);
        }
    }
}
