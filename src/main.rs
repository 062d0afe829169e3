//! The `chatloop` command: parse the command line, run a subcommand, map errors to an exit code.

use chatloop::cli::UsageError;
use chatloop::config::{ServeCommand, SERVE_USAGE};
use chatloop::{Config, Server};
use std::process::ExitCode;

const USAGE: &str = "\
Usage: chatloop <COMMAND> [OPTIONS]

A WebSocket chat server in one mio event loop (Qt's ChatServer and echo server, in Rust).

Commands:
  serve      run the server (default 127.0.0.1:1234; see 'chatloop serve --help')
  connect    chat from the terminal: stdin lines out, messages in (see 'chatloop connect --help')
  bench      load-test a server: fanout, echo, idle, connect, ramp (see 'chatloop bench --help')

Options:
  -h, --help       print this help
  -V, --version    print the version
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the program stops early: a usage mistake (exit 2) or a runtime failure (exit 1).
enum Failure {
    Usage(UsageError),
    Runtime(std::io::Error),
}

fn run(args: Vec<String>) -> Result<ExitCode, Failure> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("serve") => serve(args.collect()),
        #[cfg(feature = "client")]
        Some("connect") => connect(args.collect()),
        #[cfg(feature = "bench")]
        Some("bench") => bench(args.collect()),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some("-V" | "--version") => {
            println!("chatloop {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(Failure::Usage(UsageError(format!(
            "unknown command '{other}' (see 'chatloop --help')"
        )))),
    }
}

fn serve(args: Vec<String>) -> Result<ExitCode, Failure> {
    let (config, level) = match Config::from_args(args).map_err(Failure::Usage)? {
        ServeCommand::Help => {
            print!("{SERVE_USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        ServeCommand::Run(config, level) => (config, level),
    };
    // Only fails if a logger is already installed, which cannot happen this early.
    // tungstenite logs every close frame at debug; our own lines say the same per connection.
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_module_level("tungstenite", level.min(log::LevelFilter::Info))
        .init();
    // With --redis-required, a Redis that does not answer is an error now, not a warning later.
    #[cfg(feature = "redis")]
    if let Some(redis) = &config.redis {
        chatloop::bridge::check_at_start(redis).map_err(Failure::Runtime)?;
    }
    let mut server = Server::bind((*config).clone()).map_err(|e| {
        // A certificate that cannot be used says so itself, in one line that names the file.
        #[cfg(feature = "tls")]
        if e.get_ref()
            .is_some_and(|inner| inner.is::<chatloop::tls::TlsError>())
        {
            return Failure::Runtime(e);
        }
        Failure::Runtime(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", config.listen),
        ))
    })?;
    server.handle_signals().map_err(Failure::Runtime)?;
    let mode = match config.mode {
        chatloop::Mode::Chat => "chat",
        chatloop::Mode::Echo => "echo",
    };
    let secure = if config.tls.is_some() { "s" } else { "" };
    log::info!(
        "chatloop {mode} server listening on ws{secure}://{}/",
        server.local_addr()
    );
    log::info!(
        "chat page: http{secure}://{}/ (or /ROOM for a room)",
        server.local_addr()
    );
    server.run().map_err(Failure::Runtime)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "client")]
fn connect(args: Vec<String>) -> Result<ExitCode, Failure> {
    use chatloop::client::{ClientConfig, ConnectCommand, CONNECT_USAGE};
    match ClientConfig::from_args(args).map_err(Failure::Usage)? {
        ConnectCommand::Help => {
            print!("{CONNECT_USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        ConnectCommand::Run(config) => chatloop::client::run(config).map_err(Failure::Runtime),
    }
}

/// `chatloop bench`: the load generator (crates/chatloop-bench) parses its arguments, runs
/// the scenario and prints the report.
#[cfg(feature = "bench")]
fn bench(args: Vec<String>) -> Result<ExitCode, Failure> {
    use chatloop_bench::cli::{self, Error};
    cli::main(args).map_err(|e| match e {
        Error::Usage(why) => Failure::Usage(UsageError(why)),
        Error::Run(e) => Failure::Runtime(e),
    })?;
    Ok(ExitCode::SUCCESS)
}
