//! `cargo xtask refresh-psl`: replaces `dns-sensor/data/public_suffix_list.dat` and
//! rewrites the provenance note beside it.
//!
//! The list comes from the PyPI package `publicsuffixlist`, which ships a dated copy
//! in every release: PyPI is reachable from build machines where publicsuffix.org
//! may not be, and its versions make the choice of list reproducible.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// Where the list sits inside the package's wheel.
const LIST_IN_WHEEL: &str = "publicsuffixlist/public_suffix_list.dat";

/// Options of `refresh-psl`.
#[derive(clap::Args)]
pub struct RefreshPsl {
    /// Take the list from this file instead of PyPI.
    #[arg(long, value_name = "FILE", conflicts_with = "version")]
    from: Option<PathBuf>,
    /// The `publicsuffixlist` release to take it from (default: the newest).
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
}

/// Runs the subcommand.
pub fn refresh(args: &RefreshPsl) -> Result<()> {
    let (text, source) = match &args.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            (
                text,
                format!(
                    "the file `{}`, via `cargo xtask refresh-psl --from`",
                    path.display()
                ),
            )
        }
        None => from_pypi(args.version.as_deref())?,
    };
    dns_sensor::domain::check_public_suffix_list(&text)
        .context("the new list is not usable; nothing was changed")?;

    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = xtask_dir
        .parent()
        .unwrap_or(xtask_dir)
        .join("dns-sensor/data");
    let list_path = data.join("public_suffix_list.dat");
    std::fs::write(&list_path, &text)
        .with_context(|| format!("writing {}", list_path.display()))?;
    let note = provenance(&text, &source, &sha256(&list_path));
    let note_path = data.join("README.md");
    std::fs::write(&note_path, note).with_context(|| format!("writing {}", note_path.display()))?;
    println!(
        "{}: {} ({})",
        list_path.display(),
        header_value(&text, "VERSION").unwrap_or("no VERSION line"),
        source
    );
    Ok(())
}

/// Downloads the package's wheel with pip and reads the list out of it.
/// Returns the list and a description of where it came from.
fn from_pypi(version: Option<&str>) -> Result<(String, String)> {
    let dir = std::env::temp_dir().join(format!("xtask-psl-{}", std::process::id()));
    // A fresh directory, so the one wheel in it is the one just downloaded.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let requirement = match version {
        Some(v) => format!("publicsuffixlist=={v}"),
        None => "publicsuffixlist".to_string(),
    };
    let result = download_and_extract(&dir, &requirement);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn download_and_extract(dir: &Path, requirement: &str) -> Result<(String, String)> {
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
        ])
        .arg(dir)
        .arg(requirement))?;
    let wheel = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip downloaded no wheel")?;
    let wheel_name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .context("wheel name is not UTF-8")?
        .to_string();
    // Wheel names are NAME-VERSION-TAGS.whl.
    let version = wheel_name.split('-').nth(1).unwrap_or("?").to_string();
    // A wheel is a zip; Python (needed for pip anyway) reads it, so no unzip tool.
    let out = run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(LIST_IN_WHEEL))?;
    let text = String::from_utf8(out).context("the list is not UTF-8")?;
    let source = format!(
        "PyPI package `publicsuffixlist` {version}, file `{LIST_IN_WHEEL}` inside its wheel \
         `{wheel_name}`, via `pip download --no-deps publicsuffixlist=={version}`"
    );
    Ok((text, source))
}

/// Runs a command, returning its stdout; fails with its stderr.
fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// The file's SHA-256 from `sha256sum`, or a note that it is unavailable (the hash is
/// for the reader's checking, not needed to build).
fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .ok()
        .and_then(|out| {
            let out = String::from_utf8(out).ok()?;
            out.split_whitespace().next().map(|h| format!("`{h}`"))
        })
        .unwrap_or_else(|| "(sha256sum not available)".to_string())
}

/// The value of a `// KEY: value` line in the list's header.
fn header_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines()
        .take_while(|l| !l.contains("===BEGIN"))
        .find_map(|l| l.strip_prefix("// ")?.strip_prefix(key)?.strip_prefix(": "))
        .map(str::trim)
}

/// The provenance note, `dns-sensor/data/README.md`.
fn provenance(text: &str, source: &str, sha256: &str) -> String {
    let line = |key| {
        header_value(text, key).map_or_else(
            || "(none in the file)".to_string(),
            |v| format!("`// {key}: {v}`"),
        )
    };
    format!(
        "# data/

## public_suffix_list.dat

The Mozilla Public Suffix List, embedded in the binary by `src/domain.rs`
(`include_str!`). License: MPL-2.0 (see the file's header).

| | |
|---|---|
| taken from | {source} |
| retrieved | {today} (UTC) by `cargo xtask refresh-psl` |
| list version | {version} |
| list commit | {commit} |
| sha256 | {sha256} |

Refresh with `cargo xtask refresh-psl` (newest `publicsuffixlist` from PyPI via pip,
or `--version V` for a given one) or `cargo xtask refresh-psl --from FILE` (a list you
downloaded yourself); either way the list is checked to parse and this file is
rewritten.
",
        today = today_utc(),
        version = line("VERSION"),
        commit = line("COMMIT"),
    )
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn header_lines() {
        let text = "// x\n// VERSION: 2026-10-22_08-36-41_UTC\n// COMMIT: abc\n// ===BEGIN ICANN DOMAINS===\n// VERSION: no\n";
        assert_eq!(
            header_value(text, "VERSION"),
            Some("2026-10-22_08-36-41_UTC")
        );
        assert_eq!(header_value(text, "COMMIT"), Some("abc"));
        assert_eq!(header_value(text, "NOPE"), None);
        let note = provenance(text, "somewhere", "`h`");
        assert!(note.contains("| list version | `// VERSION: 2026-10-22_08-36-41_UTC` |"));
        assert!(note.contains("| taken from | somewhere |"));
    }
}
