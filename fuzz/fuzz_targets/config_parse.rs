//! The settings file (`config::Config::parse`) on any UTF-8 text.
//!
//! Input: the file's text (inputs that are not UTF-8 are skipped).
//!
//! Checks: parsing never panics; an error is `Invalid` and names the file and a line
//! of the text (1 to the number of lines). Settings that parse are taken as a run
//! takes them, without a panic: the pipeline's settings (unless they name whitelist
//! files, which would be read), the outputs of `replay` and `run` (unless they name a
//! credentials file), and the decoder, window and slot tables built from them.

#![no_main]

use dns_sensor::config::{Command, Config, ConfigError};
use dns_sensor::decode::Decoder;
use dns_sensor::detect::Detector;
use dns_sensor::sketch::Shard;
use dns_sensor_fuzz::T0;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml") {
        Ok(config) => config,
        Err(ConfigError::Invalid {
            path,
            line,
            message,
        }) => {
            let lines = text.matches('\n').count() + 1;
            assert_eq!(path, "fuzz.toml");
            assert!(
                (1..=lines).contains(&line),
                "line {line} of {lines}: {message}"
            );
            return;
        }
        Err(other) => panic!("parse gave an error that is not Invalid: {other}"),
    };
    if config.output.email.credentials_file.is_none() {
        for command in [Command::Replay, Command::Run] {
            let _ = config.outputs(command);
        }
    }
    if !config.whitelist_files.is_empty() {
        return;
    }
    let Ok(settings) = config.settings() else {
        return;
    };
    let _ = Decoder::new(settings.decode.clone());
    let _ = Shard::new(T0, &settings.sketch);
    let mut detector = Detector::new(settings.rule.clone());
    let at = detector.slot_start(T0);
    let _ = detector.evaluate(at);
});
