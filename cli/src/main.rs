//! `ferry`: the operators' tool. Exit codes: 0 ok, 1 failed, 2 rejected input,
//! 64 bad configuration.

mod hook;
mod ops;
mod status;

use clap::{Parser, Subcommand};
use ferry_shared::config::{EXIT_BAD_CONFIG, FerryConfig, config_path};
use ferry_shared::{bus::topology, pipeline};
use std::path::PathBuf;
use std::process::ExitCode;

/// Ferry: from a commit in Subversion or git to production containers, with a test
/// gate, rollback and a message to the person who broke it.
#[derive(Parser)]
#[command(name = "ferry", version, propagate_version = true)]
struct Cli {
    /// Configuration file [default: $FERRY_CONFIG or /etc/ferry/ferry.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    api: ops::Api,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with the RabbitMQ topology.
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Debug webhooks.
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// What runs in each environment of a project, read from the hosts themselves
    /// (container labels): revision, image, run id, per host.
    Status {
        project: String,
        /// `text` (a table) or `json`
        #[arg(long, default_value = "text")]
        output: String,
    },
    /// Print a run's build log (stored by the builder under build.log_dir).
    Logs {
        /// The run id (from the hook's 202 answer, an event, or a notification)
        run: String,
    },
    /// Let a run held for approval go on into the next environment (operator API).
    Approve {
        run: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// End a run held for approval without deploying it (operator API).
    Reject {
        run: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Put an environment back on the previous revision's image, or a named revision's
    /// image that already ran there, by digest and without a build; any other revision
    /// (never deployed there, or lost by the registry) is built (or its image reused)
    /// and passes the environments before this one, their tests and approvals.
    Rollback {
        project: String,
        #[arg(long = "env")]
        environment: String,
        /// A revision to go back to [default: what ran before the current one]
        #[arg(long)]
        to: Option<String>,
        /// If the revision must go through the gate, deploy it straight to --env without passing
        /// the environments before it (needs `approve` there; recorded with --reason)
        #[arg(long, requires = "reason")]
        skip_gate: bool,
        /// Why the test gate is skipped (recorded in the run's events)
        #[arg(long, requires = "skip_gate")]
        reason: Option<String>,
        /// Follow the run until it ends; exit 1 unless the rollback succeeded
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Start a run of a revision by hand (build, push, pull, deploy, tests).
    Deploy {
        project: String,
        #[arg(long)]
        revision: String,
        #[arg(long)]
        message: Option<String>,
        /// Follow the run until it ends (or waits for approval)
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// Run N instances of what runs in an environment: the Rancher service's scale, or
    /// N replicas on each Docker host. Waits for the environment's deploy in progress,
    /// and later deploys keep the new scale.
    Scale {
        project: String,
        #[arg(long = "env")]
        environment: String,
        /// How many instances (1 to 100)
        #[arg(long)]
        to: u32,
        /// Follow it until it is done; exit 1 unless it succeeded
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Follow a run: print its events as they happen, then each stage's time; exit 1
    /// unless it ended well (reached the last environment, or was rolled back as asked).
    Watch {
        run: String,
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// The project's last runs: revision, author, status, each stage's outcome and time.
    Runs {
        project: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// `text` or `json`
        #[arg(long, default_value = "text")]
        output: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file plus FERRY__SECTION__KEY overrides) and print
    /// every problem; exits 64 if there is any.
    Check,
    /// Print the effective configuration as JSON, secrets redacted.
    Show,
}

#[derive(Subcommand)]
enum BrokerCommand {
    /// Print the RabbitMQ definitions (exchanges, queues, bindings) Ferry declares,
    /// for `rabbitmqctl import_definitions` or the management UI.
    Definitions,
    /// Print a shell script that creates one RabbitMQ user per service and limits each
    /// to the routing keys it publishes (`set_permissions`, `set_topic_permissions`).
    /// Passwords are read from FERRY_BROKER_PASSWORD_<SERVICE> when it runs.
    Users,
}

/// The configuration, or the exit code after saying what is wrong with it.
fn load(path: &std::path::Path) -> Result<FerryConfig, ExitCode> {
    FerryConfig::load(path).map_err(|e| {
        eprintln!("ferry: {e}");
        ExitCode::from(EXIT_BAD_CONFIG as u8)
    })
}

fn print_log(cfg: &FerryConfig, run: &str) -> Result<(), ExitCode> {
    if uuid::Uuid::parse_str(run).is_err() {
        eprintln!(
            "ferry: `{run}` is not a run id (a UUID such as 01a217c3-a6b7-75c6-9a90-1eddbbc6733b)"
        );
        return Err(ExitCode::from(2));
    }
    let file = cfg.build.log_dir.join(run).join("build.log");
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err(e) => {
            eprintln!(
                "ferry: no build log for run {run} at {} ({e}); run this on the build host, or check build.log_dir",
                file.display()
            );
            Err(ExitCode::FAILURE)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let explicit_config = cli.config.clone();
    let path = cli.config.unwrap_or_else(config_path);
    // The operator commands need no configuration, but use its API address if any.
    let listen = || {
        FerryConfig::load(&path)
            .ok()
            .and_then(|c| c.service("hook-receiver").listen)
            .map(|a| a.to_string())
    };
    let client = || ops::Client::new(&cli.api, listen());
    let start = |project, wait, secs| ops::Start {
        project,
        wait,
        timeout: std::time::Duration::from_secs(secs),
    };
    let result = match cli.command {
        Command::Approve { run, comment } => {
            client().and_then(|c| ops::decide(&c, &run, true, comment))
        }
        Command::Reject { run, comment } => {
            client().and_then(|c| ops::decide(&c, &run, false, comment))
        }
        Command::Rollback {
            project,
            environment,
            to,
            skip_gate,
            reason,
            wait,
            timeout_secs,
        } => client().and_then(|c| {
            let target = ops::RollbackTarget {
                environment: &environment,
                to,
                skip_gate,
                reason,
            };
            ops::rollback(&c, &start(&project, wait, timeout_secs), target)
        }),
        Command::Deploy {
            project,
            revision,
            message,
            wait,
            timeout_secs,
        } => client().and_then(|c| {
            ops::deploy(&c, &start(&project, wait, timeout_secs), &revision, message)
        }),
        Command::Scale {
            project,
            environment,
            to,
            wait,
            timeout_secs,
        } => client()
            .and_then(|c| ops::scale(&c, &start(&project, wait, timeout_secs), &environment, to)),
        Command::Watch { run, timeout_secs } => client()
            .and_then(|c| ops::watch(&c, &run, std::time::Duration::from_secs(timeout_secs))),
        Command::Runs {
            project,
            limit,
            output,
        } => client().and_then(|c| ops::runs(&c, &project, limit, &output)),
        Command::Config(ConfigCommand::Check) => {
            load(&path).map(|_| println!("{}: ok", path.display()))
        }
        Command::Config(ConfigCommand::Show) => load(&path)
            .map(|cfg| println!("{}", serde_json::to_string_pretty(&cfg).unwrap_or_default())),
        Command::Broker(BrokerCommand::Definitions) => load(&path).map(|cfg| {
            let defs = topology::definitions(&cfg.broker, &pipeline::stages());
            println!(
                "{}",
                serde_json::to_string_pretty(&defs).unwrap_or_default()
            );
        }),
        Command::Broker(BrokerCommand::Users) => {
            load(&path).map(|cfg| print!("{}", ferry_shared::bus::users::script(&cfg)))
        }
        Command::Status { project, output } => {
            load(&path).and_then(|cfg| status::run(&cfg, &project, &output))
        }
        Command::Logs { run } => load(&path).and_then(|cfg| print_log(&cfg, &run)),
        // Works offline and without a configuration; with --config it also says
        // which projects the hook would start.
        Command::Hook(cmd) => match explicit_config.as_deref().map(load).transpose() {
            Ok(cfg) => return hook::run(cmd, cfg.as_ref()),
            Err(code) => Err(code),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
