//! A bounded cache of decoded pages in front of a [`PairSource`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use image::RgbImage;

use super::PairSource;

/// One decoded page: `clean` is the target, `degraded` the model input.
#[derive(Debug)]
pub struct Pair {
    /// The ground truth.
    pub clean: RgbImage,
    /// The degraded scan.
    pub degraded: RgbImage,
}

/// Decoded bytes a [`PageStore`] keeps at most by default: 64 pairs of
/// 640x832 pages fit (200 MB), but only about ten whole A4 sheets at 300 dpi
/// (52 MB a pair), so high-resolution pages cannot grow a run's memory.
pub const DEFAULT_CACHE_BYTES: usize = 512 << 20;

/// Loads pages on demand and keeps at most `capacity` decoded (and at most
/// a byte budget of them, but always the latest), evicting the
/// least recently used. Pages that fail to load or whose two images differ in
/// size are remembered as skipped, with the reason, and never returned.
pub struct PageStore<'a> {
    source: &'a dyn PairSource,
    capacity: usize,
    max_bytes: usize,
    cache: RefCell<VecDeque<(usize, Rc<Pair>)>>,
    skipped: RefCell<BTreeMap<usize, String>>,
    /// Bytes of the largest pair decoded so far.
    largest: Cell<usize>,
    /// Distinct pages the run reads ([`PageStore::set_pages_in_play`]);
    /// unknown (released pages are dropped) until told.
    in_play: Cell<usize>,
}

impl<'a> PageStore<'a> {
    /// A store keeping up to `capacity` pages (at least one) within
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn new(source: &'a dyn PairSource, capacity: usize) -> Self {
        Self::with_budget(source, capacity, DEFAULT_CACHE_BYTES)
    }

    /// A store keeping up to `capacity` pages and `max_bytes` of decoded
    /// images; the page just loaded is kept even when it alone exceeds it.
    pub fn with_budget(source: &'a dyn PairSource, capacity: usize, max_bytes: usize) -> Self {
        Self {
            source,
            capacity: capacity.max(1),
            max_bytes,
            cache: RefCell::new(VecDeque::new()),
            skipped: RefCell::new(BTreeMap::new()),
            largest: Cell::new(0),
            in_play: Cell::new(usize::MAX),
        }
    }

    /// How many pages the store is known to keep decoded at once: its page
    /// capacity, or fewer when pages as large as the largest one seen so far
    /// would exceed the byte budget; 1 before any page is decoded (at least 1).
    pub fn room(&self) -> usize {
        match self.largest.get() {
            0 => 1,
            largest => self.capacity.min(self.max_bytes / largest).max(1),
        }
    }

    /// The underlying source.
    pub fn source(&self) -> &'a dyn PairSource {
        self.source
    }

    /// Page `index`, or `None` when it is (now known to be) unusable.
    pub fn get(&self, index: usize) -> Option<Rc<Pair>> {
        if self.skipped.borrow().contains_key(&index) {
            return None;
        }
        {
            let mut cache = self.cache.borrow_mut();
            if let Some(pos) = cache.iter().position(|(i, _)| *i == index) {
                // Move to the back: most recently used.
                let entry = cache.remove(pos)?;
                let pair = entry.1.clone();
                cache.push_back(entry);
                return Some(pair);
            }
        }
        let pair = match self.source.load(index) {
            Ok((clean, degraded)) if clean.dimensions() == degraded.dimensions() => {
                Rc::new(Pair { clean, degraded })
            }
            Ok((clean, degraded)) => {
                let reason = format!(
                    "size mismatch: clean {}x{}, degraded {}x{}",
                    clean.width(),
                    clean.height(),
                    degraded.width(),
                    degraded.height()
                );
                self.skipped.borrow_mut().insert(index, reason);
                return None;
            }
            Err(e) => {
                self.skipped
                    .borrow_mut()
                    .insert(index, format!("load failed: {e}"));
                return None;
            }
        };
        let mut cache = self.cache.borrow_mut();
        let size = pair_bytes(&pair);
        self.largest.set(self.largest.get().max(size));
        let mut held: usize = cache.iter().map(|(_, p)| pair_bytes(p)).sum();
        while !cache.is_empty() && (cache.len() >= self.capacity || held + size > self.max_bytes) {
            if let Some((_, old)) = cache.pop_front() {
                held -= pair_bytes(&old);
            }
        }
        cache.push_back((index, pair.clone()));
        Some(pair)
    }

    /// Tells the store how many distinct pages a run reads (training and
    /// validation), so [`PageStore::release`] knows whether they all fit.
    pub fn set_pages_in_play(&self, pages: usize) {
        self.in_play.set(pages);
    }

    /// Says that page `index` is done with until a later pass (a page that
    /// left the sampler's pool, a validation page scored for this epoch).
    /// When the run's pages all fit in the cache it stays, and later passes
    /// read it without fetching or decoding it again; otherwise it is
    /// dropped, since it would be evicted before its next use anyway, and
    /// meanwhile would hold memory and push out pages still in use.
    pub fn release(&self, index: usize) {
        if self.in_play.get() > self.room() {
            self.cache.borrow_mut().retain(|(i, _)| *i != index);
        }
    }

    /// Bytes of decoded images currently held.
    pub fn cached_bytes(&self) -> usize {
        self.cache.borrow().iter().map(|(_, p)| pair_bytes(p)).sum()
    }

    /// Pages skipped so far as `(page_id, reason)`, in index order.
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.skipped
            .borrow()
            .iter()
            .map(|(&i, r)| (self.source.page_id(i), r.clone()))
            .collect()
    }

    /// Number of pages currently decoded in memory.
    pub fn cached(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Loads every listed page once so size mismatches are known up front.
    pub fn scan(&self, indices: &[usize]) {
        for &i in indices {
            let _ = self.get(i);
        }
    }
}

