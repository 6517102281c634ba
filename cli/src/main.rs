//! `ferry`: the operators' tool. Exit codes: 0 ok, 1 failed, 2 rejected input,
//! 64 bad configuration.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.unwrap_or_else(config_path);
    let load = || match FerryConfig::load(&path) {
        Ok(cfg) => Ok(cfg),
        Err(e) => {
            eprintln!("ferry: {e}");
            Err(ExitCode::from(EXIT_BAD_CONFIG as u8))
        }
    };
    let cfg = match load() {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            println!("{}: ok", path.display());
        }
        Command::Config(ConfigCommand::Show) => {
            println!("{}", serde_json::to_string_pretty(&cfg).unwrap_or_default());
        }
        Command::Broker(BrokerCommand::Definitions) => {
            let defs = topology::definitions(&cfg.broker, &pipeline::stages());
            println!(
                "{}",
                serde_json::to_string_pretty(&defs).unwrap_or_default()
            );
        }
    }
    ExitCode::SUCCESS
}
