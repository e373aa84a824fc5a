//! `dns-sensor replay`: read capture files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dns_sensor::alert::JsonLines;
use dns_sensor::pipeline;

use crate::{print_summary, RuleArgs, EXIT_BAD_INPUT};

#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// Capture files, merged in time order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(crate) fn replay(args: &ReplayArgs) -> ExitCode {
    let settings = match args.rule.config().and_then(|c| Ok(c.settings()?)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let stdout = JsonLines::new(std::io::stdout());
    let report = match pipeline::replay(&args.files, &settings, vec![Box::new(stdout)]) {
        Ok(report) => report,
        Err(e @ (pipeline::PipelineError::Capture(_) | pipeline::PipelineError::Domain(_))) => {
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
    print_summary(&report);
    ExitCode::SUCCESS
}
