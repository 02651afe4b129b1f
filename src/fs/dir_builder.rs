//! `DirBuilder`: `tokio::fs::DirBuilder` (and `std::fs::DirBuilder`) on the pool.
//!
//! It collects settings (recursive, the Unix mode, the pool) and makes one pool
//! trip per [`DirBuilder::create`] with std's builder; creating a directory holds no
//! descriptor, so no permit is taken. An error names the path.

use std::fmt;
use std::path::Path;

use super::{path_call, FsFuture};
use crate::pool::Pool;

/// Creates directories with settings, like `tokio::fs::DirBuilder`.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use aopen::fs::DirBuilder;
///
/// aopen::block_on(async {
///     DirBuilder::new().recursive(true).create(dir.join("a/b/c")).await?;
///     assert!(dir.join("a/b/c").is_dir());
///     // Not recursive: a missing parent is `NotFound`, naming the path.
///     let err = DirBuilder::new().create(dir.join("x/y")).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     assert!(err.to_string().contains("x/y"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct DirBuilder {
    recursive: bool,
    /// Unix permission bits for new directories (before the umask); `None`: 0o777.
    #[cfg(unix)]
    mode: Option<u32>,
    /// `None`: the global pool, resolved when `create` runs.
    pool: Option<Pool>,
}

impl DirBuilder {
    /// A builder with default settings: not recursive, mode 0o777 (before the umask),
    /// the global pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(aopen::fs::DirBuilder::new().create(dir.join("sub")))?;
    /// assert!(dir.join("sub").is_dir());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> DirBuilder {
        DirBuilder::default()
    }

    /// Whether missing parents are created too (and an existing directory is fine),
    /// as `create_dir_all` does.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-recursive-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let mut builder = aopen::fs::DirBuilder::new();
    /// builder.recursive(true);
    /// aopen::block_on(builder.create(dir.join("a/b")))?;
    /// aopen::block_on(builder.create(dir.join("a/b")))?; // exists already: fine
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recursive(&mut self, recursive: bool) -> &mut Self {
        self.recursive = recursive;
        self
    }

    /// The permission bits of the directories created (the process umask still
    /// applies). Unix only.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-mode-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// aopen::block_on(aopen::fs::DirBuilder::new().mode(0o700).create(dir.join("private")))?;
    /// let mode = std::fs::metadata(dir.join("private"))?.permissions().mode();
    /// assert_eq!(mode & 0o777, 0o700);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = Some(mode);
        self
    }

    /// Runs `create` on `pool` instead of the global pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-pool-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pool = aopen::Pool::builder().max_threads(1).build()?;
    /// aopen::block_on(aopen::fs::DirBuilder::new().pool(&pool).create(dir.join("sub")))?;
    /// assert_eq!(pool.stats().threads_alive, 1); // the mkdir ran on this pool
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pool(&mut self, pool: &Pool) -> &mut Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Creates the directory `path` with these settings (`mkdir(2)`, once per
    /// missing component when recursive).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("aopen-doc-dir-builder-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// aopen::block_on(async {
    ///     let builder = aopen::fs::DirBuilder::new();
    ///     builder.create(dir.join("once")).await?;
    ///     let again = builder.create(dir.join("once")).await.unwrap_err();
    ///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&self, path: impl AsRef<Path>) -> FsFuture<()> {
        let mut std_builder = std::fs::DirBuilder::new();
        std_builder.recursive(self.recursive);
        #[cfg(unix)]
        if let Some(mode) = self.mode {
            std::os::unix::fs::DirBuilderExt::mode(&mut std_builder, mode);
        }
        let operation = if self.recursive { "mkdir -p" } else { "mkdir" };
        path_call(
            self.pool.clone(),
            operation,
            path.as_ref(),
            0,
            move |path| std_builder.create(path),
        )
    }
}

impl fmt::Debug for DirBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("DirBuilder");
        out.field("recursive", &self.recursive);
        #[cfg(unix)]
        out.field("mode", &self.mode);
        out.field("pool", &self.pool).finish()
    }
}
