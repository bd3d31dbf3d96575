//! Durable files in the state directory.
//!
//! Every file the agent relies on after a crash is written with [`write_atomic`]: a
//! temporary file in the same directory, `fsync`, `rename`, then `fsync` of the directory.
//! A reader therefore sees either the previous content or the new one, never a torn file,
//! whatever moment the agent (or the machine) dies at.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The last desired state received, so a restart while the control plane is down still
/// serves the right users.
pub const DESIRED_FILE: &str = "desired.json";
/// The usage ledger (baseline, carry, pending report).
pub const USAGE_FILE: &str = "usage.json";
/// The core process the agent started (pid, start time, generation).
pub const CORE_FILE: &str = "core.json";

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Serialises `value` as JSON into `path` atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Reads JSON from `path`; `Ok(None)` when the file does not exist.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Paths inside the state directory.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    /// Creates the directory when missing.
    pub fn open(dir: &Path) -> std::io::Result<StateDir> {
        std::fs::create_dir_all(dir)?;
        Ok(StateDir(dir.to_path_buf()))
    }

    /// A file inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("x.json");
        save_json(&p, &vec![1, 2]).unwrap_or_else(|e| panic!("{e}"));
        save_json(&p, &vec![3]).unwrap_or_else(|e| panic!("{e}"));
        let v: Option<Vec<i32>> = load_json(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Some(vec![3]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
        let none: Option<Vec<i32>> =
            load_json(&dir.path().join("missing")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none, None);
    }
}
