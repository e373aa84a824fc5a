//! Files the operator names: read whole under a size limit (the settings, whitelists,
//! the mail credentials and CA certificates), so that `/dev/zero`, a FIFO or a capture
//! named by mistake gets an error that says so rather than a read without end; and
//! shown escaped ([`shown`]), since a capture handed over by someone else may carry
//! a name written to attack the terminal or the log that prints it.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Limit of a settings file: a hundred times the shipped one's size.
pub(crate) const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Limit of a whitelist file: two million entries of 30 bytes.
pub(crate) const MAX_WHITELIST_BYTES: u64 = 64 << 20;

/// Limit of a PEM file of CA certificates (Debian's whole bundle is about 220 KB).
pub(crate) const MAX_CERTIFICATES_BYTES: u64 = 4 << 20;

/// Reads the file at `path`, refusing one of more than `limit` bytes with an
/// [`io::ErrorKind::FileTooLarge`] error that names the limit.
pub(crate) fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_all_limited(std::fs::File::open(path)?, limit)
}

/// [`read_limited`] for a file already open (its permissions checked first).
pub(crate) fn read_all_limited(file: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file of exactly `limit` bytes from a longer one.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {}, the most read of such a file", size(limit)),
        ));
    }
    Ok(bytes)
}

/// `limit` as people write it: in MiB or KiB when it is a whole number of them.
fn size(limit: u64) -> String {
    match limit {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// UTF-8 text from `bytes`, or the error saying it is not.
pub(crate) fn text(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// [`read_limited`], as UTF-8 text.
pub(crate) fn read_text_limited(path: &Path, limit: u64) -> io::Result<String> {
    text(read_limited(path, limit)?)
}

/// Writes `bytes` as `dir/name` so that a crash leaves the file before or after, never
/// a part: into `name.tmp` first, synced, renamed over `name`, the directory synced.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// `path` as errors and logs show it: printable characters as they are (any script),
/// a backslash doubled, and every control character (CR, LF, ESC, DEL, C1), format
/// character such as a bidirectional override, or byte that is not UTF-8 as `\xNN`
/// or `\u{NNNN}`.
pub fn shown(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c if c.is_control() || is_format(c) => {
                    out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)))
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Invisible characters that reorder or hide text on a terminal (Unicode's format
/// characters most used so: bidirectional marks and overrides, zero-width ones).
fn is_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn names_written_to_attack_a_terminal_are_shown_escaped() {
        let shown_of = |bytes: &[u8]| shown(Path::new(OsStr::from_bytes(bytes)));
        assert_eq!(shown_of(b"/srv/caps/a.pcap"), "/srv/caps/a.pcap");
        assert_eq!(shown_of("/srv/día 1.pcap".as_bytes()), "/srv/día 1.pcap");
        assert_eq!(
            shown_of(b"cut\r\n[ERROR] forged\x1b[2J\x7f.pcap"),
            "cut\\x0d\\x0a[ERROR] forged\\x1b[2J\\x7f.pcap"
        );
        assert_eq!(shown_of(b"a\\x0a\xff\xfe"), "a\\\\x0a\\xff\\xfe");
        assert_eq!(
            shown_of("x\u{202e}gpj.pcap".as_bytes()),
            "x\\u{202e}gpj.pcap"
        );
        assert_eq!(shown_of("c1\u{9b}".as_bytes()), "c1\\u{009b}");
    }

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let error = read_limited(Path::new("/dev/zero"), 4096).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(error.to_string().contains("larger than 4 KiB"), "{error}");
    }

    #[test]
    fn a_file_of_the_limit_is_read_whole() {
        let path = std::env::temp_dir().join(format!("dns-sensor-files-{}", std::process::id()));
        std::fs::write(&path, [b'x'; 100]).unwrap();
        assert_eq!(read_limited(&path, 100).unwrap().len(), 100);
        assert_eq!(
            read_limited(&path, 99).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        std::fs::write(&path, b"\xff\xfe").unwrap();
        assert_eq!(
            read_text_limited(&path, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::remove_file(&path).unwrap();
    }
}
