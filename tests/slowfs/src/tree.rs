//! The generated tree: its shape, names, inode numbers, attributes and content.
//!
//! Nothing here is stored per file. A directory is its index in breadth-first order
//! (the root is 0), a file is (its directory, its index in it), and every attribute is a
//! function of the inode number, so a tree of a million files costs a few words.
//!
//! Invariants:
//! - directory `k` has inode `1 + k` (the root is FUSE's inode 1);
//! - the files of directory `k >= 1` have inodes `files_start + (k - 1) * files_per_dir + j`;
//! - the hung directory and the extra files come after the last file;
//! - the same [`Tree`] with the same plants gives the same names, inodes, sizes, mtimes
//!   and bytes in every process, so two mounts differ by exactly their plants.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The name of the directory under the root whose requests are never answered
/// (when [`crate::Builder::hung_dir`] is on).
pub const HUNG_DIR: &str = "hung";
/// Modification times start here: 2020-01-01T00:00:00Z, in seconds since the epoch.
pub const MTIME_BASE_SECS: u64 = 1_577_836_800;
/// Modification times spread over one year after [`MTIME_BASE_SECS`], whole seconds.
pub const MTIME_SPREAD_SECS: u64 = 365 * 24 * 3600;
/// A planted size difference adds this many bytes to the file.
pub const PLANTED_SIZE_DELTA: u64 = 1;
/// A planted mtime difference moves the mtime this much later.
pub const PLANTED_MTIME_SHIFT: Duration = Duration::from_secs(1);
/// `st_blksize` of every file.
pub const BLOCK_SIZE: u32 = 4096;
/// `st_size` of every directory.
pub const DIR_SIZE: u64 = 4096;
/// Default smallest file size: one 4 KiB read always fits.
pub const DEFAULT_SIZE_MIN: u64 = 4096;
/// Default spread of file sizes above [`DEFAULT_SIZE_MIN`].
pub const DEFAULT_SIZE_SPREAD: u64 = 4096;
/// Inode number of the root (FUSE's fixed `FUSE_ROOT_ID`).
pub const ROOT_INO: u64 = 1;

/// The shape of the generated tree.
///
/// The root holds `fanout` directories; each directory above `depth` holds `fanout`
/// more; every directory except the root holds `files_per_dir` files. Names are
/// zero-padded so that name order is index order: `d000` … `d999` for a fanout of
/// 1,000, `f0000` … `f9999` for 10,000 files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// Subdirectories of each directory above the deepest level (≥ 1).
    pub fanout: u64,
    /// Levels of directories below the root (≥ 1): 1 is a flat `root/dNNN/fNNN` tree.
    pub depth: u32,
    /// Regular files in each directory except the root.
    pub files_per_dir: u64,
    /// The smallest file size, in bytes.
    pub size_min: u64,
    /// File sizes are `size_min + (a hash of the inode) % (size_spread + 1)`.
    pub size_spread: u64,
}

impl Default for Tree {
    /// 10 directories of 100 files, 4–8 KiB each.
    fn default() -> Self {
        Tree::flat(10, 100)
    }
}

impl Tree {
    /// `dirs` directories under the root, `files` files in each.
    pub fn flat(dirs: u64, files: u64) -> Tree {
        Tree {
            fanout: dirs,
            depth: 1,
            files_per_dir: files,
            size_min: DEFAULT_SIZE_MIN,
            size_spread: DEFAULT_SIZE_SPREAD,
        }
    }

    /// Directories in the tree, the root included.
    pub fn dir_count(&self) -> u64 {
        let mut total = 0u64;
        let mut level = 1u64;
        for _ in 0..=self.depth {
            total += level;
            level *= self.fanout;
        }
        total
    }

    /// Regular files in the tree, before plants.
    pub fn file_count(&self) -> u64 {
        (self.dir_count() - 1) * self.files_per_dir
    }

    /// The directories that hold files (every one except the root), by index.
    pub fn file_dirs(&self) -> std::ops::Range<u64> {
        1..self.dir_count()
    }

