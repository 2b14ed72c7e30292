//! A weekly profile: for each hour of the week (168 slots, UTC), the mean of a variance-stabilised
//! count over the weeks seen, so that a rhythm that comes back every week (the Monday-morning ramp) is
//! expected, as SigNoz's and Datadog's seasonal baselines do. A slot speaks only once it holds data
//! from an earlier week than the one being judged.
//!
//! Every window is learned, flagged or not, at a weight of at most 1/3 per week: a new weekly pattern is
//! expected after a week or two, and one incident moves its slot by a third of its size at most.

use serde::{Deserialize, Serialize};

pub const SLOTS: u64 = 168;
const HOUR_NANOS: u64 = 3_600 * 1_000_000_000;
/// The slowest a slot learns: each week weighs at least this much.
const MIN_WEEK_WEIGHT: f32 = 1.0 / 3.0;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Slot {
    mean: f32,
    /// Windows learned in the slot's current week.
    in_week: u16,
    /// Weeks with data, and the last one (weeks since the epoch).
    weeks: u16,
    last_week: u16,
}

/// Saved as the slots that hold data only (a key an hour old has one), so a learned state stays small.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<(u8, Slot)>", into = "Vec<(u8, Slot)>")]
pub struct WeeklyProfile {
    /// Empty until the first window: keys that never live a week cost nothing more.
    slots: Vec<Slot>,
}

impl From<WeeklyProfile> for Vec<(u8, Slot)> {
    fn from(p: WeeklyProfile) -> Self {
        p.slots
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.weeks > 0)
            .map(|(i, s)| (i as u8, s))
            .collect()
    }
}

impl From<Vec<(u8, Slot)>> for WeeklyProfile {
    fn from(saved: Vec<(u8, Slot)>) -> Self {
        if saved.is_empty() {
            return WeeklyProfile::default();
        }
        let mut slots = vec![Slot::default(); SLOTS as usize];
        for (i, s) in saved {
            if let Some(slot) = slots.get_mut(usize::from(i)) {
                *slot = s;
            }
        }
        WeeklyProfile { slots }
    }
}

fn slot_and_week(t_nanos: u64) -> (usize, u16) {
    let hour = t_nanos / HOUR_NANOS;
    ((hour % SLOTS) as usize, (hour / SLOTS) as u16)
}

impl WeeklyProfile {
    /// The expected value for the hour holding `t_nanos`, when an earlier week has taught it.
    pub fn expected(&self, t_nanos: u64) -> Option<f64> {
        let (slot, week) = slot_and_week(t_nanos);
        let s = self.slots.get(slot)?;
        let earlier = s.weeks >= 2 || (s.weeks == 1 && s.last_week != week);
        earlier.then_some(f64::from(s.mean))
    }

    pub fn learn(&mut self, t_nanos: u64, y: f64) {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS as usize];
        }
        let (slot, week) = slot_and_week(t_nanos);
        let s = &mut self.slots[slot];
        if s.weeks == 0 || s.last_week != week {
            s.weeks = s.weeks.saturating_add(1);
            s.last_week = week;
            s.in_week = 0;
        }
        s.in_week = s.in_week.saturating_add(1);
        // Within a week the windows of the hour average; across weeks each week weighs 1/weeks, at
        // least MIN_WEEK_WEIGHT.
        let week_weight = (1.0 / f32::from(s.weeks)).max(MIN_WEEK_WEIGHT);
        let weight = if s.weeks == 1 {
            1.0 / f32::from(s.in_week)
        } else {
            week_weight / f32::from(s.in_week)
        };
        s.mean += weight * (y as f32 - s.mean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: u64 = SLOTS * HOUR_NANOS;

    #[test]
    fn a_slot_speaks_only_after_an_earlier_week() {
        let mut p = WeeklyProfile::default();
        let monday_nine = 4 * 24 * HOUR_NANOS + 9 * HOUR_NANOS;
        assert_eq!(p.expected(monday_nine), None);
        p.learn(monday_nine, 40.0);
        assert_eq!(
            p.expected(monday_nine),
            None,
            "the same week does not count"
        );
        assert_eq!(p.expected(monday_nine + WEEK), Some(40.0));
        assert_eq!(
            p.expected(monday_nine + HOUR_NANOS + WEEK),
            None,
            "another hour"
        );
        // A second week moves the mean halfway; later weeks a third of the way.
        p.learn(monday_nine + WEEK, 20.0);
        assert_eq!(p.expected(monday_nine + 2 * WEEK), Some(30.0));
        p.learn(monday_nine + 2 * WEEK, 60.0);
        assert_eq!(p.expected(monday_nine + 3 * WEEK), Some(40.0));
        // Saved as its one used slot, and read back whole.
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.len() < 60, "{text}");
        let back: WeeklyProfile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        let empty: WeeklyProfile = serde_json::from_str("[]").unwrap();
        assert_eq!(empty, WeeklyProfile::default());
    }
}
