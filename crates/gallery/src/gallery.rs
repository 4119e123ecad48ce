//! The gallery: the user's cards, newest first, each with an id that is never reused (the page
//! keys its list by it). Past [`MAX_CARDS`] the oldest cards are dropped, but never one the
//! user taught: those are their work, bounded by [`MAX_TAUGHT`] instead.

/// Oldest untaught cards are dropped past this many cards (the page then releases their photo
/// and signals), so a long session does not grow without bound.
pub const MAX_CARDS: usize = 200;

/// The most photos a teaching set holds: recording from the camera stops there, and a project
/// file holds at most this many.
pub const MAX_TAUGHT: usize = 1000;

/// The cards, newest first. `C` is whatever the page keeps per card (its signals); the
/// gallery only orders, bounds and numbers them.
#[derive(Clone, Debug)]
pub struct Gallery<C> {
    cards: Vec<C>,
    next_id: u64,
    max: usize,
}

impl<C> Default for Gallery<C> {
    fn default() -> Self {
        Self::with_limit(MAX_CARDS)
    }
}

impl<C> Gallery<C> {
    /// An empty gallery that keeps at most `max` cards.
    pub fn with_limit(max: usize) -> Self {
        Self { cards: Vec::new(), next_id: 0, max }
    }

    /// Fresh ids for the next `n` cards.
    pub fn next_ids(&mut self, n: usize) -> std::ops::Range<u64> {
        let first = self.next_id;
        self.next_id += n as u64;
        first..self.next_id
    }

    /// Puts `new` cards on top (newest first: the last of `new` ends up first) and returns the
    /// cards dropped past the limit, oldest last, for the caller to release. Cards that
    /// `kept` says are the user's work (taught) are never dropped: the oldest others go first,
    /// and the gallery holds more than its limit only when taught cards alone fill it.
    pub fn add_newest(&mut self, new: impl IntoIterator<Item = C>, kept: impl Fn(&C) -> bool) -> Vec<C> {
        for card in new {
            self.cards.insert(0, card);
        }
        let mut dropped = Vec::new();
        let mut i = self.cards.len();
        while self.cards.len() > self.max && i > 0 {
            i -= 1;
            if !kept(&self.cards[i]) {
                dropped.push(self.cards.remove(i));
            }
        }
        dropped
    }

    /// How many cards `kept` says are taught.
    pub fn count(&self, kept: impl Fn(&C) -> bool) -> usize {
        self.cards.iter().filter(|c| kept(c)).count()
    }

    /// The cards, newest first.
    pub fn cards(&self) -> &[C] {
        &self.cards
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &u64) -> bool {
        false
    }

    #[test]
    fn taught_cards_are_never_dropped_the_oldest_others_go_first() {
        // Even numbers stand for taught cards.
        let taught = |c: &u64| c % 2 == 0;
        let mut gallery = Gallery::with_limit(3);
        assert!(gallery.add_newest([2, 1, 4], taught).is_empty());
        assert_eq!(gallery.add_newest([5], taught), [1], "the oldest untaught card goes, the older taught one stays");
        assert_eq!(gallery.cards(), [5, 4, 2]);
        assert_eq!(gallery.add_newest([6, 8], taught), [5]);
        assert_eq!(gallery.cards(), [8, 6, 4, 2], "taught cards alone may fill the gallery past its limit");
        assert_eq!(gallery.add_newest([7], taught), [7], "a new untaught card beyond it is dropped at once");
        assert_eq!(gallery.count(taught), 4);
    }

    #[test]
    fn new_cards_go_first_and_the_oldest_past_the_limit_are_returned() {
        let mut gallery = Gallery::with_limit(4);
        assert!(gallery.add_newest([1, 2], none).is_empty());
        assert_eq!(gallery.cards(), [2, 1]);
        assert_eq!(gallery.add_newest([3, 4, 5], none), [1]);
        assert_eq!(gallery.cards(), [5, 4, 3, 2]);
        assert!(gallery.add_newest([], none).is_empty());
        assert_eq!(gallery.len(), 4);
    }

    #[test]
    fn a_small_limit_drops_several_at_once() {
        let mut gallery = Gallery::with_limit(2);
        gallery.add_newest([1, 2, 3], none);
        assert_eq!(gallery.add_newest([6], none), [2]);
        assert_eq!(gallery.cards(), [6, 3]);
    }

    #[test]
    fn ids_are_never_reused_even_after_cards_are_dropped() {
        let mut gallery = Gallery::with_limit(1);
        let first: Vec<u64> = gallery.next_ids(2).collect();
        gallery.add_newest(first.iter().copied(), none);
        let next: Vec<u64> = gallery.next_ids(1).collect();
        gallery.add_newest(next.iter().copied(), none);
        assert_eq!((first.as_slice(), next.as_slice()), (&[0, 1][..], &[2][..]));
        assert_eq!(gallery.cards(), [2]);
        assert!(gallery.next_ids(0).is_empty());
        assert_eq!(Gallery::<u64>::default().max, MAX_CARDS);
    }
}
