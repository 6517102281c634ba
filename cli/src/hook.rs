//! `ferry hook inspect`: read one webhook request offline and show what Ferry makes of
//! it, exactly as the hook-receiver would (same parsers, from ferry-hooks).

use clap::Subcommand;
use ferry_hooks::plan::{Plan, plan};
use ferry_hooks::sources;
use ferry_hooks::trigger::Source;
use ferry_shared::config::FerryConfig;
use ferry_shared::secret::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where `ferry hook inspect` reads the secret when no file is given.
const SECRET_ENV: &str = "FERRY_HOOK_SECRET";

#[derive(Subcommand)]
pub enum HookCommand {
    /// Read a webhook body on stdin and print the normalized trigger as JSON (exit 0),
    /// or why the hook-receiver would reject it (exit 2). The secret is never printed.
    ///
    /// The source's secret or token comes from `FERRY_HOOK_SECRET` or `--secret-file`
    /// (stdin is the body), never from the command line, where every user of the machine
    /// can read it (`ps`, shell history); without it the signature is not checked.
    ///
    /// Example: FERRY_HOOK_SECRET=... ferry hook inspect --source github
    ///          -H 'X-GitHub-Event: push' -H 'X-Hub-Signature-256: sha256=...' < payload.json
    Inspect {
        /// gitlab, github, gitea, svn, harbor or manual
        #[arg(long, value_parser = parse_source)]
        source: Source,
        /// A request header, `Name: value` (repeatable). Content-Type defaults to application/json.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A file holding the source's secret or token (a trailing newline is ignored).
        /// Default: the environment variable FERRY_HOOK_SECRET.
        #[arg(long, value_name = "PATH")]
        secret_file: Option<PathBuf>,
        /// Refused: a secret on the command line leaks (see above).
        #[arg(long = "secret", hide = true, num_args = 0..=1, value_name = "REFUSED")]
        secret_on_command_line: Option<Option<String>>,
    },
}

fn parse_source(s: &str) -> Result<Source, String> {
    Source::parse(s).ok_or_else(|| {
        format!("`{s}` is not a source: gitlab, github, gitea, svn, harbor or manual")
    })
}

pub fn run(cmd: HookCommand, cfg: Option<&FerryConfig>) -> ExitCode {
    let HookCommand::Inspect {
        source,
        headers,
        secret_file,
        secret_on_command_line,
    } = cmd;
    if secret_on_command_line.is_some() {
        eprintln!(
            "ferry: --secret is refused: a secret on the command line is visible to every \
             user of this machine (ps, /proc, shell history). Put it in {SECRET_ENV} or in a \
             file given with --secret-file"
        );
        return ExitCode::from(2);
    }
    let secret = match read_secret(secret_file.as_deref()) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("ferry: {why}");
            return ExitCode::from(2);
        }
    };
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for h in &headers {
        let Some((name, value)) = h.split_once(':') else {
            eprintln!("ferry: header `{h}` must be `Name: value`");
            return ExitCode::from(2);
        };
        match (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            (Ok(n), Ok(v)) => {
                if n == "content-type" {
                    map.remove(&n);
                }
                map.append(n, v);
            }
            _ => {
                eprintln!("ferry: header `{name}` is not a valid HTTP header");
                return ExitCode::from(2);
            }
        }
    }
    let mut body = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut body) {
        eprintln!("ferry: cannot read the body from stdin: {e}");
        return ExitCode::FAILURE;
    }
    if secret.is_none() {
        eprintln!(
            "ferry: no secret ({SECRET_ENV} or --secret-file): the token/signature was not checked"
        );
    }
    let secret = secret.map(Secret::new);
    match sources::parse(source, &map, &body, secret.as_ref()) {
        Err(r) => {
            let out = json!({ "rejected": r.reason, "status": r.status.as_u16() });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::from(2)
        }
        Ok(parsed) => {
            let mut out = serde_json::to_value(&parsed).unwrap_or_default();
            if let Some(cfg) = cfg {
                out["would_start"] = match plan(cfg, parsed, &AnyRelease) {
                    Plan::Start { events, .. } => {
                        json!(events.iter().map(|e| &e.project).collect::<Vec<_>>())
                    }
                    Plan::Ignore(reason) => json!({ "ignored": reason }),
                    Plan::Reject(r) => json!({ "rejected": r.reason }),
                };
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::SUCCESS
        }
    }
}

/// `inspect` has no run history: a config change is shown as starting the project
/// (the receiver rebuilds the revision in production).
struct AnyRelease;

impl ferry_hooks::plan::Releases for AnyRelease {
    fn current(&self, _: &str) -> Option<ferry_hooks::plan::Release> {
        Some(ferry_hooks::plan::Release {
            revision: "(the revision in production)".into(),
            reference: None,
        })
    }
}

/// The secret from `file` (without its trailing newline), else from the environment.
fn read_secret(file: Option<&Path>) -> Result<Option<String>, String> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --secret-file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        None => match std::env::var(SECRET_ENV) {
            Ok(s) => s,
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(e) => return Err(format!("{SECRET_ENV}: {e}")),
        },
    };
    if secret.is_empty() {
        return Err(match file {
            Some(path) => format!("--secret-file {} is empty", path.display()),
            None => format!("{SECRET_ENV} is set but empty"),
        });
    }
    Ok(Some(secret))
}
