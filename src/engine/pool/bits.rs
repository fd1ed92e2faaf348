//! A set of seat positions kept in order: which seats of a pool are in one
//! state. One bit a seat, with a summary level above each level of 64
//! words, so "the lowest position at or after p" costs a few word reads
//! however large the pool (assign takes the lowest free seat; listings walk
//! a state's seats from a cursor).

/// Positions `0..len` in a bit tree: `levels[0]` holds one bit per
/// position; each bit of `levels[k + 1]` says whether word `i` of
/// `levels[k]` has any bit set. The top level is one word.
#[derive(Debug, Clone)]
pub struct Bits {
    levels: Vec<Vec<u64>>,
}

impl Default for Bits {
    fn default() -> Self {
        Bits { levels: vec![vec![0]] }
    }
}

impl Bits {
    /// Makes room for positions below `len` (never shrinks).
    pub fn grow(&mut self, len: u64) {
        let mut words = len.div_ceil(64).max(1) as usize;
        let mut k = 0;
        loop {
            if self.levels.len() == k {
                self.levels.push(Vec::new());
            }
            if self.levels[k].len() < words {
                self.levels[k].resize(words, 0);
            }
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
            k += 1;
        }
        // A grown top level: rebuild the summaries above the old top.
        self.levels.truncate(k + 1);
        for k in 1..self.levels.len() {
            for i in 0..self.levels[k - 1].len() {
                if self.levels[k - 1][i] != 0 {
                    self.levels[k][i / 64] |= 1 << (i % 64);
                }
            }
        }
    }

    pub fn insert(&mut self, pos: u64) {
        let mut i = pos as usize;
        for level in &mut self.levels {
            let Some(word) = level.get_mut(i / 64) else { return };
            let was_empty = *word == 0;
            *word |= 1 << (i % 64);
            if !was_empty {
                return;
            }
            i /= 64;
        }
    }

    pub fn remove(&mut self, pos: u64) {
        let mut i = pos as usize;
        for level in &mut self.levels {
            let Some(word) = level.get_mut(i / 64) else { return };
            *word &= !(1 << (i % 64));
            if *word != 0 {
                return;
            }
            i /= 64;
        }
    }

    /// Every position in `start..start + len` (a block of new seats): a
    /// word at a time.
    pub fn insert_range(&mut self, start: u64, len: u64) {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            let w = (pos / 64) as usize;
            let from = pos % 64;
            let to = (end - w as u64 * 64).min(64);
            let mask = if to - from == 64 {
                u64::MAX
            } else {
                ((1u64 << (to - from)) - 1) << from
            };
            let Some(word) = self.levels[0].get_mut(w) else { return };
            *word |= mask;
            self.mark_up(w);
            pos = w as u64 * 64 + to;
        }
    }

    /// Sets the summary bits above leaf word `w`, which is not empty.
    fn mark_up(&mut self, w: usize) {
        let mut i = w;
        for level in self.levels.iter_mut().skip(1) {
            let Some(word) = level.get_mut(i / 64) else { return };
            let had = *word & (1 << (i % 64)) != 0;
            *word |= 1 << (i % 64);
            if had {
                return;
            }
            i /= 64;
        }
    }

    pub fn contains(&self, pos: u64) -> bool {
        self.levels[0]
            .get((pos / 64) as usize)
            .is_some_and(|w| w & (1 << (pos % 64)) != 0)
    }

    /// The lowest position at or after `from`.
    pub fn next_from(&self, from: u64) -> Option<u64> {
        let mut i = usize::try_from(from).ok()?;
        // Climb while the rest of the current word is empty.
        let mut k = 0;
        loop {
            let level = self.levels.get(k)?;
            let w = i / 64;
            let word = level.get(w)? & (u64::MAX << (i % 64));
            if word != 0 {
                i = w * 64 + word.trailing_zeros() as usize;
                break;
            }
            // Nothing left in this word: look from the next word, one level up.
            k += 1;
            i = w + 1;
            if self.levels.get(k).is_none_or(|l| i / 64 >= l.len()) {
                return None;
            }
        }
        // Descend to the lowest set leaf under bit `i` of level `k`.
        while k > 0 {
            k -= 1;
            let word = self.levels[k].get(i).copied().unwrap_or(0);
            if word == 0 {
                return None;
            }
            i = i * 64 + word.trailing_zeros() as usize;
        }
        Some(i as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn finds_the_next_position_across_words_and_levels() {
        let mut b = Bits::default();
        b.grow(300_000);
        assert_eq!(b.next_from(0), None);
        b.insert(5);
        b.insert(70);
        b.insert(262_143);
        assert_eq!(b.next_from(0), Some(5));
        assert_eq!(b.next_from(5), Some(5));
        assert_eq!(b.next_from(6), Some(70));
        assert_eq!(b.next_from(71), Some(262_143));
        assert_eq!(b.next_from(262_144), None);
        b.remove(70);
        assert_eq!(b.next_from(6), Some(262_143));
        b.insert_range(1000, 130);
        assert_eq!(b.next_from(6), Some(1000));
        assert_eq!(b.next_from(1129), Some(1129));
        assert_eq!(b.next_from(1130), Some(262_143));
        assert!(b.contains(1064) && !b.contains(1130));
    }

    #[test]
    fn growing_keeps_what_is_set() {
        let mut b = Bits::default();
        b.grow(10);
        b.insert(3);
        b.grow(5_000_000);
        b.insert(4_999_999);
        assert_eq!(b.next_from(0), Some(3));
        assert_eq!(b.next_from(4), Some(4_999_999));
    }

    proptest! {
        #[test]
        fn agrees_with_an_ordered_set(ops in proptest::collection::vec((0u8..3, 0u64..20_000, 1u64..200), 1..300)) {
            let mut bits = Bits::default();
            let mut model = BTreeSet::new();
            let mut len = 0;
            for (op, pos, n) in ops {
                match op {
                    0 => {
                        bits.grow(len + n);
                        bits.insert_range(len, n);
                        model.extend(len..len + n);
                        len += n;
                    }
                    1 if len > 0 => {
                        bits.remove(pos % len);
                        model.remove(&(pos % len));
                    }
                    _ if len > 0 => {
                        bits.insert(pos % len);
                        model.insert(pos % len);
                    }
                    _ => {}
                }
                let from = if len > 0 { pos % (len + 1) } else { 0 };
                prop_assert_eq!(bits.next_from(from), model.range(from..).next().copied());
            }
        }
    }
}
