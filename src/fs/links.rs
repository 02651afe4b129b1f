//! Symbolic links: `read_link` and the per-OS `symlink` calls of `tokio::fs`.
//!
//! Each is one path call on the pool (no descriptor, so no permit), like `stat`.
//! Errors name the path the call was about: the link for `read_link` and for
//! creating a link (the original may be any text; a dangling link is not an error).
//! Unix has one `symlink`; Windows distinguishes links to files and to directories,
//! so it has `symlink_file` and `symlink_dir`, as in std and tokio.

use std::path::{Path, PathBuf};

use super::{path_call, Fs, FsFuture};

impl Fs {
    /// The target of the symbolic link `path`, as stored in the link
    /// (`readlink(2)`); not resolved, and possibly relative or dangling.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-read-link-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// std::os::unix::fs::symlink("target.txt", dir.join("link"))?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// let target = aopen::block_on(pool.fs().read_link(dir.join("link")))?;
    /// assert_eq!(target, std::path::Path::new("target.txt")); // as written, dangling
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_link(&self, path: impl AsRef<Path>) -> FsFuture<PathBuf> {
        path_call(self.pool.clone(), "readlink", path.as_ref(), 0, |path| {
            std::fs::read_link(path)
        })
    }

    /// Makes `link` a symbolic link to `original` (`symlink(2)`). Unix only; Windows
    /// has `symlink_file` and `symlink_dir`. An error names `link`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-handle-symlink-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(2).build()?;
    /// aopen::block_on(pool.fs().symlink("nowhere", dir.join("link")))?;
    /// assert_eq!(std::fs::read_link(dir.join("link"))?, std::path::Path::new("nowhere"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn symlink(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
        let original = original.as_ref().to_path_buf();
        path_call(
            self.pool.clone(),
            "symlink",
            link.as_ref(),
            0,
            move |link| std::os::unix::fs::symlink(&original, link),
        )
    }

    /// Makes `link` a symbolic link to the file `original`. Windows only; Unix has
    /// [`Fs::symlink`]. An error names `link`.
    #[cfg(windows)]
    pub fn symlink_file(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
        let original = original.as_ref().to_path_buf();
        path_call(
            self.pool.clone(),
            "symlink",
            link.as_ref(),
            0,
            move |link| std::os::windows::fs::symlink_file(&original, link),
        )
    }

    /// Makes `link` a symbolic link to the directory `original`. Windows only; Unix
    /// has `symlink`. An error names `link`.
    #[cfg(windows)]
    pub fn symlink_dir(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
        let original = original.as_ref().to_path_buf();
        path_call(
            self.pool.clone(),
            "symlink",
            link.as_ref(),
            0,
            move |link| std::os::windows::fs::symlink_dir(&original, link),
        )
    }
}

/// The target of the symbolic link `path`, as stored in the link (`readlink(2)`).
///
/// Runs on the global pool; see [`Fs`] to pick another.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-read-link-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a.txt"), "x")?;
/// aopen::block_on(async {
///     aopen::fs::symlink("a.txt", dir.join("link")).await?;
///     assert_eq!(aopen::fs::read_link(dir.join("link")).await?, std::path::Path::new("a.txt"));
///     // Not a link: `InvalidInput`, and the message names the path.
///     let err = aopen::fs::read_link(dir.join("a.txt")).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
///     assert!(err.to_string().contains("a.txt"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_link(path: impl AsRef<Path>) -> FsFuture<PathBuf> {
    Fs::default().read_link(path)
}

/// Makes `link` a symbolic link to `original` (`symlink(2)`). Unix only.
///
/// Runs on the global pool; see [`Fs`] to pick another.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-fs-symlink-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # std::fs::write(dir.join("a.txt"), "hello")?;
/// aopen::block_on(async {
///     aopen::fs::symlink(dir.join("a.txt"), dir.join("link")).await?;
///     assert_eq!(aopen::fs::read_to_string(dir.join("link")).await?, "hello");
///     // The name is taken: `AlreadyExists`, naming the link.
///     let err = aopen::fs::symlink("other", dir.join("link")).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
///     assert!(err.to_string().contains("link"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
pub fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
    Fs::default().symlink(original, link)
}

/// Makes `link` a symbolic link to the file `original`. Windows only.
///
/// Runs on the global pool; see [`Fs`] to pick another.
#[cfg(windows)]
pub fn symlink_file(original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
    Fs::default().symlink_file(original, link)
}

/// Makes `link` a symbolic link to the directory `original`. Windows only.
///
/// Runs on the global pool; see [`Fs`] to pick another.
#[cfg(windows)]
pub fn symlink_dir(original: impl AsRef<Path>, link: impl AsRef<Path>) -> FsFuture<()> {
    Fs::default().symlink_dir(original, link)
}
