//! Time lag by the LSN timeline (DESIGN section 6): the primary's (time, insert LSN) pairs, and
//! for a standby's replay LSN L observed at time t, t minus the earliest time the primary had
//! reached L (linear interpolation between samples). Only the tool's clock is used.

use std::collections::VecDeque;

/// WAL page header sizes: an insert LSN at the start of a page points past the header, where
/// no standby's replay LSN can point, so a standby that far behind is caught up.
const XLOG_PAGE_SIZE: u64 = 8192;
const LONG_PAGE_HEADER: u64 = 40;

/// The primary's WAL positions over time.
#[derive(Debug, Default)]
pub struct LsnTimeline {
    points: VecDeque<(f64, u64)>,
}

/// What `push` saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Added,
    /// The LSN went backwards (a new primary on a new timeline): history restarted.
    TimelineChanged,
}

impl LsnTimeline {
    /// Add the primary's insert LSN observed at `t` (seconds).
    ///
    /// A position below the newest one is a new primary on a new timeline, which forked from
    /// the old history at that position: the history up to it stays (a standby behind it is
    /// still behind by the old primary's times), what lies beyond it is dropped.
    pub fn push(&mut self, t: f64, lsn: u64) -> Pushed {
        if let Some(&(_, last)) = self.points.back() {
            if lsn < last {
                let forked_at = self.reached_at(lsn).unwrap_or(t);
                while self.points.back().is_some_and(|&(_, l)| l >= lsn) {
                    self.points.pop_back();
                }
                self.points.push_back((forked_at.min(t), lsn));
                return Pushed::TimelineChanged;
            }
            if lsn == last {
                // A plateau: keep only its first point (when the primary got there).
                return Pushed::Added;
            }
        }
        self.points.push_back((t, lsn));
        Pushed::Added
    }

    /// When the primary reached `l` (interpolated); None outside the history.
    fn reached_at(&self, l: u64) -> Option<f64> {
        let i = self.points.partition_point(|&(_, lsn)| lsn < l);
        let &(t1, l1) = self.points.get(i)?;
        if i == 0 {
            return (l1 == l).then_some(t1);
        }
        let (t0, l0) = self.points[i - 1];
        Some(t0 + (l - l0) as f64 / (l1 - l0) as f64 * (t1 - t0))
    }

    /// Seconds behind for replay LSN `l` observed at `t`; None before the first sample.
    /// Before the oldest kept point the lag is at least `t - oldest`, which is returned.
    pub fn lag_at(&self, t: f64, l: u64) -> Option<f64> {
        let &(_, newest) = self.points.back()?;
        if l >= newest || caught_up_but_for_page_header(l, newest) {
            return Some(0.0);
        }
        let reached = self.reached_at(l).unwrap_or(self.points[0].0);
        Some((t - reached).max(0.0))
    }

    /// Forget points no standby needs: all but the last one below `min_replay`.
    pub fn prune_below(&mut self, min_replay: u64) {
        while self.points.len() > 2 && self.points[1].1 <= min_replay {
            self.points.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

fn caught_up_but_for_page_header(l: u64, newest: u64) -> bool {
    newest - l <= LONG_PAGE_HEADER && newest % XLOG_PAGE_SIZE <= LONG_PAGE_HEADER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(points: &[(f64, u64)]) -> LsnTimeline {
        let mut t = LsnTimeline::default();
        for &(at, lsn) in points {
            t.push(at, lsn);
        }
        t
    }

    #[test]
    fn before_the_first_sample_there_is_no_answer() {
        assert_eq!(LsnTimeline::default().lag_at(1.0, 100), None);
    }

    #[test]
    fn between_samples_it_interpolates() {
        let t = timeline(&[(0.0, 1000), (1.0, 2000), (2.0, 3000)]);
        // L = 2500 was reached at 1.5 s; observed at 1.8 s.
        let lag = t.lag_at(1.8, 2500).unwrap();
        assert!((lag - 0.3).abs() < 1e-9, "{lag}");
        // Exactly on a sample.
        assert!((t.lag_at(2.5, 2000).unwrap() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn caught_up_is_zero_and_an_idle_primary_shows_zero() {
        let t = timeline(&[(0.0, 1000), (1.0, 5000), (2.0, 5000), (30.0, 5000)]);
        assert_eq!(t.lag_at(31.0, 5000), Some(0.0));
        assert_eq!(t.lag_at(31.0, 6000), Some(0.0), "ahead of the last sample");
        // Idle at a page boundary: the insert LSN points past the page header.
        let idle = timeline(&[(0.0, 8192 * 10 + 24), (60.0, 8192 * 10 + 24)]);
        assert_eq!(idle.lag_at(61.0, 8192 * 10), Some(0.0));
    }

    #[test]
    fn a_stalled_standby_shows_lag_that_keeps_growing() {
        let t = timeline(&[(0.0, 1000), (1.0, 2000), (2.0, 3000), (3.0, 4000)]);
        let a = t.lag_at(3.0, 2000).unwrap();
        let b = t.lag_at(4.0, 2000).unwrap();
        assert!((a - 2.0).abs() < 1e-9 && (b - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_plateau_keeps_its_first_time() {
        // WAL stopped at 2000 from t=1 to t=5, then moved on: 2000 was reached at 1 s.
        let t = timeline(&[(0.0, 1000), (1.0, 2000), (5.0, 2000), (6.0, 3000)]);
        assert!((t.lag_at(6.0, 2000).unwrap() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn older_than_the_history_is_a_lower_bound() {
        let t = timeline(&[(10.0, 5000), (11.0, 6000)]);
        assert_eq!(t.lag_at(12.0, 100), Some(2.0));
    }

    #[test]
    fn a_new_timeline_carries_the_shared_history_on() {
        let mut t = timeline(&[(0.0, 1000), (1.0, 9000)]);
        // Promoted at 5000, which the old primary reached at 0.5 s.
        assert_eq!(t.push(2.0, 5000), Pushed::TimelineChanged);
        assert_eq!(t.len(), 2);
        // A standby at 3000 is behind since 0.25 s, on either timeline.
        assert!((t.lag_at(2.0, 3000).unwrap() - 1.75).abs() < 1e-9);
        t.push(3.0, 6000);
        assert!((t.lag_at(3.0, 5500).unwrap() - (3.0 - 1.75)).abs() < 1e-9);
        assert_eq!(t.lag_at(3.0, 6000), Some(0.0));
    }

    #[test]
    fn pruning_keeps_what_standbys_still_need() {
        let mut t = timeline(&[(0.0, 1000), (1.0, 2000), (2.0, 3000), (3.0, 4000)]);
        t.prune_below(2500);
        assert_eq!(t.len(), 3);
        assert!((t.lag_at(3.0, 2500).unwrap() - 1.5).abs() < 1e-9);
    }
}