    /// The first directory index of the deepest level: directories from here on have no
    /// subdirectories.
    fn leaf_start(&self) -> u64 {
        self.dir_count() - self.fanout.pow(self.depth)
    }

    fn files_start(&self) -> u64 {
        ROOT_INO + self.dir_count()
    }

    /// The first inode number after the generated files.
    fn specials_start(&self) -> u64 {
        self.files_start() + self.file_count()
    }

    fn has_subdirs(&self, dir: u64) -> bool {
        dir < self.leaf_start()
    }

    fn parent(dir: u64, fanout: u64) -> u64 {
        (dir - 1) / fanout
    }

    /// The name of directory `dir` (≥ 1) inside its parent.
    pub fn dir_name(&self, dir: u64) -> String {
        format!("d{:0w$}", (dir - 1) % self.fanout, w = digits(self.fanout))
    }

    /// The name of file `file` of any directory.
    pub fn file_name(&self, file: u64) -> String {
        format!("f{:0w$}", file, w = digits(self.files_per_dir))
    }

    /// The path of directory `dir` relative to the mount's root (empty for the root).
    pub fn dir_path(&self, dir: u64) -> PathBuf {
        let mut names = Vec::new();
        let mut k = dir;
        while k != 0 {
            names.push(self.dir_name(k));
            k = Tree::parent(k, self.fanout);
        }
        names.iter().rev().collect()
    }

    /// The path of file `file` of directory `dir`, relative to the mount's root.
    pub fn file_path(&self, dir: u64, file: u64) -> PathBuf {
        self.dir_path(dir).join(self.file_name(file))
    }

    /// The inode number of directory `dir`.
    pub fn dir_ino(&self, dir: u64) -> u64 {
        ROOT_INO + dir
    }

    /// The inode number of file `file` of directory `dir` (≥ 1); `st_ino` on the mount.
    pub fn file_ino(&self, dir: u64, file: u64) -> u64 {
        self.files_start() + (dir - 1) * self.files_per_dir + file
    }

    /// The size of a generated file, before plants.
    pub fn file_size(&self, ino: u64) -> u64 {
        self.size_min + mix(ino) % (self.size_spread + 1)
    }

    /// The modification time of any inode, before plants: whole seconds.
    pub fn mtime(ino: u64) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_secs(MTIME_BASE_SECS + mix(ino ^ MTIME_SALT) % MTIME_SPREAD_SECS)
    }

    fn child_dir(&self, dir: u64, name: &str) -> Option<u64> {
        if !self.has_subdirs(dir) {
            return None;
        }
        let n = parse_index(name, 'd', self.fanout)?;
        Some(dir * self.fanout + 1 + n)
    }

    fn child_file(&self, dir: u64, name: &str) -> Option<u64> {
        if dir == 0 {
            return None;
        }
        parse_index(name, 'f', self.files_per_dir)
    }
}

/// Salt so that a file's mtime and size are not the same hash.
const MTIME_SALT: u64 = 0x6d74_696d_6573_616c;
/// Salt of the content hash.
const CONTENT_SALT: u64 = 0x636f_6e74_656e_7473;

/// Decimal digits needed to write every index below `count` (at least one).
fn digits(count: u64) -> usize {
    let mut width = 1;
    let mut limit = 10;
    while count > limit {
        width += 1;
        limit = limit.saturating_mul(10);
    }
    width
}

/// `name` as `prefix` followed by exactly the zero-padded index the tree would print,
/// below `count`.
fn parse_index(name: &str, prefix: char, count: u64) -> Option<u64> {
    let rest = name.strip_prefix(prefix)?;
    if rest.len() != digits(count) || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = rest.parse().ok()?;
    (n < count).then_some(n)
}

/// splitmix64: a cheap, well-mixed hash of a 64-bit number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fill `buf` with the bytes of file `ino` from `offset` on: what a read on the mount
/// returns (up to the file's size). Deterministic, different per file and per offset.
pub fn fill_content(ino: u64, offset: u64, buf: &mut [u8]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        let word = mix(ino.wrapping_mul(CONTENT_SALT) ^ (at >> 3));
        *byte = (word >> ((at & 7) * 8)) as u8;
    }
}

