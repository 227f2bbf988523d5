//! The `sentralbord` binary: a thin CLI over the library (see `sentralbord::runtime`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// sentralbord: SIP softswitch for hosted business switchboards.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Daemon settings file (TOML). Without it the embedded defaults apply;
    /// every key can also be set with SENTRALBORD_<SECTION>__<KEY>.
    #[arg(long, short = 'c', global = true, env = "SENTRALBORD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the configuration and the profiles, then exit.
    CheckConfig,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(sentralbord::cli::TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(sentralbord::cli::UserCommand),
    /// Manage tenants' directories of contacts (caller names).
    #[command(subcommand)]
    Directory(sentralbord::cli::DirectoryCommand),
    /// Read the call log.
    #[command(subcommand)]
    Calls(sentralbord::cli::CallsCommand),
    /// Manage queues and answer groups, agents and VIP numbers; queue status, log and
    /// statistics.
    #[command(subcommand)]
    Queue(sentralbord::cli::QueueCommand),
    /// Manage conference rooms; participants, moderator controls, merging a user's two calls
    /// into one conference, and the conference log.
    #[command(subcommand)]
    Conference(sentralbord::cli::ConferenceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match sentralbord::config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sentralbord: configuration error:\n{e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            println!("configuration ok: {} profile(s)", config.profiles.len());
            for p in &config.profiles {
                for l in &p.listen {
                    let t: Vec<&str> = l.transports.iter().map(|t| t.as_str()).collect();
                    println!("  {} listens on {} ({})", p.name, l.addr, t.join(", "));
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run => {
            sentralbord::runtime::logging::init(&config.daemon.log);
            let result = sentralbord::runtime::block_on(sentralbord::runtime::run(
                config,
                sentralbord::runtime::shutdown_signal(),
            ));
            match result.and_then(|r| r) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sentralbord: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Tenant(cmd) => {
            let db = config.daemon.store.db_path();
            report(sentralbord::cli::run_tenant(cmd, &db))
        }
        Command::User(cmd) => {
            let db = config.daemon.store.db_path();
            let realm = config
                .profiles
                .iter()
                .find_map(|p| p.phones().map(|ph| ph.realm.clone()))
                .unwrap_or_else(|| "sentralbord.local".to_string());
            report(sentralbord::cli::run_user(cmd, &db, &realm))
        }
        Command::Directory(cmd) => {
            let db = config.daemon.store.db_path();
            report(sentralbord::cli::run_directory(cmd, &db))
        }
        Command::Calls(cmd) => {
            let db = config.daemon.store.db_path();
            report(sentralbord::cli::run_calls(cmd, &db))
        }
        Command::Queue(cmd) => {
            let db = config.daemon.store.db_path();
            let now = sentralbord::runtime::now().wall;
            report(sentralbord::cli::run_queue(cmd, &db, now))
        }
        Command::Conference(cmd) => {
            let db = config.daemon.store.db_path();
            let now = || sentralbord::runtime::now().wall;
            report(sentralbord::cli::run_conference(cmd, &db, now))
        }
    }
}

fn report<E: std::fmt::Display>(r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentralbord: {e}");
            ExitCode::FAILURE
        }
    }
}
