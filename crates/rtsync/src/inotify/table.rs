//! The watch table of inotify-tools, reproduced for output compatibility.
//!
//! inotify-tools names each watch by the path string it was added with (directories get a
//! trailing `/`), prints events as that string plus the entry name, and renames by string
//! prefix. Its quirks — a directory moved out of the tree keeps its subdirectories' watches
//! under their old names, a second watch on the same inode keeps the first name — show up in
//! its output, so the drop-ins keep the same table rather than the exact map of
//! [`rtsync_watch::Watcher`]. The raw descriptor and decoder come from `rtsync_watch`.
//!
//! One deliberate difference: when a directory is watched because it just appeared, the
//! entries found while scanning it are reported as `CREATE` events, because they were created
//! before the watch existed and the kernel will never report them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rtsync_watch::{dirscan, mask};
use rtsync_watch::{Inotify, RawEvent, Wd};

use super::common::{eprint_bytes, strerror, EventFilter};

/// Counters kept per watch and in total, for `inotifywatch`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Count per single event bit, indexed by bit position.
    pub by_bit: [u32; 14],
    /// Every recorded event.
    pub total: u32,
}

impl Stats {
    /// The counter for an event bit, or the total for `0`.
    pub fn get(&self, bit: u32) -> u32 {
        if bit == 0 {
            self.total
        } else {
            self.by_bit[bit.trailing_zeros() as usize]
        }
    }

    fn record(&mut self, m: u32) {
        for i in 0..14 {
            if m & (1 << i) != 0 {
                self.by_bit[i] = self.by_bit[i].wrapping_add(1);
            }
        }
        self.total = self.total.wrapping_add(1);
    }
}

/// One watch: the name it is printed under (shared with the by-name index).
#[derive(Debug)]
pub struct Watch {
    /// The path string, `/`-terminated for directories.
    pub filename: Rc<[u8]>,
}

/// An entry found while scanning a directory that was just watched.
struct Found {
    dir: Vec<u8>,
    name: Vec<u8>,
    is_dir: bool,
}

/// The table plus the event source behind it.
pub struct Table {
    ino: Inotify,
    /// Watches by descriptor (the first name wins when one inode is watched twice).
    pub by_wd: BTreeMap<Wd, Watch>,
    by_name: BTreeMap<Rc<[u8]>, Wd>,
    /// Counters per descriptor, only kept for `inotifywatch`.
    pub stats: HashMap<Wd, Stats>,
    /// Events read but not yet handed out; the flag marks events made up from a scan.
    queue: VecDeque<(RawEvent, bool)>,
    /// `--exclude` / `--include`.
    pub filter: Option<EventFilter>,
    /// Whether to count events (inotifywatch).
    pub collect_stats: bool,
    /// Entries reported by a re-check whose kernel `CREATE` may still be queued; cleared once
    /// the kernel queue has been read empty.
    dedupe: HashSet<(Wd, Vec<u8>)>,
    /// Totals over all watches.
    pub totals: Stats,
}

/// An errno value.
pub type Errno = i32;

/// What changes when an entry is added to or removed from a directory: its change time (with
/// nanoseconds, which recent kernels keep fine-grained once someone has looked) and link count.
fn change_stamp(path: &OsStr) -> Option<(i64, i64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ctime(), m.ctime_nsec(), m.nlink()))
}

/// Whether the directory path `next` (ending in `/`) is one of the `@` exclusions, compared
/// as strings the way the original does.
fn is_excluded(next: &[u8], exclude: &[Vec<u8>]) -> bool {
    exclude.iter().any(|ex| {
        let ex = ex.strip_suffix(b"/").unwrap_or(ex);
        next.len() == ex.len() + 1 && next.starts_with(ex)
    })
}