fn pair_bytes(p: &Pair) -> usize {
    p.clean.as_raw().len() + p.degraded.as_raw().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::InMemoryPairs;

    #[test]
    fn mismatched_pages_are_skipped_with_reason() {
        let mut src = InMemoryPairs::new();
        src.push("ok", RgbImage::new(4, 4), RgbImage::new(4, 4));
        src.push("bad", RgbImage::new(4, 4), RgbImage::new(5, 4));
        let store = PageStore::new(&src, 4);
        assert!(store.get(0).is_some());
        assert!(store.get(1).is_none());
        assert!(store.get(7).is_none());
        let skipped = store.skipped();
        assert_eq!(
            skipped[0],
            (
                "bad".into(),
                "size mismatch: clean 4x4, degraded 5x4".into()
            )
        );
        assert!(skipped[1].1.starts_with("load failed"));
    }

    /// `n` pairs of 2x2 black pages named `p0`, `p1`, ...
    fn tiny_pages(n: usize) -> InMemoryPairs {
        let mut src = InMemoryPairs::new();
        for i in 0..n {
            src.push(format!("p{i}"), RgbImage::new(2, 2), RgbImage::new(2, 2));
        }
        src
    }

    #[test]
    fn cache_is_bounded() {
        let src = tiny_pages(5);
        let store = PageStore::new(&src, 2);
        store.scan(&[0, 1, 2, 3, 4]);
        assert_eq!(store.cached(), 2);
    }

    #[test]
    fn a_released_page_leaves_the_cache_unless_every_page_fits() {
        let src = tiny_pages(3);
        let store = PageStore::new(&src, 2);
        store.set_pages_in_play(3);
        store.scan(&[0, 1]);
        assert_eq!(store.cached(), 2);
        store.release(1);
        store.release(7);
        assert_eq!(store.cached(), 1, "three pages in play, room for two");
        assert_eq!(store.cached_bytes(), 24);
        assert!(store.get(1).is_some());
        assert_eq!(store.cached(), 2);

        // Every page fits: released pages stay for the next pass.
        let roomy = PageStore::new(&src, 8);
        roomy.set_pages_in_play(3);
        roomy.scan(&[0, 1, 2]);
        roomy.release(1);
        assert_eq!(roomy.cached(), 3);
    }

    #[test]
    fn cache_is_bounded_in_bytes_but_keeps_the_latest_page() {
        let mut src = InMemoryPairs::new();
        for i in 0..6 {
            // 100x100 RGB pairs: 60,000 bytes each.
            src.push(
                format!("p{i}"),
                RgbImage::new(100, 100),
                RgbImage::new(100, 100),
            );
        }
        let store = PageStore::with_budget(&src, 64, 150_000);
        store.scan(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(store.cached(), 2, "two 60 kB pairs fit in 150 kB");
        assert_eq!(store.cached_bytes(), 120_000);
        let tiny = PageStore::with_budget(&src, 64, 1_000);
        tiny.scan(&[0, 1, 2]);
        assert_eq!(tiny.cached(), 1, "the latest page stays even over budget");
        assert!(tiny.get(2).is_some());
    }
}
