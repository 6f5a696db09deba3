//! The worker's share of `--reload`: noticing that a file its code came
//! from (or a `--reload-extra-file`) changed. The kernel says so through
//! inotify, whose descriptor sits in the event loop's epoll set, or the
//! loop looks at modification times once a second (`--reload-engine
//! poll`). Either way no thread is started. The worker then asks the
//! master to reload every worker (see `Heartbeat::ask_reload`).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::config::ReloadEngine;

/// Editors write a file in several steps (truncate, write, rename): a
/// change is reported once no event has come for this long, so the new
/// workers import the finished file and one save is one report.
const SETTLE: Duration = Duration::from_millis(200);

/// How often the poll engine looks at modification times (gunicorn's).
const POLL_EVERY: Duration = Duration::from_secs(1);

enum Engine {
    Inotify {
        fd: Inotify,
        /// Each watch, and the directory spellings it stands for (a
        /// directory reached through a symlink and directly is one watch).
        dirs: HashMap<WatchDescriptor, Vec<PathBuf>>,
        files: HashSet<PathBuf>,
    },
    Poll {
        seen: HashMap<PathBuf, Option<SystemTime>>,
        next: Instant,
    },
}

pub struct Watcher {
    engine: Engine,
    /// The first file seen changing, and when the last change came.
    changed: Option<(PathBuf, Instant)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Watcher {
    pub fn new(files: Vec<PathBuf>, engine: ReloadEngine) -> std::io::Result<Self> {
        let poll = |files: Vec<PathBuf>| Engine::Poll {
            seen: files.into_iter().map(|f| (f.clone(), mtime(&f))).collect(),
            next: Instant::now() + POLL_EVERY,
        };
        let engine = match engine {
            ReloadEngine::Poll => poll(files),
            ReloadEngine::Auto | ReloadEngine::Inotify => {
                match Self::inotify(&files) {
                    Ok(e) => e,
                    // Out of inotify instances or watches (the per-user
                    // limits), or a file system without it: `auto` looks at
                    // modification times instead; `inotify` was asked for.
                    Err(e) if engine == ReloadEngine::Auto => {
                        tracing::warn!("--reload: inotify: {e}; polling for changes instead");
                        poll(files)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Self {
            engine,
            changed: None,
        })
    }

    fn inotify(files: &[PathBuf]) -> std::io::Result<Engine> {
        let fd = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // Directories, not files: an editor that saves by writing a
        // new file and renaming it over the old one replaces the
        // inode a file watch would be on.
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE;
        let mut dirs: HashMap<WatchDescriptor, Vec<PathBuf>> = HashMap::new();
        let mut watched = HashSet::new();
        for f in files {
            let Some(dir) = f.parent() else { continue };
            if !watched.insert(dir.to_owned()) {
                continue;
            }
            match fd.add_watch(dir, mask) {
                Ok(wd) => dirs.entry(wd).or_default().push(dir.to_owned()),
                // A directory that is gone: its modules cannot
                // change under us either.
                Err(nix::errno::Errno::ENOENT) => {}
                // Out of watches: not watching would be silent.
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Engine::Inotify {
            fd,
            dirs,
            files: files.iter().cloned().collect(),
        })
    }

    /// The descriptor to wait on, if the engine has one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.engine {
            Engine::Inotify { fd, .. } => Some(fd.as_fd()),
            Engine::Poll { .. } => None,
        }
    }

    fn note(&mut self, file: PathBuf, now: Instant) {
        match &mut self.changed {
            Some((_, last)) => *last = now,
            None => self.changed = Some((file, now)),
        }
    }

    /// The inotify descriptor is readable: see which files it is about.
    pub fn on_readable(&mut self, now: Instant) {
        let Engine::Inotify { fd, dirs, files } = &self.engine else {
            return;
        };
        let mut hit = None;
        while let Ok(events) = fd.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                // Lost events, or a watched directory gone: something may
                // have changed that can no longer be told apart.
                if ev
                    .mask
                    .intersects(AddWatchFlags::IN_Q_OVERFLOW | AddWatchFlags::IN_IGNORED)
                {
                    if let Some(d) = dirs.get(&ev.wd).and_then(|d| d.first()) {
                        hit.get_or_insert_with(|| d.clone());
                    } else {
                        hit.get_or_insert_with(|| PathBuf::from("(inotify queue overflow)"));
                    }
                    continue;
                }
                let (Some(spellings), Some(name)) = (dirs.get(&ev.wd), ev.name.as_ref()) else {
                    continue;
                };
                for dir in spellings {
                    let path = dir.join(name);
                    if hit.is_none() && files.contains(&path) {
                        hit = Some(path);
                    }
                }
            }
        }
        if let Some(path) = hit {
            self.note(path, now);
        }
    }

    /// Called now and then by the loop: the changed file, once per change,
    /// when the change has settled. A later change is reported again (a
    /// reload whose new code failed to import leaves this worker serving,
    /// and the fix must reach the master too).
    pub fn tick(&mut self, now: Instant) -> Option<PathBuf> {
        if let Engine::Poll { seen, next } = &mut self.engine {
            if now >= *next {
                *next = now + POLL_EVERY;
                let changed = seen.iter_mut().find_map(|(f, t)| {
                    let m = mtime(f);
                    (m != *t).then(|| {
                        *t = m;
                        f.clone()
                    })
                });
                if let Some(f) = changed {
                    self.note(f, now);
                }
            }
        }
        match &self.changed {
            Some((_, last)) if now.duration_since(*last) >= SETTLE => {
                self.changed.take().map(|(file, _)| file)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("corral-reload-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn settle(w: &mut Watcher) -> Option<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            w.on_readable(Instant::now());
            if let Some(f) = w.tick(Instant::now()) {
                return Some(f);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn inotify_reports_a_watched_file_once_and_ignores_its_neighbours() {
        let d = scratch("inotify");
        let app = d.join("app.py");
        std::fs::write(&app, "v = 1\n").unwrap();
        let mut w = Watcher::new(vec![app.clone()], ReloadEngine::Auto).unwrap();
        std::fs::write(d.join("unrelated.log"), "x").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        w.on_readable(Instant::now());
        assert_eq!(
            w.tick(Instant::now()),
            None,
            "a neighbour changed, not the app"
        );
        // Saved the way editors do: a new file renamed over the old one.
        std::fs::write(d.join(".app.py.swp"), "v = 2\n").unwrap();
        std::fs::rename(d.join(".app.py.swp"), &app).unwrap();
        assert_eq!(settle(&mut w), Some(app.clone()));
        assert_eq!(w.tick(Instant::now()), None, "one save, one report");
        // A later save is reported again.
        std::fs::write(&app, "v = 3\n").unwrap();
        assert_eq!(settle(&mut w), Some(app.clone()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn poll_sees_a_new_modification_time() {
        let d = scratch("poll");
        let conf = d.join("conf.txt");
        std::fs::write(&conf, "a").unwrap();
        let mut w = Watcher::new(vec![conf.clone()], ReloadEngine::Poll).unwrap();
        assert!(w.fd().is_none());
        let later = SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&conf)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(settle(&mut w), Some(conf));
        let _ = std::fs::remove_dir_all(&d);
    }
}