/// The `len` bytes of file `ino` from `offset` on (see [`fill_content`]).
pub fn content(ino: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill_content(ino, offset, &mut buf);
    buf
}

/// A difference planted in one mount, so that two mounts of the same [`Tree`] differ by
/// exactly their plants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plant {
    /// File `file` of directory `dir` is [`PLANTED_SIZE_DELTA`] bytes longer.
    Size {
        /// Directory index (≥ 1).
        dir: u64,
        /// File index in it.
        file: u64,
    },
    /// File `file` of directory `dir` has an mtime [`PLANTED_MTIME_SHIFT`] later.
    Mtime {
        /// Directory index (≥ 1).
        dir: u64,
        /// File index in it.
        file: u64,
    },
    /// File `file` of directory `dir` does not exist.
    Missing {
        /// Directory index (≥ 1).
        dir: u64,
        /// File index in it.
        file: u64,
    },
    /// Directory `dir` (0 is the root) holds one more regular file, called `name`.
    Extra {
        /// Directory index (0 is the root).
        dir: u64,
        /// The file's name: not one the tree generates, no `/`.
        name: String,
    },
}

impl Plant {
    /// The path the plant concerns, relative to the mount's root.
    pub fn path(&self, tree: &Tree) -> PathBuf {
        match self {
            Plant::Size { dir, file }
            | Plant::Mtime { dir, file }
            | Plant::Missing { dir, file } => tree.file_path(*dir, *file),
            Plant::Extra { dir, name } => tree.dir_path(*dir).join(name),
        }
    }
}

/// What a planted file looks like.
#[derive(Clone, Copy, Debug, Default)]
struct Changed {
    size: bool,
    mtime: bool,
    missing: bool,
}

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// Directory index `k` (the root is 0).
    Dir(u64),
    /// A generated file.
    File,
    /// The directory whose requests are never answered.
    Hung,
    /// Extra file number `n` (an index into the plants' extras).
    Extra(usize),
}

/// Attributes as the server reports them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attr {
    pub(crate) ino: u64,
    pub(crate) is_dir: bool,
    pub(crate) size: u64,
    pub(crate) mtime: SystemTime,
}

/// One entry of a directory listing.
pub(crate) struct Listed {
    pub(crate) ino: u64,
    pub(crate) is_dir: bool,
    pub(crate) name: String,
}

/// A [`Tree`] with its plants and hung directory: everything the server answers from.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) tree: Tree,
    pub(crate) hung: bool,
    changed: HashMap<u64, Changed>,
    /// (directory index, name) of each extra file; its inode is `extras_start + n`.
    extras: Vec<(u64, String)>,
}

impl Served {
    pub(crate) fn new(tree: Tree, hung: bool, plants: &[Plant]) -> Result<Served, String> {
        if tree.fanout == 0 || tree.depth == 0 {
            return Err(format!(
                "a tree needs fanout ≥ 1 and depth ≥ 1, got {tree:?}"
            ));
        }
        // u64 inode arithmetic must not overflow: checked once here.
        let dirs = (0..=tree.depth)
            .try_fold((0u64, 1u64), |(total, level), _| {
                Some((total.checked_add(level)?, level.checked_mul(tree.fanout)?))
            })
            .map(|(total, _)| total);
        let fits = dirs
            .and_then(|d| (d - 1).checked_mul(tree.files_per_dir))
            .and_then(|f| f.checked_add(dirs? + 2 + plants.len() as u64));
        if fits.is_none() || tree.size_spread == u64::MAX {
            return Err(format!("tree {tree:?} has more inodes than fit in 64 bits"));
        }
        let mut served = Served {
            tree,
            hung,
            changed: HashMap::new(),
            extras: Vec::new(),
        };
        for plant in plants {
            served.plant(plant)?;
        }
        Ok(served)
    }

