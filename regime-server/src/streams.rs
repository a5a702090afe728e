//! Standard input and output, pipes and devices as the files of `regime detect` and
//! `regime evaluate` (`--input -`, `--input <(zcat bars.csv.gz)`, `--output -`,
//! `--output /dev/null`).
//!
//! An input is read more than once: its first bytes tell its format, a CSV's first and last
//! rows whether it holds several symbols, and a file that turns out to hold a second symbol
//! is read again from the start. A stream can be read once, so it is copied to a temporary
//! file first ([`SpooledInput`]), which the readers then open under the name given — every
//! message names `<stdin>` or the pipe's path, never the copy. An output is written to a
//! temporary file and copied to the stream once complete ([`StreamedOutput`]): a run that
//! fails writes nothing there, as it leaves no file behind.

use crate::io::{Format, IoError};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The name standard input is read under (`--input -`).
pub const STDIN_NAME: &str = "<stdin>";

/// Inputs copied aside, by the name they are read under.
static SPOOLED: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// Whether `path` names something to be read or written as a stream: `-`, or an existing
/// path that is not a regular file or a directory (a pipe, a character device, a socket).
fn is_stream(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The file to open for `path`: its copy when it was spooled, else itself.
pub fn resolve(path: &Path) -> PathBuf {
    let spooled = SPOOLED.lock().unwrap_or_else(|e| e.into_inner());
    spooled
        .iter()
        .find(|(name, _)| name == path)
        .map_or_else(|| path.to_path_buf(), |(_, copy)| copy.clone())
}

/// A temporary file for a stream, named with the suffix of `format` (none when unknown, so
/// that the reader tells the format by the content).
fn temp_file(format: Option<Format>) -> std::io::Result<tempfile::NamedTempFile> {
    let suffix = match format {
        Some(Format::Csv) => ".csv",
        Some(Format::CsvGz) => ".csv.gz",
        Some(Format::Parquet) => ".parquet",
        Some(Format::Arrow) => ".arrow",
        None => "",
    };
    tempfile::Builder::new()
        .prefix(".regime-stream-")
        .suffix(suffix)
        .tempfile()
}

/// An input read through a temporary copy while this lives (a file is read in place).
#[derive(Debug)]
pub struct SpooledInput {
    name: PathBuf,
    copy: Option<tempfile::TempPath>,
}

impl SpooledInput {
    /// Copy `path` aside when it is a stream (standard input for `-`); the copy is removed
    /// when this is dropped.
    pub fn new(path: &Path) -> Result<Self, IoError> {
        if !is_stream(path) {
            return Ok(SpooledInput {
                name: path.to_path_buf(),
                copy: None,
            });
        }
        let stdin = path.as_os_str() == "-";
        let name = if stdin {
            PathBuf::from(STDIN_NAME)
        } else {
            path.to_path_buf()
        };
        let failed = |e: std::io::Error| IoError::Format {
            path: name.clone(),
            message: format!(
                "copying it to a temporary file in {} (TMPDIR): {e}",
                std::env::temp_dir().display()
            ),
        };
        if stdin && std::io::stdin().is_terminal() {
            return Err(IoError::Format {
                path: name,
                message: "standard input is a terminal: pipe the bars in (`cat bars.csv | \
                          regime detect --input - ...`) or name a file"
                    .into(),
            });
        }
        let mut tmp = temp_file(Format::of(path).ok()).map_err(failed)?;
        let copied = if stdin {
            std::io::copy(&mut std::io::stdin().lock(), tmp.as_file_mut())
        } else {
            std::fs::File::open(path).and_then(|mut f| std::io::copy(&mut f, tmp.as_file_mut()))
        };
        copied
            .and_then(|_| tmp.as_file_mut().flush())
            .map_err(failed)?;
        let copy = tmp.into_temp_path();
        SPOOLED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.clone(), copy.to_path_buf()));
        Ok(SpooledInput {
            name,
            copy: Some(copy),
        })
    }

    /// The name to read it under: the path given, or [`STDIN_NAME`].
    pub fn path(&self) -> &Path {
        &self.name
    }
}

