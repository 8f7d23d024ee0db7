//! Watches a tree and prints events, one a line: `watchtree DIR`.
//!
//! Prints "Watches established." on stderr once every directory is watched (the same cue
//! inotifywait gives), which the benchmark in `bench/watch` uses to time set-up.

use std::time::Duration;

use rtsync_watch::{WatchOptions, Watcher};

fn main() {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: watchtree DIR");
        std::process::exit(2);
    };
    let started = std::time::Instant::now();
    let mut w = match Watcher::new(root, WatchOptions::default()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("watchtree: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "{} watches in {:?}.\nWatches established.",
        w.watch_count(),
        started.elapsed()
    );
    loop {
        match w.next_event(Some(Duration::from_secs(3600))) {
            Ok(Some(ev)) => println!("{:?} {} dir={}", ev.kind, ev.path.display(), ev.is_dir),
            Ok(None) => {}
            Err(e) => eprintln!("watchtree: {e}"),
        }
    }
}
