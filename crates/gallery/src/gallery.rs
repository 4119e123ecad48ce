//! The gallery: the user's cards, newest first, at most [`MAX_CARDS`] of them, each with an id
//! that is never reused (the page keys its list by it).

/// Oldest cards are dropped past this many (the page then releases their photo and signals),
/// so a long session does not grow without bound.
pub const MAX_CARDS: usize = 200;

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

    /// Puts `new` cards on top (newest first: the last of `new` ends up first) and returns
    /// the cards past the limit, oldest last, for the caller to release.
    pub fn add_newest(&mut self, new: impl IntoIterator<Item = C>) -> Vec<C> {
        for card in new {
            self.cards.insert(0, card);
        }
        self.cards.drain(self.max.min(self.cards.len())..).collect()
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

    #[test]
    fn new_cards_go_first_and_the_oldest_past_the_limit_are_returned() {
        let mut gallery = Gallery::with_limit(4);
        assert!(gallery.add_newest([1, 2]).is_empty());
        assert_eq!(gallery.cards(), [2, 1]);
        assert_eq!(gallery.add_newest([3, 4, 5]), [1]);
        assert_eq!(gallery.cards(), [5, 4, 3, 2]);
        assert!(gallery.add_newest([]).is_empty());
        assert_eq!(gallery.len(), 4);
    }

    #[test]
    fn a_small_limit_drops_several_at_once() {
        let mut gallery = Gallery::with_limit(2);
        gallery.add_newest([1, 2, 3]);
        assert_eq!(gallery.add_newest([6]), [2]);
        assert_eq!(gallery.cards(), [6, 3]);
    }

    #[test]
    fn ids_are_never_reused_even_after_cards_are_dropped() {
        let mut gallery = Gallery::with_limit(1);
        let first: Vec<u64> = gallery.next_ids(2).collect();
        gallery.add_newest(first.iter().copied());
        let next: Vec<u64> = gallery.next_ids(1).collect();
        gallery.add_newest(next.iter().copied());
        assert_eq!((first.as_slice(), next.as_slice()), (&[0, 1][..], &[2][..]));
        assert_eq!(gallery.cards(), [2]);
        assert!(gallery.next_ids(0).is_empty());
        assert_eq!(Gallery::<u64>::default().max, MAX_CARDS);
    }
}