    fn plant(&mut self, plant: &Plant) -> Result<(), String> {
        let tree = &self.tree;
        let check_file = |dir: u64, file: u64| {
            if dir == 0 || dir >= tree.dir_count() || file >= tree.files_per_dir {
                Err(format!("plant {plant:?}: no such file in tree {tree:?}"))
            } else {
                Ok(tree.file_ino(dir, file))
            }
        };
        match plant {
            Plant::Size { dir, file } => {
                self.changed
                    .entry(check_file(*dir, *file)?)
                    .or_default()
                    .size = true
            }
            Plant::Mtime { dir, file } => {
                self.changed
                    .entry(check_file(*dir, *file)?)
                    .or_default()
                    .mtime = true
            }
            Plant::Missing { dir, file } => {
                self.changed
                    .entry(check_file(*dir, *file)?)
                    .or_default()
                    .missing = true
            }
            Plant::Extra { dir, name } => {
                let taken = name.is_empty()
                    || name == "."
                    || name == ".."
                    || name.contains('/')
                    || name.contains('\0')
                    || (*dir == 0 && name == HUNG_DIR)
                    || *dir >= tree.dir_count()
                    || tree.child_dir(*dir, name).is_some()
                    || tree.child_file(*dir, name).is_some()
                    || self.extras.iter().any(|(d, n)| d == dir && n == name);
                if taken {
                    return Err(format!(
                        "plant {plant:?}: the name is taken or invalid in tree {tree:?}"
                    ));
                }
                self.extras.push((*dir, name.clone()));
            }
        }
        Ok(())
    }

    fn hung_ino(&self) -> u64 {
        self.tree.specials_start()
    }

    fn extras_start(&self) -> u64 {
        self.tree.specials_start() + 1
    }

    /// What inode `ino` is, if it exists.
    pub(crate) fn node(&self, ino: u64) -> Option<Node> {
        let tree = &self.tree;
        if (ROOT_INO..tree.files_start()).contains(&ino) {
            return Some(Node::Dir(ino - ROOT_INO));
        }
        if (tree.files_start()..tree.specials_start()).contains(&ino) {
            let missing = self.changed.get(&ino).is_some_and(|c| c.missing);
            return (!missing).then_some(Node::File);
        }
        if ino == self.hung_ino() {
            return self.hung.then_some(Node::Hung);
        }
        let n = ino.checked_sub(self.extras_start())?;
        let n = usize::try_from(n).ok()?;
        (n < self.extras.len()).then_some(Node::Extra(n))
    }

    /// The directory (by index) holding inode `ino`; `None` for the root.
    pub(crate) fn dir_of(&self, ino: u64) -> Option<u64> {
        match self.node(ino)? {
            Node::Dir(0) => None,
            Node::Dir(k) => Some(Tree::parent(k, self.tree.fanout)),
            Node::File => Some(1 + (ino - self.tree.files_start()) / self.tree.files_per_dir),
            Node::Hung => Some(0),
            Node::Extra(n) => Some(self.extras[n].0),
        }
    }

    /// Whether requests on `ino` are never answered.
    pub(crate) fn is_hung(&self, ino: u64) -> bool {
        self.hung && ino == self.hung_ino()
    }

    /// The attributes of `ino`, if it exists.
    pub(crate) fn attr(&self, ino: u64) -> Option<Attr> {
        let mut attr = match self.node(ino)? {
            Node::Dir(_) | Node::Hung => Attr {
                ino,
                is_dir: true,
                size: DIR_SIZE,
                mtime: Tree::mtime(ino),
            },
            Node::File | Node::Extra(_) => Attr {
                ino,
                is_dir: false,
                size: self.tree.file_size(ino),
                mtime: Tree::mtime(ino),
            },
        };
        if let Some(changed) = self.changed.get(&ino) {
            if changed.size {
                attr.size += PLANTED_SIZE_DELTA;
            }
            if changed.mtime {
                attr.mtime += PLANTED_MTIME_SHIFT;
            }
        }
        Some(attr)
    }

