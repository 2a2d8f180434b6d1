//! `trustca`: parse the command line, set up logging, run, and turn any
//! error into one line on stderr and a non-zero exit.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use trustca::cli::{Cli, LogFormat, run};

fn main() -> ExitCode {
    let matches = trustca::help::grouped(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Every command that opens a store turns a panic of the storage engine
    // on damaged files into an error (trustca_store::GuardedStorage); its
    // own panic message would only repeat that in Rust's words.
    trustca_store::quiet_engine_panics();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // sled's own error lines repeat, once per waiting flush, what the
        // store reports once as a StoreError (and logs on a state change).
        tracing_subscriber::EnvFilter::new("info,sled=off,h2=warn,tower=warn,hyper=warn")
    });
    // Colour codes only help a human at a terminal; in a file, a pipe or a
    // journal they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
