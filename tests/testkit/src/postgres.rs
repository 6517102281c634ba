//! The harness's PostgreSQL (tests/lib/components.sh: postgres): a fresh database for a
//! test, and stopping and starting the server the way an outage would. Tests that stop it
//! must run alone among the tests that use it: name them all `postgres_*` (nextest group
//! `postgres`, .config/nextest.toml).

use anyhow::{Context as _, bail};
use std::process::Command;

/// A new database owned by role `ferry`; its URL.
pub fn fresh_database() -> anyhow::Result<String> {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    superuser_sql(&format!("CREATE DATABASE {name} OWNER ferry"))?;
    let url = crate::harness_var("FERRY_TEST_POSTGRES_URL");
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .context("FERRY_TEST_POSTGRES_URL has no database")?;
    Ok(format!("{base}/{name}"))
}

/// Run SQL as the superuser over the unix socket.
pub fn superuser_sql(sql: &str) -> anyhow::Result<String> {
    let socket = crate::harness_var("FERRY_TEST_POSTGRES_SOCKET");
    let port = crate::harness_var("FERRY_TEST_POSTGRES_PORT");
    let bin = crate::harness_var("FERRY_TEST_POSTGRES_BIN");
    as_postgres(
        &format!("{bin}/psql"),
        &[
            "-h",
            &socket,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ],
    )
}

/// A fast shutdown (`pg_ctl stop -m fast`): clients are disconnected, as when the
/// database host goes away.
pub fn stop() -> anyhow::Result<()> {
    let bin = crate::harness_var("FERRY_TEST_POSTGRES_BIN");
    let dir = crate::harness_var("FERRY_TEST_POSTGRES_DIR");
    as_postgres(
        &format!("{bin}/pg_ctl"),
        &["-D", &dir, "-w", "stop", "-m", "fast"],
    )
    .map(drop)
}

/// Start it again with the harness's options.
pub fn start() -> anyhow::Result<()> {
    let bin = crate::harness_var("FERRY_TEST_POSTGRES_BIN");
    let dir = crate::harness_var("FERRY_TEST_POSTGRES_DIR");
    let log = crate::harness_var("FERRY_TEST_POSTGRES_LOG");
    let options = crate::harness_var("FERRY_TEST_POSTGRES_OPTIONS");
    as_postgres(
        &format!("{bin}/pg_ctl"),
        &[
            "-D", &dir, "-w", "-t", "60", "-l", &log, "-o", &options, "start",
        ],
    )
    .map(drop)
}

/// PostgreSQL's tools refuse root: run them as user postgres, from `/` (which it may read).
fn as_postgres(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", program])
        .args(args)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