    /// The inode named `name` in directory inode `parent`, if it exists.
    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Option<u64> {
        let Some(Node::Dir(dir)) = self.node(parent) else {
            return None;
        };
        let name = name.to_str()?;
        let ino = if let Some(k) = self.tree.child_dir(dir, name) {
            self.tree.dir_ino(k)
        } else if let Some(j) = self.tree.child_file(dir, name) {
            self.tree.file_ino(dir, j)
        } else if dir == 0 && self.hung && name == HUNG_DIR {
            self.hung_ino()
        } else {
            let n = self
                .extras
                .iter()
                .position(|(d, n)| *d == dir && n == name)?;
            self.extras_start() + n as u64
        };
        // A missing plant does not exist.
        self.node(ino).map(|_| ino)
    }

    /// Entries of directory inode `ino` from position `from` on (positions are stable;
    /// a missing file leaves a gap), with the position after each; `None` if `ino` is
    /// not a listable directory.
    pub(crate) fn list(
        &self,
        ino: u64,
        from: u64,
    ) -> Option<impl Iterator<Item = (u64, Listed)> + '_> {
        let Some(Node::Dir(dir)) = self.node(ino) else {
            return None;
        };
        let tree = &self.tree;
        let parent_ino = if dir == 0 {
            ROOT_INO
        } else {
            tree.dir_ino(Tree::parent(dir, tree.fanout))
        };
        let subdirs = if tree.has_subdirs(dir) {
            tree.fanout
        } else {
            0
        };
        let files = if dir == 0 { 0 } else { tree.files_per_dir };
        let extras: Vec<usize> = (0..self.extras.len())
            .filter(|&n| self.extras[n].0 == dir)
            .collect();
        let hung = u64::from(dir == 0 && self.hung);
        // Positions: ".", "..", subdirectories, files, extras, the hung directory.
        let specials = 2;
        let total = specials + subdirs + files + extras.len() as u64 + hung;
        Some((from..total).filter_map(move |pos| {
            let entry = if pos == 0 {
                Listed {
                    ino,
                    is_dir: true,
                    name: ".".into(),
                }
            } else if pos == 1 {
                Listed {
                    ino: parent_ino,
                    is_dir: true,
                    name: "..".into(),
                }
            } else if pos < specials + subdirs {
                let k = dir * tree.fanout + 1 + (pos - specials);
                Listed {
                    ino: tree.dir_ino(k),
                    is_dir: true,
                    name: tree.dir_name(k),
                }
            } else if pos < specials + subdirs + files {
                let j = pos - specials - subdirs;
                let file_ino = tree.file_ino(dir, j);
                self.node(file_ino)?;
                Listed {
                    ino: file_ino,
                    is_dir: false,
                    name: tree.file_name(j),
                }
            } else if pos < specials + subdirs + files + extras.len() as u64 {
                let n = extras[(pos - specials - subdirs - files) as usize];
                Listed {
                    ino: self.extras_start() + n as u64,
                    is_dir: false,
                    name: self.extras[n].1.clone(),
                }
            } else {
                Listed {
                    ino: self.hung_ino(),
                    is_dir: true,
                    name: HUNG_DIR.into(),
                }
            };
            Some((pos + 1, entry))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_inodes_agree_with_lookup_and_listing() {
        let tree = Tree {
            fanout: 3,
            depth: 2,
            files_per_dir: 12,
            size_min: 10,
            size_spread: 5,
        };
        assert_eq!(tree.dir_count(), 1 + 3 + 9);
        assert_eq!(tree.file_count(), 12 * 12);
        let served = Served::new(tree.clone(), true, &[]).unwrap();
        let mut seen_files = 0;
        let mut stack = vec![ROOT_INO];
        while let Some(dir_ino) = stack.pop() {
            for (_, entry) in served.list(dir_ino, 0).unwrap().skip(2) {
                assert_eq!(
                    served.lookup(dir_ino, OsStr::new(&entry.name)),
                    Some(entry.ino),
                    "{}",
                    entry.name
                );
                if entry.is_dir && entry.name != HUNG_DIR {
                    stack.push(entry.ino);
                } else if !entry.is_dir {
                    seen_files += 1;
                    let size = served.attr(entry.ino).unwrap().size;
                    assert!((10..=15).contains(&size));
                }
            }
        }
        assert_eq!(seen_files, tree.file_count());
        // Paths resolve to the inodes the tree names.
        let path = tree.file_path(5, 7);
        assert_eq!(path, PathBuf::from("d0/d1/f07"));
        let d0 = served.lookup(ROOT_INO, OsStr::new("d0")).unwrap();
        let d01 = served.lookup(d0, OsStr::new("d1")).unwrap();
        assert_eq!(
            served.lookup(d01, OsStr::new("f07")),
            Some(tree.file_ino(5, 7))
        );
        assert_eq!(served.dir_of(tree.file_ino(5, 7)), Some(5));
        assert_eq!(served.dir_of(d01), Some(1));
        assert_eq!(served.dir_of(ROOT_INO), None);
        // Not quite the tree's names.
        assert_eq!(served.lookup(ROOT_INO, OsStr::new("d00")), None);
        assert_eq!(served.lookup(d01, OsStr::new("f12")), None);
        assert_eq!(served.lookup(d01, OsStr::new("f7")), None);
    }

    #[test]
    fn plants_change_exactly_their_file() {
        let tree = Tree::flat(4, 5);
        let plants = [
            Plant::Size { dir: 1, file: 0 },
            Plant::Mtime { dir: 2, file: 1 },
            Plant::Missing { dir: 3, file: 2 },
            Plant::Extra {
                dir: 4,
                name: "new".into(),
            },
        ];
        let a = Served::new(tree.clone(), false, &[]).unwrap();
        let b = Served::new(tree.clone(), false, &plants).unwrap();
        let mut differ = Vec::new();
        for dir in tree.file_dirs() {
            let names = |s: &Served| -> Vec<(String, u64, SystemTime)> {
                s.list(tree.dir_ino(dir), 0)
                    .unwrap()
                    .skip(2)
                    .map(|(_, e)| {
                        let attr = s.attr(e.ino).unwrap();
                        (e.name, attr.size, attr.mtime)
                    })
                    .collect()
            };
            let (na, nb) = (names(&a), names(&b));
            for entry in na.iter().filter(|e| !nb.contains(e)) {
                differ.push(format!("{dir}/{} only in a or changed", entry.0));
            }
            for entry in nb.iter().filter(|e| !na.contains(e)) {
                differ.push(format!("{dir}/{} only in b or changed", entry.0));
            }
        }
        assert_eq!(
            differ,
            [
                "1/f0 only in a or changed",
                "1/f0 only in b or changed",
                "2/f1 only in a or changed",
                "2/f1 only in b or changed",
                "3/f2 only in a or changed",
                "4/new only in b or changed",
            ]
        );
        assert!(Served::new(
            tree.clone(),
            false,
            &[Plant::Extra {
                dir: 1,
                name: "f3".into()
            }]
        )
        .is_err());
        assert!(Served::new(tree, false, &[Plant::Size { dir: 0, file: 0 }]).is_err());
    }

    #[test]
    fn content_depends_on_inode_and_offset_only() {
        let whole = content(42, 0, 64);
        assert_eq!(content(42, 13, 20), whole[13..33]);
        assert_ne!(content(43, 0, 64), whole);
    }

    #[test]
    fn a_million_files_cost_nothing() {
        let tree = Tree::flat(1000, 1000);
        let served = Served::new(tree.clone(), false, &[]).unwrap();
        assert_eq!(tree.file_count(), 1_000_000);
        let last = tree.file_ino(1000, 999);
        assert_eq!(served.node(last), Some(Node::File));
        assert_eq!(served.node(last + 1), None);
        assert_eq!(tree.file_path(1000, 999), PathBuf::from("d999/f999"));
    }
}
