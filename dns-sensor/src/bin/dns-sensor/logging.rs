//! The log facade's one backend, chosen at start: the journal's native protocol when
//! stderr is the journal (a systemd service), so each line keeps its priority
//! (`journalctl -p err` lists errors) and its source; stderr otherwise.
//!
//! `RUST_LOG` sets the level (`error`, `warn`, `info` (default), `debug`, `trace`) in both
//! cases; on stderr it also takes env_logger's per-module filters.

/// Installs the logger; call once, first thing.
pub(crate) fn init() {
    if systemd_journal_logger::connected_to_journal() {
        if let Ok(journal) = systemd_journal_logger::JournalLog::new() {
            let journal = journal.with_syslog_identifier("dns-sensor".to_owned());
            if journal.install().is_ok() {
                log::set_max_level(level_from_env());
                return;
            }
        }
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
}

/// The level `RUST_LOG` names (its last plain level word), `info` without one.
fn level_from_env() -> log::LevelFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| {
            spec.split(',')
                .filter(|part| !part.contains('='))
                .filter_map(|part| part.trim().parse().ok())
                .next_back()
        })
        .unwrap_or(log::LevelFilter::Info)
}
