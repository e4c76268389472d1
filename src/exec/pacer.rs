//! Who runs next and when: quotas for `stop_after`, and the open-model schedule whose intended
//! start times latency is measured from (no coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A budget of transactions (or rows) shared by the clients of a group.
#[derive(Debug)]
pub struct Quota {
    limit: Option<u64>,
    used: AtomicU64,
    done: AtomicBool,
}

impl Quota {
    pub fn new(limit: Option<u64>) -> Self {
        Quota {
            limit,
            used: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Take up to `want` units; None once the budget is spent.
    pub fn claim(&self, want: u64) -> Option<u64> {
        let Some(limit) = self.limit else {
            self.used.fetch_add(want, Ordering::Relaxed);
            return Some(want);
        };
        let before = self.used.fetch_add(want, Ordering::Relaxed);
        if before >= limit {
            return None;
        }
        Some(want.min(limit - before))
    }

    /// Mark that every claimed unit has finished (set by the group when its clients stop).
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    pub fn has_limit(&self) -> bool {
        self.limit.is_some()
    }
}

/// Further than any run goes (ten years): where an absurd rate puts the next slot.
const FAR: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Evenly spaced intended start times at `rate` per second from `start`.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    next: AtomicU64,
}

impl Schedule {
    /// `rate` per second; the workload's checks keep it within 0.001 and 10^7, and a rate
    /// outside that still gives a schedule (never a panic).
    pub fn new(start: Instant, rate: f64) -> Self {
        Schedule {
            start,
            interval: Duration::try_from_secs_f64(1.0 / rate).unwrap_or(FAR),
            next: AtomicU64::new(0),
        }
    }

    /// The next slot's intended start; every slot is handed out once.
    pub fn next(&self) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let offset = Duration::try_from_secs_f64(self.interval.as_secs_f64() * k as f64)
            .unwrap_or(FAR)
            .min(FAR);
        self.start + offset
    }

    /// Slots due by `now` that no client has started: the backlog.
    pub fn backlog(&self, now: Instant) -> u64 {
        let due = (now.saturating_duration_since(self.start).as_secs_f64()
            / self.interval.as_secs_f64())
        .floor() as u64
            + 1;
        due.saturating_sub(self.next.load(Ordering::Relaxed))
    }

    pub fn handed_out(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_hands_out_exactly_the_limit() {
        let q = Quota::new(Some(25));
        let mut got = 0;
        while let Some(n) = q.claim(10) {
            got += n;
        }
        assert_eq!(got, 25);
        assert_eq!(Quota::new(None).claim(7), Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_is_evenly_spaced_and_tracks_backlog() {
        let start = Instant::now();
        let s = Schedule::new(start, 400.0);
        let a = s.next();
        let b = s.next();
        assert_eq!(a, start);
        assert_eq!(b - a, Duration::from_micros(2500));
        tokio::time::advance(Duration::from_secs(1)).await;
        // 401 slots due at t = 1 s (0 .. 1000 ms inclusive), 2 handed out.
        assert_eq!(s.backlog(Instant::now()), 399);
    }
}
