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
        // Without a limit nothing is counted: the counter is shared by every thread.
        let Some(limit) = self.limit else {
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

/// What a client of a group does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Start at this intended time (open model).
    At(Instant),
    /// No schedule: start as soon as the last transaction ended (closed model).
    Closed,
    /// The group is held (a sweep waits for the standbys between steps): wait for a change.
    Hold,
}

/// A group's pace: its schedule of the moment, which a sweep changes while the run goes on.
/// Clients read it without a lock.
#[derive(Debug)]
pub struct Pace {
    schedule: arc_swap::ArcSwapOption<Schedule>,
    held: std::sync::atomic::AtomicBool,
    /// Whether the group ever had a rate (the open model's numbers are reported for it).
    open: std::sync::atomic::AtomicBool,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            schedule: arc_swap::ArcSwapOption::empty(),
            held: AtomicBool::new(false),
            open: AtomicBool::new(false),
            changed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Pace {
    /// The next slot.
    pub fn next(&self) -> Slot {
        if self.held.load(Ordering::Acquire) {
            return Slot::Hold;
        }
        match self.schedule.load().as_ref() {
            Some(s) => Slot::At(s.next()),
            None => Slot::Closed,
        }
    }

    /// From `start` on, `rate` per second (slots of an earlier rate not yet taken are dropped).
    pub fn set_rate(&self, start: Instant, rate: f64) {
        self.schedule
            .store(Some(std::sync::Arc::new(Schedule::new(start, rate))));
        self.open.store(true, Ordering::Release);
        self.held.store(false, Ordering::Release);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Stop handing out slots until the next `set_rate`.
    pub fn hold(&self) {
        self.held.store(true, Ordering::Release);
        self.changed.send_modify(|g| *g += 1);
    }

    /// A receiver woken by every change (clients waiting on a hold or a far slot).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The schedule of the moment (None: closed model).
    pub fn schedule(&self) -> Option<std::sync::Arc<Schedule>> {
        self.schedule.load_full()
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pace_changes_rate_holds_and_goes_on() {
        let p = Pace::default();
        assert_eq!(p.next(), Slot::Closed);
        let t0 = Instant::now();
        p.set_rate(t0, 10.0);
        assert_eq!(p.next(), Slot::At(t0));
        assert_eq!(p.next(), Slot::At(t0 + Duration::from_millis(100)));
        let rx = p.subscribe();
        p.hold();
        assert!(rx.has_changed().unwrap());
        assert_eq!(p.next(), Slot::Hold);
        let t1 = t0 + Duration::from_secs(5);
        p.set_rate(t1, 100.0);
        assert_eq!(p.next(), Slot::At(t1));
        assert_eq!(p.next(), Slot::At(t1 + Duration::from_millis(10)));
        assert!(p.is_open());
    }

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
