//! `--bwlimit`: holds the bytes a process writes to a given average rate, as stock rsync's
//! writer does (it writes at most `KiB * 128` bytes at a time and sleeps while ahead).

use std::time::{Duration, Instant};

/// A rate limit in whole KiB per second (the option's bytes rounded as stock rounds them).
pub struct BwLimit {
    rate: u64,
    start: Option<Instant>,
    spent: u64,
}

impl BwLimit {
    /// The limit for `--bwlimit` given in bytes per second; none for no option or 0 (after
    /// rounding to KiB).
    pub fn new(bytes_per_sec: Option<u64>) -> Option<BwLimit> {
        let kib = bytes_per_sec?.saturating_add(512) / 1024;
        (kib > 0).then_some(BwLimit {
            rate: kib * 1024,
            start: None,
            spent: 0,
        })
    }

    /// The limit in KiB per second, as `--bwlimit=N` passes it to a server.
    pub fn kib(bytes_per_sec: u64) -> u64 {
        bytes_per_sec.saturating_add(512) / 1024
    }

    /// What a daemon started with `--bwlimit=KIB` holds a session to, given the client's
    /// `--bwlimit` (bytes per second): the daemon's rate, unless the client asked for a
    /// lower one (stock compares the two in whole KiB). A daemon limit of 0 is none.
    pub fn daemon_cap(client: Option<u64>, daemon_kib: u64) -> Option<u64> {
        let client_kib = client.map_or(0, BwLimit::kib);
        if daemon_kib > 0 && (client_kib == 0 || client_kib > daemon_kib) {
            Some(daemon_kib * 1024)
        } else {
            client
        }
    }

    /// The most written at once: a write is then followed by its pause.
    pub fn write_max(&self) -> usize {
        ((self.rate / 1024) * 128).max(512) as usize
    }

    /// `n` more bytes went out: sleeps while they are ahead of the rate.
    pub fn spend(&mut self, n: u64) {
        let start = *self.start.get_or_insert_with(Instant::now);
        if let Some(ahead) = self.ahead(n, start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }

    /// Counts `n` more bytes at `elapsed` since the first; how far ahead of the rate that is.
    fn ahead(&mut self, n: u64, elapsed: Duration) -> Option<Duration> {
        self.spent += n;
        let due = Duration::from_secs_f64(self.spent as f64 / self.rate as f64);
        due.checked_sub(elapsed).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_kib_like_stock() {
        assert!(BwLimit::new(None).is_none());
        assert!(BwLimit::new(Some(511)).is_none());
        assert_eq!(BwLimit::new(Some(512)).unwrap().rate, 1024);
        assert_eq!(BwLimit::kib(100 * 1024 + 600), 101);
        assert_eq!(BwLimit::new(Some(1024)).unwrap().write_max(), 512);
        assert_eq!(BwLimit::new(Some(100 << 10)).unwrap().write_max(), 12_800);
    }

    #[test]
    fn a_daemon_limit_caps_the_clients() {
        // No limit from the client, or a higher one: the daemon's.
        assert_eq!(BwLimit::daemon_cap(None, 100), Some(100 * 1024));
        assert_eq!(BwLimit::daemon_cap(Some(0), 100), Some(100 * 1024));
        assert_eq!(BwLimit::daemon_cap(Some(500 * 1024), 100), Some(100 * 1024));
        // A lower one (or the same, in whole KiB) stays the client's.
        assert_eq!(BwLimit::daemon_cap(Some(20 * 1024), 100), Some(20 * 1024));
        assert_eq!(
            BwLimit::daemon_cap(Some(100 * 1024 + 300), 100),
            Some(100 * 1024 + 300)
        );
        // The client's 511 bytes/s round to no limit at all: the daemon's applies.
        assert_eq!(BwLimit::daemon_cap(Some(511), 100), Some(100 * 1024));
        // No daemon limit: the client's as given.
        assert_eq!(BwLimit::daemon_cap(None, 0), None);
        assert_eq!(BwLimit::daemon_cap(Some(2048), 0), Some(2048));
        // The capped limit paces writes at the daemon's rate (on a given clock).
        let mut b = BwLimit::new(BwLimit::daemon_cap(Some(1 << 30), 2)).unwrap();
        assert_eq!(b.write_max(), 512);
        assert_eq!(b.ahead(4096, Duration::ZERO), Some(Duration::from_secs(2)));
    }

    #[test]
    fn holds_the_average_rate() {
        let mut b = BwLimit::new(Some(1024)).unwrap();
        assert_eq!(b.ahead(2048, Duration::ZERO), Some(Duration::from_secs(2)));
        // Behind the rate after a slow stretch: no pause until the average catches up.
        assert_eq!(b.ahead(1024, Duration::from_secs(5)), None);
        assert_eq!(
            b.ahead(3072, Duration::from_secs(5)),
            Some(Duration::from_secs(1))
        );
    }
}
