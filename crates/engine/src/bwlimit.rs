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
