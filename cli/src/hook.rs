//! `ferry hook inspect`: read one webhook request offline and show what Ferry makes of
//! it, exactly as the hook-receiver would (same parsers).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use clap::Subcommand;
use ferry_shared::config::FerryConfig;
use ferry_shared::secret::Secret;
use hook_receiver::plan::{Plan, plan};
use hook_receiver::sources;
use hook_receiver::trigger::Source;
use serde_json::json;
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum HookCommand {
    /// Read a webhook body on stdin and print the normalized trigger as JSON (exit 0),
    /// or why the hook-receiver would reject it (exit 2). The secret is never printed.
    ///
    /// Example: ferry hook inspect --source github -H 'X-GitHub-Event: push'
    ///          -H 'X-Hub-Signature-256: sha256=...' --secret "$SECRET" < payload.json
    Inspect {
        /// gitlab, github, gitea, svn, harbor or manual
        #[arg(long, value_parser = parse_source)]
        source: Source,
        /// A request header, `Name: value` (repeatable). Content-Type defaults to application/json.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The source's secret or token; without it the signature is not checked.
        #[arg(long, env = "FERRY_HOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
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
        secret,
    } = cmd;
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
        eprintln!("ferry: no --secret given: the token/signature was not checked");
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
                out["would_start"] = match plan(cfg, parsed) {
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
