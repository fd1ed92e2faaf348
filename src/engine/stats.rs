//! A tenant's recent activity per minute: purchases (seats), allocations and
//! reclaims, for `GET /seats/stats`. Plain data owned by the tenant actor.
//!
//! Only minutes with activity are kept, and only the last `KEEP_MINUTES`:
//! an idle tenant costs nothing, a busy one at most 1,440 small entries.

use std::collections::VecDeque;

use crate::domain::{Counts, Timestamp, Transition};

/// The longest window that can be asked for: 24 hours.
pub const KEEP_MINUTES: i64 = 24 * 60;

/// Counts of one minute, indexed by `Transition`.
pub type MinuteCounts = [u64; Transition::COUNT];

/// Minutes since the Unix epoch (floored, also before 1970).
pub fn minute_of(at: Timestamp) -> i64 {
    at.minute()
}

#[derive(Debug, Default)]
pub struct MinuteStats {
    /// (minute, counts), oldest first; minutes strictly increase because the
    /// actor's clock never goes back.
    minutes: VecDeque<(i64, MinuteCounts)>,
}

impl MinuteStats {
    pub fn record(&mut self, kind: Transition, at: Timestamp, n: u64) {
        let minute = minute_of(at);
        match self.minutes.back_mut() {
            Some((m, counts)) if *m == minute => counts[kind as usize] += n,
            // A time before the newest minute (only on restore, out of
            // order) is folded into its minute by search.
            Some((m, _)) if *m > minute => match self.minutes.binary_search_by_key(&minute, |(m, _)| *m) {
                Ok(i) => self.minutes[i].1[kind as usize] += n,
                Err(i) => {
                    let mut counts = [0; Transition::COUNT];
                    counts[kind as usize] = n;
                    self.minutes.insert(i, (minute, counts));
                }
            },
            _ => {
                let mut counts = [0; Transition::COUNT];
                counts[kind as usize] = n;
                self.minutes.push_back((minute, counts));
            }
        }
        while self.minutes.front().is_some_and(|(m, _)| *m <= minute - KEEP_MINUTES) {
            self.minutes.pop_front();
        }
    }

    /// The active minutes in `[from, to]` (minute numbers), oldest first.
    pub fn between(&self, from: i64, to: i64) -> Vec<(i64, MinuteCounts)> {
        self.minutes
            .iter()
            .filter(|(m, _)| (from..=to).contains(m))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_minute(m: i64, second: i64) -> Timestamp {
        Timestamp::from_micros((m * 60 + second) * 1_000_000)
    }

    #[test]
    fn counts_per_minute_and_forgets_after_a_day() {
        let mut s = MinuteStats::default();
        s.record(Transition::Purchase, at_minute(10, 1), 5);
        s.record(Transition::Allocate, at_minute(10, 59), 1);
        s.record(Transition::Reclaim, at_minute(12, 0), 1);
        s.record(Transition::Allocate, at_minute(11, 0), 1);
        let c = |p, a, r| {
            let mut counts = [0; Transition::COUNT];
            counts[..3].copy_from_slice(&[p, a, r]);
            counts
        };
        assert_eq!(
            s.between(0, 100),
            vec![(10, c(5, 1, 0)), (11, c(0, 1, 0)), (12, c(0, 0, 1))]
        );
        assert_eq!(s.between(11, 11), vec![(11, c(0, 1, 0))]);
        s.record(Transition::Allocate, at_minute(10 + KEEP_MINUTES, 0), 1);
        assert_eq!(s.between(0, 12), vec![(11, c(0, 1, 0)), (12, c(0, 0, 1))]);
        assert_eq!(minute_of(Timestamp::from_micros(-1)), -1);
    }
}

/// Days since 1970-01-01 (UTC, floored).
pub fn day_of(at: Timestamp) -> i64 {
    at.micros().div_euclid(86_400_000_000)
}

/// The counts at the end of each day `from..=to`. `snapshots` (oldest first)
/// hold a tenant's counts at the end of days on which they changed, except
/// its latest such day, `current_day`, from which on the counts are
/// `current`. A day between snapshots carries the one before it forward; a
/// day before any is empty.
pub fn day_series(
    from: i64,
    to: i64,
    snapshots: &[(i64, Counts)],
    current_day: Option<i64>,
    current: Counts,
) -> Vec<(i64, Counts)> {
    let mut next = 0;
    let mut carried = Counts::default();
    (from..=to)
        .map(|day| {
            if current_day.is_none_or(|c| day >= c) {
                return (day, current);
            }
            while let Some((_, counts)) = snapshots.get(next).filter(|(d, _)| *d <= day) {
                carried = *counts;
                next += 1;
            }
            (day, carried)
        })
        .collect()
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn c(free: u64, assigned: u64) -> Counts {
        Counts {
            free,
            reserved: 0,
            assigned,
        }
    }

    #[test]
    fn days_carry_the_last_snapshot_forward_and_end_with_the_current_counts() {
        let snaps = [(3, c(10, 0)), (5, c(8, 2))];
        let series = day_series(1, 8, &snaps, Some(7), c(5, 5));
        assert_eq!(
            series,
            vec![
                (1, c(0, 0)),
                (2, c(0, 0)),
                (3, c(10, 0)),
                (4, c(10, 0)),
                (5, c(8, 2)),
                (6, c(8, 2)),
                (7, c(5, 5)),
                (8, c(5, 5)),
            ]
        );
        assert_eq!(day_series(4, 4, &snaps[1..], Some(7), c(5, 5)), vec![(4, c(0, 0))]);
        assert_eq!(day_series(1, 2, &[], None, c(0, 0)), vec![(1, c(0, 0)), (2, c(0, 0))]);
        assert_eq!(day_of(Timestamp::from_micros(86_400_000_000 * 3 + 5)), 3);
        assert_eq!(day_of(Timestamp::from_micros(-1)), -1);
    }
}
