//! Settings that parse but cannot work, refused with the reason, and settings that
//! make detection unlikely, warned about: a window cut into millions of slots, or a
//! memory cap that leaves each slot too little, would run, shed every record and
//! alert on nothing, without a word.

use std::time::Duration;

use super::values::nanos;
use super::Config;

/// The longest window accepted: a year (365.25 days). No tunnel rule needs more, and time
/// arithmetic stays far from the end of the nanosecond range (584 years).
pub const MAX_WINDOW: Duration = Duration::from_secs(31_557_600);

/// The shortest slot: the window and the interval are cut into slots of their largest
/// common length, and each slot held is a table of its own.
pub const MIN_SLOT: Duration = Duration::from_secs(1);

/// Below this share of `memory_cap` a slot's table holds a few hundred domains: the
/// settings are refused.
pub const MIN_SLOT_BYTES: usize = 256 << 10;

/// Below this share a busy network's slot sheds records (a slot of a resolver with
/// 5 000 active domains takes about 3 MiB): the settings are accepted with a warning.
pub const LOW_SLOT_BYTES: usize = 4 << 20;

/// What is wrong with a setting, and the key to point at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingProblem {
    /// The key whose line an error names.
    pub key: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

impl Config {
    /// Checks that the rule's settings can work together: `Err` with the first that
    /// cannot, else the warnings (possibly none) about those that make detection
    /// unlikely. [`Config::parse`] refuses a file that fails; the command line's flags
    /// are checked again once applied.
    pub fn check(&self) -> Result<Vec<SettingProblem>, SettingProblem> {
        if self.window > MAX_WINDOW {
            return Err(SettingProblem {
                key: "window",
                message: format!(
                    "{} is longer than the longest window, {}",
                    human(self.window),
                    human(MAX_WINDOW)
                ),
            });
        }
        let slot = Duration::from_nanos(crate::detect::slot_length(
            nanos(self.window),
            nanos(self.interval),
        ));
        if slot < MIN_SLOT {
            return Err(SettingProblem {
                key: "interval",
                message: format!(
                    "with window {} it cuts time into slots of {} (the longest length \
                     dividing both), shorter than {}: make the window a multiple of the \
                     interval, in whole seconds",
                    human(self.window),
                    human(slot),
                    human(MIN_SLOT)
                ),
            });
        }
        let rule = self.rule();
        let memory_cap = usize::try_from(self.memory_cap).unwrap_or(usize::MAX);
        let slot_bytes = self.budget(&rule, 1).shard_bytes;
        let slots = rule.window / rule.interval.min(rule.window).max(1);
        let share = |what: &str| {
            format!(
                "{} shared by a {} window's slots of {} leaves each {}, {what}",
                mib(memory_cap),
                human(self.window),
                human(slot),
                mib(slot_bytes),
            )
        };
        if slot_bytes < MIN_SLOT_BYTES {
            return Err(SettingProblem {
                key: "memory_cap",
                message: share(&format!(
                    "less than {}: raise memory_cap or lengthen the interval ({slots} \
                     evaluations a window)",
                    mib(MIN_SLOT_BYTES)
                )),
            });
        }
        let mut warnings = Vec::new();
        if slot_bytes < LOW_SLOT_BYTES {
            warnings.push(SettingProblem {
                key: "memory_cap",
                message: share(&format!(
                    "less than {}: on a busy network records will be shed",
                    mib(LOW_SLOT_BYTES)
                )),
            });
        }
        if self.interval > self.window {
            warnings.push(SettingProblem {
                key: "interval",
                message: format!(
                    "{} is longer than the window, {}: the traffic of the {} before each \
                     window is never evaluated",
                    human(self.interval),
                    human(self.window),
                    human(self.interval - self.window)
                ),
            });
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(text: &str) -> Config {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn the_defaults_pass_without_a_warning() {
        assert_eq!(Config::default().check(), Ok(Vec::new()));
    }

    #[test]
    fn windows_that_no_clock_reaches_are_refused() {
        for window in ["100000000000y", "18446744073709551615s", "366days"] {
            let problem = with(&format!("window = {window:?}")).check().unwrap_err();
            assert_eq!(problem.key, "window", "{window}");
            assert!(problem.message.contains("longest window"), "{problem}");
        }
        assert!(with("window = \"1year\"\ninterval = \"1day\"")
            .check()
            .is_ok());
    }

    #[test]
    fn slots_shorter_than_a_second_are_refused_with_the_way_out() {
        for (window, interval) in [("4h", "1ns"), ("4h", "999ms"), ("4h", "7m 13s 1ms")] {
            let text = format!("window = {window:?}\ninterval = {interval:?}");
            let problem = with(&text).check().unwrap_err();
            assert_eq!(problem.key, "interval", "{text}");
            assert!(
                problem.message.contains("multiple of the interval"),
                "{problem}"
            );
        }
    }

    #[test]
    fn a_cap_too_small_for_the_slots_is_refused_and_a_low_one_warned_about() {
        // 4 h of 1 s slots: 14 420 tables sharing 1 GiB, 74 KiB each.
        let problem = with("interval = \"1s\"").check().unwrap_err();
        assert_eq!(problem.key, "memory_cap");
        assert!(problem.message.contains("raise memory_cap"), "{problem}");
        // 4 h of one-minute slots: 4.2 MiB each, accepted; of 30 s slots, 2.1 MiB, warned.
        assert_eq!(with("interval = \"1m\"").check(), Ok(Vec::new()));
        let warnings = with("interval = \"30s\"").check().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.contains("will be shed"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn an_interval_past_the_window_is_warned_about() {
        let warnings = with("window = \"1h\"\ninterval = \"3h\"").check().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].key, "interval");
        assert!(
            warnings[0].message.contains("2h before each"),
            "{}",
            warnings[0]
        );
    }
}
