//! Training data: aligned clean/degraded page pairs, a page-level
//! train/validation split, a bounded page cache and a seeded patch sampler.

mod sampler;
mod store;

pub use sampler::{
    DAMAGE_INK_WEIGHT, DAMAGE_TRIES, DEFAULT_POOL_PATCHES, INK_LUMA, INK_SHARE, INK_TRIES,
    PatchSampler, PatchSampling, SamplerState, damage_score, dihedral_index, ink_share,
};
pub use store::{PageStore, Pair};

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::Result;

/// Where page pairs come from: memory, a directory, or an object store the
/// caller adapts. Indices run over `0..len()` and must be stable for a run.
pub trait PairSource {
    /// Number of pages.
    fn len(&self) -> usize;
    /// Loads page `index` as `(clean, degraded)`; both should have one size.
    fn load(&self, index: usize) -> Result<(RgbImage, RgbImage)>;
    /// A stable identifier for page `index` (file name, object key); the
    /// validation split hashes it, so it decides which side a page lands on.
    fn page_id(&self, index: usize) -> String;
    /// Whether there are no pages.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pages held in memory, for tests and small datasets.
#[derive(Debug, Clone, Default)]
pub struct InMemoryPairs {
    pages: Vec<(String, RgbImage, RgbImage)>,
}

impl InMemoryPairs {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `(clean, degraded)` page under `id`.
    pub fn push(&mut self, id: impl Into<String>, clean: RgbImage, degraded: RgbImage) {
        self.pages.push((id.into(), clean, degraded));
    }
}

impl PairSource for InMemoryPairs {
    fn len(&self) -> usize {
        self.pages.len()
    }

    fn load(&self, index: usize) -> Result<(RgbImage, RgbImage)> {
        let (_, c, d) = self
            .pages
            .get(index)
            .ok_or_else(|| crate::Error::Data(format!("page index {index} out of range")))?;
        Ok((c.clone(), d.clone()))
    }

    fn page_id(&self, index: usize) -> String {
        self.pages
            .get(index)
            .map(|(id, _, _)| id.clone())
            .unwrap_or_default()
    }
}

/// Page indices on each side of the validation split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training pages, ascending.
    pub train: Vec<usize>,
    /// Validation pages, ascending.
    pub val: Vec<usize>,
}

/// Splits pages (never patches) into train and validation.
///
/// Each page is ranked by `SHA-256(seed as little-endian u64 || page_id)`; the
/// lowest `round(len * val_fraction)` ranks go to validation. When
/// `val_fraction > 0` and there are at least two pages, each side gets at least
/// one page. The split depends only on the seed and the set of page ids, not
/// on the order the source lists them.
pub fn split_pages(source: &dyn PairSource, val_fraction: f64, seed: u64) -> Split {
    let n = source.len();
    let mut k = (n as f64 * val_fraction.clamp(0.0, 1.0)).round() as usize;
    if val_fraction > 0.0 && n >= 2 {
        k = k.clamp(1, n - 1);
    }
    let mut ranked: Vec<([u8; 32], usize)> = (0..n)
        .map(|i| {
            let mut h = Sha256::new();
            h.update(seed.to_le_bytes());
            h.update(source.page_id(i).as_bytes());
            (h.finalize().into(), i)
        })
        .collect();
    ranked.sort();
    let mut val: Vec<usize> = ranked[..k].iter().map(|&(_, i)| i).collect();
    let mut train: Vec<usize> = ranked[k..].iter().map(|&(_, i)| i).collect();
    val.sort_unstable();
    train.sort_unstable();
    Split { train, val }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: usize) -> InMemoryPairs {
        let mut p = InMemoryPairs::new();
        for i in 0..n {
            p.push(
                format!("page-{i}"),
                RgbImage::new(4, 4),
                RgbImage::new(4, 4),
            );
        }
        p
    }

    #[test]
    fn split_is_disjoint_complete_and_seeded() {
        let src = pages(20);
        let s = split_pages(&src, 0.25, 7);
        assert_eq!(s.val.len(), 5);
        assert_eq!(s.train.len(), 15);
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(split_pages(&src, 0.25, 7), s);
        assert_ne!(split_pages(&src, 0.25, 8).val, s.val);
    }

    #[test]
    fn split_keeps_one_page_each_side() {
        let s = split_pages(&pages(2), 0.01, 1);
        assert_eq!((s.train.len(), s.val.len()), (1, 1));
        let s = split_pages(&pages(3), 0.0, 1);
        assert_eq!((s.train.len(), s.val.len()), (3, 0));
    }
}