fn errno_of(e: &io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Table {
    /// Creates the inotify instance.
    pub fn new() -> io::Result<Self> {
        Ok(Table {
            ino: Inotify::new()?,
            by_wd: BTreeMap::new(),
            by_name: BTreeMap::new(),
            stats: HashMap::new(),
            queue: VecDeque::new(),
            filter: None,
            collect_stats: false,
            dedupe: HashSet::new(),
            totals: Stats::default(),
        })
    }

    /// Number of watches, counted by name as the originals do.
    pub fn num_watches(&self) -> usize {
        self.by_name.len()
    }

    /// The name a descriptor is printed under; empty when unknown.
    pub fn filename(&self, wd: Wd) -> &[u8] {
        self.by_wd.get(&wd).map(|w| &*w.filename).unwrap_or(b"")
    }

    /// The descriptor watching exactly `name`.
    pub fn wd_from_filename(&self, name: &[u8]) -> Option<Wd> {
        self.by_name.get(name).copied()
    }

    /// `<watch name><entry name>/` for an event about a directory entry, else `None`.
    pub fn dirpath_from_event(&self, ev: &RawEvent) -> Option<Vec<u8>> {
        let f = self.filename(ev.wd);
        if f.is_empty() || ev.mask & mask::ISDIR == 0 {
            return None;
        }
        let mut p = f.to_vec();
        if let Some(n) = &ev.name {
            p.extend_from_slice(n.as_bytes());
        }
        p.push(b'/');
        Some(p)
    }

    /// Watches one path with `events`.
    pub fn watch_file(&mut self, path: &[u8], events: u32) -> Result<(), Errno> {
        let wd = self
            .ino
            .add_watch_bytes(path, events)
            .map_err(|e| errno_of(&e))?;
        let dir = super::common::isdir(path);
        self.record_watch(wd, path, dir);
        Ok(())
    }

    /// Files a new watch under `path` (`/` appended for a directory). A descriptor already
    /// known keeps its first name, and a name already known keeps its first descriptor.
    fn record_watch(&mut self, wd: Wd, path: &[u8], dir: bool) {
        let mut name = path.to_vec();
        if dir && !name.ends_with(b"/") {
            name.push(b'/');
        }
        let name: Rc<[u8]> = name.into();
        self.by_wd.entry(wd).or_insert_with(|| Watch {
            filename: name.clone(),
        });
        self.by_name.entry(name).or_insert(wd);
    }

    /// Watches `path` and every directory below it (children first, as the originals do),
    /// skipping directories named in `exclude`. With `found`, records every entry read.
    fn watch_tree(
        &mut self,
        path: &[u8],
        events: u32,
        exclude: &[Vec<u8>],
        mut found: Option<&mut Vec<Found>>,
    ) -> Result<(), Errno> {
        let os = OsString::from_vec(path.to_vec());
        // For a directory that just appeared, note its change time before reading it: if it
        // differs once the watch is in place, something was added in between (see `recheck`).
        let before = found.as_ref().and_then(|_| change_stamp(&os));
        let dir = match std::fs::read_dir(&os) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return self.watch_file(path, events)
            }
            Err(e) => return Err(errno_of(&e)),
        };
        let mut my_path = path.to_vec();
        if !my_path.ends_with(b"/") {
            my_path.push(b'/');
        }
        for entry in dir {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => return Err(errno_of(&e)),
            };
            let name = entry.file_name();
            let mut next = my_path.clone();
            next.extend_from_slice(name.as_bytes());
            let meta = match std::fs::symlink_metadata(OsString::from_vec(next.clone())) {
                Ok(m) => m,
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => continue,
                Err(e) => return Err(errno_of(&e)),
            };
            let is_dir = meta.file_type().is_dir();
            if let Some(f) = found.as_deref_mut() {
                f.push(Found {
                    dir: my_path.clone(),
                    name: name.as_bytes().to_vec(),
                    is_dir,
                });
            }
            if !is_dir {
                continue;
            }
            next.push(b'/');
            if is_excluded(&next, exclude) {
                continue;
            }
            if let Err(e) = self.watch_tree(&next, events, exclude, found.as_deref_mut()) {
                if !matches!(e, libc::EACCES | libc::ENOENT | libc::ELOOP) {
                    return Err(e);
                }
            }
        }
        self.watch_file(&my_path, events)?;
        if let Some(f) = found {
            if before.is_none() || change_stamp(&os) != before {
                self.recheck(&my_path, events, f);
            }
        }
        Ok(())
    }

    /// A new directory changed between being read and being watched: list it again and report
    /// what the first reading missed. This second reading happens under the watch, so it shows
    /// as events, and entries it finds may also be reported by the kernel; those duplicates are
    /// dropped (see `dedupe`). Only races make this run.
    fn recheck(&mut self, my_path: &[u8], events: u32, found: &mut Vec<Found>) {
        let Some(wd) = self.wd_from_filename(my_path) else {
            return;
        };
        let known: HashSet<Vec<u8>> = found
            .iter()
            .filter(|f| f.dir == my_path)
            .map(|f| f.name.clone())
            .collect();
        let Ok(listing) = std::fs::read_dir(OsStr::from_bytes(my_path)) else {
            return;
        };
        for entry in listing.flatten() {
            let name = entry.file_name().as_bytes().to_vec();
            if known.contains(&name) {
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            self.dedupe.insert((wd, name.clone()));
            found.push(Found {
                dir: my_path.to_vec(),
                name: name.clone(),
                is_dir,
            });
            if is_dir {
                let mut next = my_path.to_vec();
                next.extend_from_slice(&name);
                next.push(b'/');
                if self.wd_from_filename(&next).is_none() {
                    let _ = self.watch_tree(&next, events, &[], Some(found));
                }
            }
        }
    }

    /// Watches `path` recursively (the initial watches).
    ///
    /// While nothing is watched yet, nobody can see how the tree is read, so the first tree is
    /// walked the fast way (see [`Table::walk_fast`]); later ones are read exactly as the
    /// originals read them, because the reads show up as events on what is already watched.
    pub fn watch_recursively(
        &mut self,
        path: &[u8],
        events: u32,
        exclude: &[Vec<u8>],
    ) -> Result<(), Errno> {
        if !self.by_wd.is_empty() {
            return self.watch_tree(path, events, exclude, None);
        }
        let os = OsString::from_vec(path.to_vec());
        let fd = match dirscan::open_dir(None, &os, true) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return self.watch_file(path, events)
            }
            Err(e) => return Err(errno_of(&e)),
        };
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        // The leaf shortcut skips opening directories, which only root is sure to be allowed to
        // do anyway; for others an unreadable directory must stay unwatched, as in the original.
        let leaf_dev = (root && dirscan::counts_subdir_links(fd.as_raw_fd()))
            .then(|| dirscan::lstat_at(Some(fd.as_raw_fd()), OsStr::new(".")).ok())
            .flatten()
            .map(|st| st.st_dev);
        let mut my_path = path.to_vec();
        if !my_path.ends_with(b"/") {
            my_path.push(b'/');
        }
        self.walk_fast(fd, my_path, events, exclude, leaf_dev)
    }

    /// The initial recursive walk with the same result as [`Table::watch_tree`] (the same
    /// watches, added in the same order, so descriptors match), but reading entry types from
    /// `getdents64` instead of an `lstat` per entry, opening subdirectories relative to their
    /// parent, and not opening directories that have no subdirectories at all.
    fn walk_fast(
        &mut self,
        fd: std::os::fd::OwnedFd,
        my_path: Vec<u8>,
        events: u32,
        exclude: &[Vec<u8>],
        leaf_dev: Option<u64>,
    ) -> Result<(), Errno> {
        let entries = dirscan::read_entries(&fd).map_err(|e| errno_of(&e))?;
        for entry in entries {
            let name = entry.name.as_bytes();
            let is_dir = match entry.kind {
                dirscan::Kind::Dir => true,
                dirscan::Kind::Other => false,
                dirscan::Kind::Unknown => {
                    match dirscan::lstat_at(Some(fd.as_raw_fd()), &entry.name) {
                        Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                        Err(e) if e.raw_os_error() == Some(libc::EACCES) => false,
                        Err(e) => return Err(errno_of(&e)),
                    }
                }
            };
            if !is_dir {
                continue;
            }
            let mut next = my_path.clone();
            next.extend_from_slice(name);
            next.push(b'/');
            if is_excluded(&next, exclude) {
                continue;
            }
            let leaf = leaf_dev.is_some_and(|dev| {
                dirscan::is_leaf_dir(fd.as_raw_fd(), &entry.name, dev).is_some()
            });
            let result = if leaf {
                self.ino
                    .add_watch_bytes(&next, events)
                    .map(|wd| self.record_watch(wd, &next, true))
                    .map_err(|e| errno_of(&e))
            } else {
                match dirscan::open_dir(Some(fd.as_raw_fd()), &entry.name, false) {
                    Ok(child) => self.walk_fast(child, next, events, exclude, leaf_dev),
                    Err(e) => Err(errno_of(&e)),
                }
            };
            if let Err(e) = result {
                if !matches!(e, libc::EACCES | libc::ENOENT | libc::ELOOP) {
                    return Err(e);
                }
            }
        }
        // Closed before the watch is added, as the original does.
        drop(fd);
        let wd = self
            .ino
            .add_watch_bytes(&my_path, events)
            .map_err(|e| errno_of(&e))?;
        self.record_watch(wd, &my_path, true);
        Ok(())
    }

    /// Watches a directory that just appeared, recursively; with `report`, queues a made-up
    /// `CREATE` for every entry found in it: those were created before any watch could see them.
    pub fn watch_new_dir(&mut self, path: &[u8], events: u32, report: bool) -> Result<(), Errno> {
        let mut found = Vec::new();
        let result = self.watch_tree(path, events, &[], report.then_some(&mut found));
        let made_up: Vec<(RawEvent, bool)> = found
            .into_iter()
            .filter_map(|f| {
                let wd = self.wd_from_filename(&f.dir)?;
                let bits = mask::CREATE | if f.is_dir { mask::ISDIR } else { 0 };
                (events & mask::CREATE != 0).then(|| {
                    (
                        RawEvent {
                            wd,
                            mask: bits,
                            cookie: 0,
                            name: Some(OsString::from_vec(f.name)),
                        },
                        true,
                    )
                })
            })
            .collect();
        for ev in made_up.into_iter().rev() {
            self.queue.push_front(ev);
        }
        result
    }

    /// Stops watching the watch named `name` (a directory moved out of the tree).
    pub fn remove_by_filename(&mut self, name: &[u8]) -> Result<(), Errno> {
        let Some(&wd) = self.by_name.get(name) else {
            return Ok(());
        };
        if let Err(e) = self.ino.rm_watch(wd) {
            // The originals print the C return value (-1) as if it were an errno.
            eprint_bytes(&[
                b"Failed to remove watch on ",
                name,
                b": ",
                strerror(-1).as_bytes(),
                b"\n",
            ]);
            let _ = e;
            return Err(-1);
        }
        self.by_name.remove(name);
        if self.by_wd.get(&wd).is_some_and(|w| &*w.filename == name) {
            self.by_wd.remove(&wd);
            self.stats.remove(&wd);
        }
        Ok(())
    }

    /// Renames every watch whose name starts with `old` to start with `new` instead.
    pub fn replace_filename(&mut self, old: &[u8], new: &[u8]) {
        if old.is_empty() || new.is_empty() {
            return;
        }
        use std::ops::Bound;
        let hits: Vec<(Rc<[u8]>, Wd)> = self
            .by_name
            .range::<[u8], _>((Bound::Included(old), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(old))
            .map(|(k, &wd)| (k.clone(), wd))
            .collect();
        for (name, wd) in hits {
            if &*name == new {
                continue;
            }
            let mut renamed = new.to_vec();
            renamed.extend_from_slice(&name[old.len()..]);
            let renamed: Rc<[u8]> = renamed.into();
            self.by_name.remove(&name);
            self.by_name.entry(renamed.clone()).or_insert(wd);
            if let Some(w) = self.by_wd.get_mut(&wd) {
                if w.filename == name {
                    w.filename = renamed;
                }
            }
        }
    }

    /// The next event that passes the filter, waiting up to `timeout` (`None`: forever) when
    /// nothing is queued; `before_wait` runs each time it is about to wait. `Ok(None)` is a
    /// timeout. The flag marks made-up events.
    pub fn next_event(
        &mut self,
        timeout: Option<Duration>,
        before_wait: &mut dyn FnMut(),
    ) -> Result<Option<(RawEvent, bool)>, Errno> {
        loop {
            let Some((ev, made_up)) = self.queue.pop_front() else {
                if !self.dedupe.is_empty() && !self.ino.wait(Some(Duration::ZERO)).unwrap_or(true) {
                    // Everything queued before the re-check has been read.
                    self.dedupe.clear();
                }
                before_wait();
                if !self.fill(timeout)? {
                    return Ok(None);
                }
                continue;
            };
            if !made_up && ev.mask & mask::CREATE != 0 && !self.dedupe.is_empty() {
                if let Some(n) = &ev.name {
                    if self.dedupe.remove(&(ev.wd, n.as_bytes().to_vec())) {
                        continue;
                    }
                }
            }
            if let Some(filter) = &self.filter {
                let mut full = self.filename(ev.wd).to_vec();
                if let Some(n) = &ev.name {
                    full.extend_from_slice(n.as_bytes());
                }
                if !filter.keeps(&full) {
                    continue;
                }
            }
            if self.collect_stats && self.by_wd.contains_key(&ev.wd) {
                self.stats.entry(ev.wd).or_default().record(ev.mask);
                self.totals.record(ev.mask);
            }
            return Ok(Some((ev, made_up)));
        }
    }

    /// Waits for and reads events into the queue; false on timeout.
    fn fill(&mut self, timeout: Option<Duration>) -> Result<bool, Errno> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // poll(2) takes milliseconds in an int; long timeouts are waited in slices.
            let slice = left.map(|l| l.min(Duration::from_secs(86_400)));
            let ready = self.ino.wait(slice).map_err(|e| errno_of(&e))?;
            if !ready {
                if left.is_some_and(|l| l <= slice.unwrap_or_default()) {
                    return Ok(false);
                }
                continue;
            }
            let batch = self.ino.read_available().map_err(|e| errno_of(&e))?;
            if batch.is_empty() {
                continue;
            }
            self.queue.extend(batch.into_iter().map(|e| (e, false)));
            return Ok(true);
        }
    }
}
