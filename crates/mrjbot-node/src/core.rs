//! The core process: start, stop, reload, and adoption after an agent restart.
//!
//! The core runs in its own process group with its output appended to `core.log` in the
//! state directory, so it survives the agent being killed (users keep their connections).
//! Its pid, kernel start time and reload generation are written to `core.json`; a new
//! agent adopts a core whose pid, start time and command line still match instead of
//! starting a second one on the same ports. The *instance* string (pid, start time,
//! generation) changes exactly when the core's counters start again from zero, which is
//! what the usage ledger needs to know.

use crate::config::Config;
use crate::state::{CORE_FILE, StateDir, load_json, save_json};
use mrjbot_node_proto::CoreKind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The core configuration file inside the state directory.
pub const CONFIG_FILE: &str = "core-config.json";
/// The core's stdout and stderr.
pub const LOG_FILE: &str = "core.log";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    pid: u32,
    start_time: u64,
    generation: u64,
    bin: PathBuf,
    config: PathBuf,
}

/// Reads `/proc/<pid>/stat`: (state, start time in clock ticks).
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn pid_alive(pid: u32, start_time: u64) -> bool {
    matches!(proc_stat(pid), Some((st, t)) if st != 'Z' && st != 'X' && t == start_time)
}

/// The arguments that run the core with `config`.
pub fn run_args(kind: CoreKind, config: &Path, dir: &Path) -> Vec<String> {
    let c = config.display().to_string();
    match kind {
        CoreKind::V2ray => vec!["-config".into(), c],
        CoreKind::Xray => vec!["run".into(), "-c".into(), c],
        CoreKind::SingBox => vec![
            "run".into(),
            "-D".into(),
            dir.display().to_string(),
            "-c".into(),
            c,
        ],
    }
}

/// Checks `config` with the core's own validator; `Err` carries its message.
pub async fn test_config(cfg: &Config, config: &Path) -> Result<(), String> {
    let c = config.display().to_string();
    let args: Vec<String> = match cfg.core {
        CoreKind::V2ray => vec!["-test".into(), "-config".into(), c],
        CoreKind::Xray => vec!["run".into(), "-test".into(), "-c".into(), c],
        CoreKind::SingBox => vec![
            "check".into(),
            "-D".into(),
            cfg.state_dir.display().to_string(),
            "-c".into(),
            c,
        ],
    };
    let out = tokio::process::Command::new(&cfg.core_bin)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", cfg.core_bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stdout));
    let msg: String = msg
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ");
    Err(format!("core refused the configuration: {msg}"))
}

/// The core's version: first line of its version command, and the whole output.
pub async fn version(cfg: &Config) -> Result<(String, String), String> {
    let arg = match cfg.core {
        CoreKind::V2ray => "-version",
        _ => "version",
    };
    let out = tokio::process::Command::new(&cfg.core_bin)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", cfg.core_bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if !out.status.success() || first.is_empty() {
        return Err(format!(
            "{} {arg} failed: {}",
            cfg.core_bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((first, text))
}

struct Running {
    pid: u32,
    start_time: u64,
    child: Option<tokio::process::Child>,
}

/// Owns the core process.
pub struct Supervisor {
    kind: CoreKind,
    bin: PathBuf,
    dir: StateDir,
    config: PathBuf,
    running: Option<Running>,
    generation: u64,
    /// Restarts after the core exited or stopped answering (not planned ones).
    pub restarts: u64,
}

impl Supervisor {
    /// A supervisor for the configured core; nothing is started yet.
    pub fn new(cfg: &Config, dir: &StateDir) -> Supervisor {
        Supervisor {
            kind: cfg.core,
            bin: cfg.core_bin.clone(),
            dir: dir.clone(),
            config: dir.path(CONFIG_FILE),
            running: None,
            generation: 0,
            restarts: 0,
        }
    }

    /// The core configuration path.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The pid of the running core.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// Identifies the current counters: changes when the process or its reload
    /// generation changes.
    pub fn instance(&self) -> Option<String> {
        self.running
            .as_ref()
            .map(|r| format!("{}-{}-{}", r.pid, r.start_time, self.generation))
    }

    fn record(&self) -> std::io::Result<()> {
        match &self.running {
            Some(r) => save_json(
                &self.dir.path(CORE_FILE),
                &Record {
                    pid: r.pid,
                    start_time: r.start_time,
                    generation: self.generation,
                    bin: self.bin.clone(),
                    config: self.config.clone(),
                },
            ),
            None => match std::fs::remove_file(self.dir.path(CORE_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Adopts a core left running by an earlier agent, when `core.json` names a live
    /// process with the same start time whose command line runs our binary and config.
    pub fn adopt(&mut self) -> bool {
        let Ok(Some(rec)) = load_json::<Record>(&self.dir.path(CORE_FILE)) else {
            return false;
        };
        let args = cmdline(rec.pid);
        let ours = rec.config == self.config
            && args.iter().any(|a| Path::new(a) == self.config)
            && args.first().is_some_and(|a| {
                Path::new(a) == self.bin || Path::new(a).file_name() == self.bin.file_name()
            });
        if !ours || !pid_alive(rec.pid, rec.start_time) {
            return false;
        }
        self.generation = rec.generation;
        self.running = Some(Running {
            pid: rec.pid,
            start_time: rec.start_time,
            child: None,
        });
        true
    }

    /// Starts the core with the current config file.
    pub fn start(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path(LOG_FILE))?;
        let child = tokio::process::Command::new(&self.bin)
            .args(run_args(self.kind, &self.config, &self.dir.0))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("core exited at once"))?;
        let start_time = proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        self.generation = 0;
        self.running = Some(Running {
            pid,
            start_time,
            child: Some(child),
        });
        self.record()
    }

    /// True while the core process lives (reaps it when it exited).
    pub fn alive(&mut self) -> bool {
        let Some(r) = &mut self.running else {
            return false;
        };
        let alive = match &mut r.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => pid_alive(r.pid, r.start_time),
        };
        if !alive {
            self.running = None;
            let _ = self.record();
        }
        alive
    }

    /// Reloads the configuration in place (sing-box: SIGHUP, same pid). The counters of
    /// the old generation are gone afterwards.
    pub fn reload(&mut self) -> std::io::Result<()> {
        let Some(r) = &self.running else {
            return Err(std::io::Error::other("core not running"));
        };
        let pid = i32::try_from(r.pid).map_err(std::io::Error::other)?;
        kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(std::io::Error::other)?;
        self.generation += 1;
        self.record()
    }

    /// Stops the core: SIGTERM, then SIGKILL after 5 s.
    pub async fn stop(&mut self) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(r.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let gone = match &mut r.child {
                    Some(c) => !matches!(c.try_wait(), Ok(None)),
                    None => !pid_alive(r.pid, r.start_time),
                };
                if gone {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    if let Some(c) = &mut r.child {
                        let _ = c.wait().await;
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let _ = self.record();
    }

    /// The last lines of the core's log (for error reports).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path(LOG_FILE)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_our_own_process() {
        let me = std::process::id();
        let (state, start) = proc_stat(me).unwrap_or_else(|| panic!("no stat"));
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(pid_alive(me, start));
        assert!(!pid_alive(me, start + 1));
        assert!(!cmdline(me).is_empty());
    }
}
