//! The `tokio::fs::File` constructors beyond std's `open`/`create`:
//! [`File::options`] and [`File::create_new`].
//!
//! Both are spelled through [`OpenOptions`], so they keep its rules: the permit is
//! taken before `open(2)`, an open whose future was dropped is closed on the pool,
//! and an error names the path.

use std::path::Path;

use super::{File, FsFuture, OpenOptions};

impl File {
    /// A blank [`OpenOptions`], like `std::fs::File::options` and tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-options-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # std::fs::write(dir.join("log.txt"), "a")?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::options().append(true).open(dir.join("log.txt")).await?;
    ///     file.write_all(b"b").await?;
    ///     file.close().await
    /// })?;
    /// assert_eq!(std::fs::read_to_string(dir.join("log.txt"))?, "ab");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Creates a new file for reading and writing; `AlreadyExists` if `path` exists
    /// (`O_CREAT | O_EXCL`: no race with another creator), like
    /// `std::fs::File::create_new` and tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-file-create-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let mut file = aopen::File::create_new(dir.join("lock")).await?;
    ///     file.write_all(b"1").await?;
    ///     file.close().await?;
    ///     let err = aopen::File::create_new(dir.join("lock")).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    ///     assert!(err.to_string().contains("lock"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(path: impl AsRef<Path>) -> FsFuture<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }
}
