//! Errors that name what they were about.
//!
//! `std::fs` errors say "No such file or directory" and leave the caller to remember
//! which path that was; in a tree walk of a million files that is no help. Every
//! error this module returns for a path-taking call is an [`io::Error`] of the same
//! [`kind`](io::Error::kind) as the system's, carrying a [`PathError`] that names the
//! operation and the path, and keeps the original error (with its OS error code),
//! reachable with [`PathError::os_error`] and [`os_error`].
//!
//! An error either displays its cause or returns it from
//! [`source`](std::error::Error::source), never both (the Rust API guidelines'
//! C-GOOD-ERR, and what `anyhow`'s chain printer expects): a `PathError`'s message
//! already says what the system said, so its `source()` is `None`. A report that
//! prints the whole chain says the OS message once.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The payload of the errors this crate returns for a path: what was being done, to
/// which path, and what the system said.
///
/// Reach it with `err.get_ref().and_then(|e| e.downcast_ref::<PathError>())`, or use
/// [`os_error`] for the errno.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-path-error-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::fs::PathError;
///
/// let err = aopen::block_on(aopen::fs::metadata(dir.join("missing"))).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound); // the system's kind, kept
/// let what = err.get_ref().and_then(|e| e.downcast_ref::<PathError>()).unwrap();
/// assert_eq!(what.operation(), "stat");
/// assert_eq!(what.path(), dir.join("missing"));
/// assert_eq!(what.os_error().raw_os_error(), Some(libc::ENOENT));
/// // The message says all three: stat "/tmp/.../missing": No such file or directory ...
/// assert!(err.to_string().starts_with("stat "));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PathError {
    operation: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl PathError {
    /// What was being done (`"open"`, `"stat"`, `"close"`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-path-error-operation-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use aopen::fs::PathError;
    ///
    /// let err = aopen::block_on(aopen::fs::read_dir(dir.join("missing"))).unwrap_err();
    /// let what = err.get_ref().and_then(|e| e.downcast_ref::<PathError>()).unwrap();
    /// assert_eq!(what.operation(), "open directory");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The path it was done to.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-path-error-path-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use aopen::fs::PathError;
    ///
    /// let rename = aopen::fs::rename(dir.join("missing"), dir.join("new"));
    /// let err = aopen::block_on(rename).unwrap_err();
    /// let what = err.get_ref().and_then(|e| e.downcast_ref::<PathError>()).unwrap();
    /// assert_eq!(what.path(), dir.join("missing")); // a rename names its source
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error the system (or std) reported.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-path-error-os-error-{}", std::process::id()));
    /// # std::fs::create_dir_all(dir.join("full"))?;
    /// # std::fs::write(dir.join("full/file"), "x")?;
    /// use aopen::fs::PathError;
    ///
    /// let err = aopen::block_on(aopen::fs::remove_dir(dir.join("full"))).unwrap_err();
    /// let what = err.get_ref().and_then(|e| e.downcast_ref::<PathError>()).unwrap();
    /// assert_eq!(what.os_error().raw_os_error(), Some(libc::ENOTEMPTY));
    /// assert_eq!(what.os_error().kind(), err.kind()); // the outer error keeps its kind
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn os_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}: {}",
            self.operation,
            self.path.display().to_string(),
            self.source
        )?;
        // EMFILE, ENFILE, ERROR_TOO_MANY_OPEN_FILES: say what to do about it.
        match self
            .source
            .raw_os_error()
            .and_then(crate::sys::exhaustion_hint)
        {
            Some(hint) => f.write_str(hint),
            None => Ok(()),
        }
    }
}

/// `source()` is `None`: the message already includes the system's (see the module
/// docs); [`PathError::os_error`] gives the error itself.
impl Error for PathError {}

/// Wraps `source` so that its message names `operation` and `path`; the kind stays.
///
/// An error that names its path already (a [`PathError`] from a step inside the
/// call, such as the close of a copy's target) is returned as it is: it says more
/// precisely what failed, and wrapping it again would hide its OS error from
/// [`os_error`].
pub(crate) fn with_path(operation: &'static str, path: &Path, source: io::Error) -> io::Error {
    if source
        .get_ref()
        .is_some_and(|inner| inner.is::<PathError>())
    {
        return source;
    }
    let kind = source.kind();
    io::Error::new(
        kind,
        PathError {
            operation,
            path: path.to_path_buf(),
            source,
        },
    )
}

/// The OS error code of an error this crate returned, looking through [`PathError`].
///
/// Use it where code written for `std::fs` calls `err.raw_os_error()`: that returns
/// `None` for this crate's path errors, whose OS error sits inside the [`PathError`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-os-error-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let err = aopen::block_on(aopen::fs::create_dir(&dir)).unwrap_err();
/// assert_eq!(err.raw_os_error(), None); // wrapped in a PathError
/// assert_eq!(aopen::fs::os_error(&err), Some(libc::EEXIST));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<PathError>())
            .and_then(|path_error| path_error.source.raw_os_error())
    })
}

/// Runs `call` again while it fails with `EINTR`, as POSIX asks of callers of
/// `read(2)`, `write(2)` and `opendir(3)` interrupted before they did anything.
pub(crate) fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The report an `anyhow`-style printer makes: each error of the chain, then its
    /// `source()`, and so on.
    fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
        let mut lines = vec![err.to_string()];
        let mut next = err.source();
        while let Some(cause) = next {
            lines.push(cause.to_string());
            next = cause.source();
        }
        lines
    }

    #[test]
    fn a_chain_says_the_os_message_once() {
        let os = io::Error::from_raw_os_error(libc::ENOENT);
        let os_text = os.to_string();
        let err = with_path("stat", Path::new("/nowhere/x"), os);
        let report = chain(&err).join("\nCaused by: ");
        assert_eq!(report.matches(&os_text).count(), 1, "{report}");
        assert!(report.contains("stat \"/nowhere/x\""), "{report}");
        assert_eq!(os_error(&err), Some(libc::ENOENT));
    }
}
