//! The cluster path end to end: a real scheduler and two executors on loopback run every
//! benchmark segment with the same counts as a local run (`benches/cluster_loopback.py`, the
//! script users run too), and a bad or unreachable `--cluster` is a clear error.
#![cfg(feature = "cluster")]

use assert_cmd::Command;
use predicates::prelude::*;

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AUDIENCE_STORE")
        .env_remove("AUDIENCE_CLUSTER");
    cmd
}

#[test]
fn loopback_cluster_counts_equal_local_counts() {
    let out = std::process::Command::new("python3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["benches/cluster_loopback.py", "--store", "data/sample"])
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_audience"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cluster counts equal local counts"),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_scheduler_is_named() {
    audience()
        .args(["count", "--cluster", "df://127.0.0.1:1", "primaryDevice"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot reach the Ballista scheduler at df://127.0.0.1:1",
        ));
}

#[test]
fn a_malformed_cluster_address_is_a_usage_error() {
    audience()
        .args(["count", "--cluster", "http://sched:50050", "primaryDevice"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use df://HOST:PORT"));
}
