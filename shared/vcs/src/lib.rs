//! Running `svn` and `git` for Ferry: non-interactive, with a deadline, every value from
//! outside after an end-of-options marker, secrets on stdin only. Used for the code
//! checkouts (builder) and the ops config repo (ferry-config-repo).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A tool that failed: what was run and what it said.
#[derive(Debug, thiserror::Error)]
#[error("`{what}` failed: {detail}")]
pub struct Failed {
    /// What was run, without secrets.
    pub what: String,
    /// The tool's own explanation (stderr), trimmed.
    pub detail: String,
}

/// Run `program args` in `dir`, feeding `stdin` (used for passwords), within `timeout`.
pub async fn run(
    program: &str,
    args: &[&str],
    dir: Option<&Path>,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, Failed> {
    let what = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LC_ALL", "C.UTF-8")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| Failed {
        what: what.clone(),
        detail: format!("cannot start {program}: {e}; is it installed?"),
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes()).await;
        drop(pipe);
    }
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(Failed {
                what,
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(Failed {
                what,
                detail: format!("did not finish within {timeout:?}"),
            });
        }
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Err(Failed {
            what,
            detail: if detail.is_empty() {
                format!("exit status {}", out.status)
            } else {
                detail
            },
        })
    }
}

/// Run `git <options...> <end> <operands...>`: every value that comes from outside
/// Ferry (a revision, a ref, a URL, a path) goes in `operands`, after an end-of-options
/// marker, so it can never be read as an option (`--upload-pack=<command>`). Most
/// commands take `--end-of-options` (git 2.24+); `merge-base` does not and takes `--`.
pub async fn git(
    dir: Option<&Path>,
    timeout: Duration,
    options: &[&str],
    operands: &[&str],
) -> Result<String, Failed> {
    let end = match options.first() {
        Some(&"merge-base") => "--",
        _ => "--end-of-options",
    };
    let args: Vec<&str> = options
        .iter()
        .copied()
        .chain([end])
        .chain(operands.iter().copied())
        .collect();
    run("git", &args, dir, None, timeout).await
}

/// Run `svn <options...> -- <operands...>` (URLs and paths after `--`), feeding
/// `stdin` (the password).
pub async fn svn(
    options: &[&str],
    operands: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, Failed> {
    let args: Vec<&str> = options
        .iter()
        .copied()
        .chain(["--"])
        .chain(operands.iter().copied())
        .collect();
    run("svn", &args, None, stdin, timeout).await
}