impl Drop for SpooledInput {
    fn drop(&mut self) {
        if let Some(copy) = &self.copy {
            let mut spooled = SPOOLED.lock().unwrap_or_else(|e| e.into_inner());
            spooled.retain(|(_, c)| c.as_path() != &**copy);
        }
    }
}

/// Where an output goes: written in place (a file), or through a temporary file copied to
/// a stream once complete.
#[derive(Debug)]
pub struct StreamedOutput {
    dest: PathBuf,
    tmp: Option<tempfile::TempPath>,
}

impl StreamedOutput {
    /// For `-` (standard output) and an existing pipe or device, a temporary file in the
    /// format the name's extension gives, else CSV; for any other path, the path itself.
    pub fn new(path: &Path) -> Result<Self, IoError> {
        Self::new_as(path, Format::Csv)
    }

    /// [`StreamedOutput::new`], a stream's temporary file in `default` where the name gives no
    /// format (`regime export --format parquet --output -`).
    pub fn new_as(path: &Path, default: Format) -> Result<Self, IoError> {
        if !is_stream(path) {
            return Ok(StreamedOutput {
                dest: path.to_path_buf(),
                tmp: None,
            });
        }
        let format = Format::of(path).unwrap_or(default);
        let tmp = temp_file(Some(format))
            .map_err(|e| IoError::Write {
                path: path.to_path_buf(),
                message: format!("a temporary file for the output: {e}"),
            })?
            .into_temp_path();
        Ok(StreamedOutput {
            dest: path.to_path_buf(),
            tmp: Some(tmp),
        })
    }

    /// Whether the output goes to a stream (through a temporary file).
    pub fn is_stream(&self) -> bool {
        self.tmp.is_some()
    }

    /// The file to write.
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.dest)
    }

    /// The name of the destination for messages: `<stdout>` for `-`.
    pub fn shown(&self) -> String {
        if self.dest.as_os_str() == "-" {
            "<stdout>".into()
        } else {
            self.dest.display().to_string()
        }
    }

    /// Copy the finished output to its stream (nothing to do for a file). A reader that
    /// has gone (`| head`) ends the copy quietly.
    pub fn deliver(self) -> Result<(), IoError> {
        let Some(tmp) = &self.tmp else {
            return Ok(());
        };
        let failed = |e: std::io::Error| IoError::Write {
            path: PathBuf::from(self.shown()),
            message: e.to_string(),
        };
        let mut f = std::fs::File::open(tmp).map_err(failed)?;
        let copied = if self.dest.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut f, &mut out).and_then(|_| out.flush())
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.dest)
                .and_then(|mut d| std::io::copy(&mut f, &mut d).and_then(|_| d.flush()))
        };
        match copied {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map(|_| ()).map_err(failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_read_through_a_copy_under_its_own_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("bars.csv");
        std::fs::write(&file, "timestamp,close\n2024-01-02,1\n").expect("write");
        // a file is read in place
        let f = SpooledInput::new(&file).expect("file");
        assert_eq!(f.path(), file.as_path());
        assert_eq!(resolve(&file), file);
        // a pipe (a FIFO: what `<(…)` hands over) is copied, and read by its name
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"timestamp,close\n2024-01-03,2\n"))
        };
        let p = SpooledInput::new(&fifo).expect("fifo");
        writer.join().expect("join").expect("written");
        assert_eq!(p.path(), fifo.as_path());
        let copy = resolve(&fifo);
        assert_ne!(copy, fifo);
        assert_eq!(
            std::fs::read_to_string(&copy).expect("copy"),
            "timestamp,close\n2024-01-03,2\n"
        );
        drop(p);
        assert_eq!(resolve(&fifo), fifo, "forgotten once dropped");
        assert!(!copy.exists(), "the copy is removed");
        // an output to a device goes through a temporary CSV file, one to a file in place
        let o = StreamedOutput::new(Path::new("/dev/null")).expect("devnull");
        assert!(
            o.path().to_string_lossy().ends_with(".csv"),
            "{:?}",
            o.path()
        );
        std::fs::write(o.path(), "x\n").expect("write");
        let tmp = o.path().to_path_buf();
        o.deliver().expect("delivered");
        assert!(!tmp.exists());
        let out = dir.path().join("out.parquet");
        assert_eq!(
            StreamedOutput::new(&out).expect("file").path(),
            out.as_path()
        );
    }
}
