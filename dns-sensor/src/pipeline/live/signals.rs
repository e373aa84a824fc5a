//! The signals a live run answers: SIGINT and SIGTERM stop it, SIGHUP reloads its
//! settings and reopens its outputs' files.

use std::sync::atomic::{AtomicBool, Ordering};

static SIGNALLED: AtomicBool = AtomicBool::new(false);
static HUNG_UP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_: libc::c_int) {
    HUNG_UP.store(true, Ordering::Relaxed);
}

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction with a handler that only stores to an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Installs SIGINT and SIGTERM handlers that set the returned flag: pass it to
/// [`run`](super::run) for a clean shutdown (program detached, rings freed, last slot
/// evaluated).
pub fn stop_on_signals() -> std::io::Result<&'static AtomicBool> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        install(sig, on_signal)?;
    }
    Ok(&SIGNALLED)
}

/// Installs a SIGHUP handler (`systemctl reload`, logrotate's `postrotate`) that sets
/// the returned flag instead of ending the process: pass it to the run, which then
/// reads its settings again and reopens its outputs' files.
pub fn reload_on_hangup() -> std::io::Result<&'static AtomicBool> {
    install(libc::SIGHUP, on_hangup)?;
    Ok(&HUNG_UP)
}
