//! The binary's `check` command and configuration errors.

use std::process::Command;

fn node() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mrjbot-node"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MRJBOT_NODE_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn check_reports_the_core_version_and_bad_values_by_key() {
    let Some(bin) = crate::support::v2ray_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("mrjbot-node.toml");
    std::fs::write(
        &file,
        format!(
            "control_plane_url = \"https://cp.example\"\nsecret = \"s\"\ncore = \"v2ray\"\ncore_bin = \"{}\"\nstate_dir = \"{}\"\n",
            bin.display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = node()
        .arg("-c")
        .arg(&file)
        .arg("check")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("V2Ray 4.34"), "{stdout}");

    let out = node()
        .arg("-c")
        .arg(&file)
        .args(["--core", "clash", "check"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`core`") && stderr.contains("clash"),
        "{stderr}"
    );

    let out = node()
        .arg("-c")
        .arg(&file)
        .arg("check")
        .env("MRJBOT_NODE_API_PORT", "70000")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("api_port")
    );
}
