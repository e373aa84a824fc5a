//! `dns-sensor replay`: read capture files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use dns_sensor::capture::STDIN_PATH;
use dns_sensor::config::Command;
use dns_sensor::pipeline;

use crate::progress::ProgressDisplay;
use crate::{print_summary, RuleArgs, EXIT_BAD_INPUT};

#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// Capture files, merged in time order; `-` is standard input
    /// (`tcpdump -w - | dns-sensor replay -`).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Go on from the window kept in DIR, and keep it there at the end, without the
    /// end-of-input evaluation: hourly rotated captures (`tcpdump -G 3600`) replayed
    /// one file per invocation alert as one replay of them all would.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The summary on standard error at the end: a few lines of text, or one JSON
    /// object (the last line) for scripts.
    #[arg(long, value_enum, default_value = "text")]
    summary: SummaryFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

pub(crate) fn replay(args: &ReplayArgs) -> ExitCode {
    let stdin_uses = args
        .files
        .iter()
        .filter(|f| f.as_path() == Path::new(STDIN_PATH))
        .count();
    if stdin_uses > 1 {
        log::error!(
            "standard input ({STDIN_PATH}) can be read only once, and is given {stdin_uses} times"
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let opened = args.rule.config().and_then(|config| {
        let settings = config.settings()?;
        let outputs = config.outputs(Command::Replay)?;
        let fleet = match &config.fleet {
            Some(fleet) => Some(fleet.settings(config.top_clients)?),
            None => None,
        };
        Ok((settings, outputs.open()?, fleet))
    });
    let (settings, sinks, fleet) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // Progress only for a person watching: nothing extra in a log or a pipe.
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(pipeline::ReplayProgress::default()));
    let shown = progress
        .clone()
        .map(|p| ProgressDisplay::start(p, total_bytes(&args.files)));
    let state = args.state.as_deref();
    let replayed = pipeline::replay_with(
        &args.files,
        &settings,
        sinks,
        progress,
        state,
        fleet.as_ref(),
    );
    drop(shown);
    let mut report = match replayed {
        Ok(report) => report,
        Err(
            e @ (pipeline::PipelineError::Capture(_)
            | pipeline::PipelineError::Domain(_)
            | pipeline::PipelineError::State { .. }),
        ) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for cut in &report.truncated {
        log::warn!("{cut}; the frames before it were counted");
    }
    match args.summary {
        SummaryFormat::Text => print_summary(&report),
        SummaryFormat::Json => eprintln!("{}", report.to_json()),
    }
    // The process exits next: freeing the window's tables (a million and more in a 4 h
    // window) one by one would only cost time. Dropping is right everywhere else.
    std::mem::forget(report.window.take());
    if report.summary.delivery_failures > 0 {
        // Every failure was logged where it happened.
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The files' sizes added up; `None` when one is standard input or cannot be sized.
fn total_bytes(files: &[PathBuf]) -> Option<u64> {
    files
        .iter()
        .map(|f| {
            (f.as_path() != Path::new(STDIN_PATH))
                .then(|| std::fs::metadata(f).ok().map(|m| m.len()))
                .flatten()
        })
        .sum()
}
