//! Seeded random patches with identical dihedral augmentation on both sides.

use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::PageStore;
use crate::{Error, Result};

/// How many page draws may hit skipped pages in a row before giving up.
const MAX_DRAWS_PER_ITEM: usize = 1000;

/// Candidate positions tried per patch by [`PatchSampling::Ink`].
pub const INK_TRIES: usize = 4;
/// Share of ink pixels that makes a candidate patch acceptable at once.
pub const INK_SHARE: f64 = 0.03;
/// Clean-page luma (0-255, BT.601) below which a pixel counts as ink.
pub const INK_LUMA: u32 = 150;
/// Candidate positions scored per patch by [`PatchSampling::Damage`].
pub const DAMAGE_TRIES: usize = 4;
/// How much more a clean-page ink pixel's damage counts than a paper
/// pixel's in [`damage_score`] (the text is what a reader needs back).
pub const DAMAGE_INK_WEIGHT: f64 = 4.0;
/// Patches a page gives while in the pool when the run does not say
/// (a run sized by `steps_per_epoch` rather than by patches per page).
pub const DEFAULT_POOL_PATCHES: u32 = 4;

/// How a patch position is chosen inside a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchSampling {
    /// Uniformly over the page.
    #[default]
    Uniform,
    /// Prefer patches with ink: up to [`INK_TRIES`] uniform candidates are
    /// drawn and the first whose clean side has at least [`INK_SHARE`] ink
    /// pixels is taken, else the inkiest of them. Blank margin still appears
    /// (pages without enough ink anywhere, and the odd unlucky draw), so the
    /// model keeps learning to clean paper too.
    Ink,
    /// Go where the page is damaged: of [`DAMAGE_TRIES`] uniform candidates,
    /// take the one whose degraded side differs most from its clean side,
    /// ink pixels counting `1 +` [`DAMAGE_INK_WEIGHT`] times a paper pixel
    /// ([`damage_score`]). Pages are drawn exactly as with the other modes;
    /// only the position inside the page moves: to the faded, recoloured or
    /// broken words, the stain or the dirt, rather than to text the identity
    /// map already gets right.
    Damage,
}

/// Where a sampler is: enough to continue it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    /// The seed the ChaCha8 stream started from.
    pub seed: u64,
    /// Words consumed so far (a `u128`, as a decimal string for JSON).
    pub word_pos: String,
    /// Pages of the current pass not yet admitted to the pool (taken from
    /// the end). Absent in checkpoints written before the pool existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<usize>,
    /// Pages in the pool and the patches each still gives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<(usize, u32)>,
}

/// Draws training batches from a pool of pages: every pass over the
/// training split admits each page once, in a fresh random order, and an
/// admitted page gives `patches_per_page` patches before it leaves. Each
/// patch comes from a page drawn uniformly from the pool, at a position
/// inside it (uniform, or preferring ink), under one of the 8 dihedral
/// transforms (flips and 90-degree rotations) applied to both images alike.
///
/// The pool holds a third of the pages the [`PageStore`] can keep decoded, so a
/// page is decoded about once per pass however large the split is (drawing
/// a page uniformly from the whole split decoded a page for almost every
/// patch once the split outgrew the cache), while a batch still mixes pages
/// from across the pool. A page that gave its last patch is released to
/// the store, which drops it when the run's pages do not all fit, so the
/// decoded pages in memory are then the pool's, reached within the first
/// steps of a run, not a cache that fills over its first pass.
///
/// All randomness comes from one ChaCha8 stream; [`PatchSampler::state`]
/// captures its position and the pool, so a restored sampler continues the
/// identical sequence. Unusable pages are drawn and rejected, which consumes
/// the same randomness whether or not they were already known to be unusable.
#[derive(Debug, Clone)]
pub struct PatchSampler {
    seed: u64,
    rng: ChaCha8Rng,
    patches_per_page: u32,
    queue: Vec<usize>,
    pool: Vec<(usize, u32)>,
}

/// Maps output position `(row, col)` of a `p x p` patch to its source
/// position under dihedral transform `t` (0..8: bit 2 flips columns, bits
/// 0-1 count quarter turns).
pub fn dihedral_index(t: u8, row: usize, col: usize, p: usize) -> (usize, usize) {
    let (mut r, mut c) = (row, col);
    if t & 4 != 0 {
        c = p - 1 - c;
    }
    for _ in 0..(t & 3) {
        (r, c) = (c, p - 1 - r);
    }
    (r, c)
}

impl PatchSampler {
    /// A sampler at the start of the stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            patches_per_page: DEFAULT_POOL_PATCHES,
            queue: Vec::new(),
            pool: Vec::new(),
        }
    }

    /// Sets how many patches a page gives per pass (at least 1); pages
    /// already in the pool keep what they have left.
    pub fn with_patches_per_page(mut self, patches: u32) -> Self {
        self.patches_per_page = patches.max(1);
        self
    }

    /// The current stream position and pool.
    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.seed,
            word_pos: self.rng.get_word_pos().to_string(),
            queue: self.queue.clone(),
            pool: self.pool.clone(),
        }
    }

    /// A sampler continuing exactly where `state` was taken.
    pub fn from_state(state: &SamplerState) -> Result<Self> {
        let pos: u128 = state
            .word_pos
            .parse()
            .map_err(|_| Error::Checkpoint(format!("bad sampler position {:?}", state.word_pos)))?;
        let mut s = Self::new(state.seed);
        s.rng.set_word_pos(pos);
        s.queue = state.queue.clone();
        s.pool = state.pool.clone();
        Ok(s)
    }

    /// A batch of `batch` patches of `patch x patch` pixels as
    /// `(degraded, clean)`, each `[batch, 3, patch, patch]` f32 in `[0, 1]`.
    ///
    /// Pages smaller than the patch are extended by repeating their edge pixels.
    pub fn sample(
        &mut self,
        store: &PageStore<'_>,
        train: &[usize],
        batch: usize,
        patch: usize,
        sampling: PatchSampling,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        if train.is_empty() {
            return Err(Error::Data("no training pages".into()));
        }
        let plane = patch * patch;
        let mut deg = vec![0f32; batch * 3 * plane];
        let mut cln = vec![0f32; batch * 3 * plane];
        for b in 0..batch {
            let pair = self.draw_page(store, train)?;
            let (x0, y0) = match sampling {
                PatchSampling::Uniform => self.position(&pair.clean, patch),
                PatchSampling::Ink => {
                    self.best_position(&pair.clean, patch, INK_TRIES, Some(INK_SHARE), |x, y| {
                        ink_share(&pair.clean, x, y, patch)
                    })
                }
                PatchSampling::Damage => {
                    self.best_position(&pair.clean, patch, DAMAGE_TRIES, None, |x, y| {
                        damage_score(&pair.degraded, &pair.clean, x, y, patch)
                    })
                }
            };
            let t: u8 = self.rng.random_range(0..8);
            let off = b * 3 * plane;
            write_patch(
                &pair.degraded,
                &mut deg[off..off + 3 * plane],
                x0,
                y0,
                patch,
                t,
            );
            write_patch(
                &pair.clean,
                &mut cln[off..off + 3 * plane],
                x0,
                y0,
                patch,
                t,
            );
        }
        let shape = (batch, 3, patch, patch);
        Ok((
            Tensor::from_vec(deg, shape, device)?,
            Tensor::from_vec(cln, shape, device)?,
        ))
    }

    /// Of up to `tries` uniform positions, the first that scores at least
    /// `enough` (when given), else the best scoring one (the first of equals).
    fn best_position(
        &mut self,
        img: &RgbImage,
        patch: usize,
        tries: usize,
        enough: Option<f64>,
        score: impl Fn(usize, usize) -> f64,
    ) -> (usize, usize) {
        let mut best: Option<(f64, (usize, usize))> = None;
        for _ in 0..tries {
            let pos = self.position(img, patch);
            let v = score(pos.0, pos.1);
            if best.is_none_or(|b| v > b.0) {
                best = Some((v, pos));
            }
            if enough.is_some_and(|e| v >= e) {
                break;
            }
        }
        best.map_or((0, 0), |b| b.1)
    }

    /// A uniform top-left corner for a `patch` square inside `img` (0 along
    /// a side shorter than the patch).
    fn position(&mut self, img: &RgbImage, patch: usize) -> (usize, usize) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let x0 = if w > patch {
            self.rng.random_range(0..=w - patch)
        } else {
            0
        };
        let y0 = if h > patch {
            self.rng.random_range(0..=h - patch)
        } else {
            0
        };
        (x0, y0)
    }

    fn draw_page(
        &mut self,
        store: &PageStore<'_>,
        train: &[usize],
    ) -> Result<std::rc::Rc<super::Pair>> {
        // A third of what the cache holds, so pool pages are rarely the least
        // recently used when a newly admitted page evicts one.
        let target = (store.room() / 3).clamp(1, train.len());
        for _ in 0..MAX_DRAWS_PER_ITEM {
            while self.pool.len() < target {
                if self.queue.is_empty() {
                    // A new pass: every training page once, in a fresh order.
                    self.queue = train.to_vec();
                    self.queue.shuffle(&mut self.rng);
                }
                let Some(idx) = self.queue.pop() else { break };
                self.pool.push((idx, self.patches_per_page));
            }
            if self.pool.is_empty() {
                break;
            }
            let slot = self.rng.random_range(0..self.pool.len());
            let (idx, left) = self.pool[slot];
            match store.get(idx) {
                Some(p) => {
                    if left <= 1 {
                        // Its last patch: the page is not drawn again
                        // before the next pass.
                        self.pool.swap_remove(slot);
                        store.release(idx);
                    } else {
                        self.pool[slot].1 = left - 1;
                    }
                    return Ok(p);
                }
                None => {
                    self.pool.swap_remove(slot);
                }
            }
        }
        Err(Error::Data(format!(
            "{MAX_DRAWS_PER_ITEM} page draws in a row were unusable; skipped: {:?}",
            store.skipped()
        )))
    }
}

/// Share of ink pixels (luma below [`INK_LUMA`]) in the `patch` square at
/// `(x0, y0)` of `img`, counted on every other row and column.
pub fn ink_share(img: &RgbImage, x0: usize, y0: usize, patch: usize) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let (mut ink, mut n) = (0u32, 0u32);
    for y in (y0..(y0 + patch).min(h)).step_by(2) {
        for x in (x0..(x0 + patch).min(w)).step_by(2) {
            ink += u32::from(luma_at(raw, (y * w + x) * 3) < INK_LUMA);
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        f64::from(ink) / f64::from(n)
    }
}

/// How damaged the `patch` square at `(x0, y0)` is: the mean absolute
/// difference of BT.601 luma (0-255) between `degraded` and `clean`, each
/// pixel weighted `1 +` [`DAMAGE_INK_WEIGHT`] where the clean page has ink
/// (luma below [`INK_LUMA`]), counted on every other row and column. Zero
/// where the degraded page equals the clean one; pixels outside either
/// image do not count.
pub fn damage_score(
    degraded: &RgbImage,
    clean: &RgbImage,
    x0: usize,
    y0: usize,
    patch: usize,
) -> f64 {
    let w = clean.width().min(degraded.width()) as usize;
    let h = clean.height().min(degraded.height()) as usize;
    let (dw, cw) = (degraded.width() as usize, clean.width() as usize);
    let (d, c) = (degraded.as_raw(), clean.as_raw());
    let (mut sum, mut n) = (0f64, 0u32);
    for y in (y0..(y0 + patch).min(h)).step_by(2) {
        for x in (x0..(x0 + patch).min(w)).step_by(2) {
            let lc = luma_at(c, (y * cw + x) * 3);
            let ld = luma_at(d, (y * dw + x) * 3);
            let weight = if lc < INK_LUMA {
                1.0 + DAMAGE_INK_WEIGHT
            } else {
                1.0
            };
            sum += weight * f64::from(lc.abs_diff(ld));
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / f64::from(n) }
}

/// BT.601 luma (0-255, integer) of the pixel starting at byte `i`.
fn luma_at(raw: &[u8], i: usize) -> u32 {
    (299 * u32::from(raw[i]) + 587 * u32::from(raw[i + 1]) + 114 * u32::from(raw[i + 2])) / 1000
}

/// Writes one transformed patch, CHW, into `out` (3 * patch * patch values).
fn write_patch(img: &RgbImage, out: &mut [f32], x0: usize, y0: usize, patch: usize, t: u8) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let plane = patch * patch;
    for r in 0..patch {
        for c in 0..patch {
            let (sr, sc) = dihedral_index(t, r, c, patch);
            let y = (y0 + sr).min(h - 1);
            let x = (x0 + sc).min(w - 1);
            let src = (y * w + x) * 3;
            for ch in 0..3 {
                out[ch * plane + r * patch + c] = f32::from(raw[src + ch]) / 255.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::InMemoryPairs;

    fn page(seed: u8) -> RgbImage {
        RgbImage::from_fn(13, 11, |x, y| {
            image::Rgb([(x * 17 + y) as u8 ^ seed, (y * 23) as u8, (x + y * 5) as u8])
        })
    }

    #[test]
    fn dihedral_maps_are_distinct_bijections() {
        let p = 3;
        let mut seen = Vec::new();
        for t in 0..8 {
            let map: Vec<_> = (0..p * p)
                .map(|i| dihedral_index(t, i / p, i % p, p))
                .collect();
            let mut sorted = map.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), p * p, "transform {t} is not a bijection");
            assert!(!seen.contains(&map), "transform {t} repeats another");
            seen.push(map);
        }
    }

    #[test]
    fn both_sides_get_the_same_crop_and_transform() {
        let mut src = InMemoryPairs::new();
        let clean = page(5);
        let degraded = RgbImage::from_fn(13, 11, |x, y| {
            let p = clean.get_pixel(x, y).0;
            image::Rgb([p[1], p[2], p[0]])
        });
        src.push("a", clean, degraded);
        let store = PageStore::new(&src, 2);
        let mut s = PatchSampler::new(11);
        let (d, c) = s
            .sample(&store, &[0], 6, 8, PatchSampling::Uniform, &Device::Cpu)
            .unwrap();
        // degraded channel 0 must equal clean channel 1 everywhere.
        let d0 = d
            .narrow(1, 0, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let c1 = c
            .narrow(1, 1, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(d0, c1);
    }

    #[test]
    fn restored_state_continues_the_stream() {
        let mut src = InMemoryPairs::new();
        for i in 0..12 {
            src.push(format!("p{i}"), page(i), page(i));
        }
        let train: Vec<usize> = (0..12).collect();
        let store = PageStore::new(&src, 8);
        let mut a = PatchSampler::new(42).with_patches_per_page(3);
        a.sample(&store, &train, 5, 5, PatchSampling::Ink, &Device::Cpu)
            .unwrap();
        let state = a.state();
        assert!(!state.pool.is_empty() && !state.queue.is_empty());
        // Through JSON, as a checkpoint stores it.
        let state: SamplerState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        let mut b = PatchSampler::from_state(&state)
            .unwrap()
            .with_patches_per_page(3);
        for _ in 0..6 {
            let (x, _) = a
                .sample(&store, &train, 5, 5, PatchSampling::Ink, &Device::Cpu)
                .unwrap();
            let (y, _) = b
                .sample(&store, &train, 5, 5, PatchSampling::Ink, &Device::Cpu)
                .unwrap();
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(x, y);
        }
    }

    /// Pages of one flat grey each (page `i` has value `10 + 5 i`), counting
    /// how often each is decoded.
    struct Counting {
        pages: InMemoryPairs,
        loads: std::cell::RefCell<Vec<u32>>,
    }

    impl Counting {
        fn new(n: usize) -> Self {
            let mut pages = InMemoryPairs::new();
            for i in 0..n {
                let v = 10 + 5 * i as u8;
                let img = RgbImage::from_pixel(24, 20, image::Rgb([v, v, v]));
                pages.push(format!("p{i}"), img.clone(), img);
            }
            Self {
                pages,
                loads: std::cell::RefCell::new(vec![0; n]),
            }
        }

        /// The page a patch came from, by its grey value.
        fn page_of(patch: &[f32]) -> usize {
            ((patch[0] * 255.0).round() as usize - 10) / 5
        }
    }

    impl crate::data::PairSource for Counting {
        fn len(&self) -> usize {
            self.pages.len()
        }
        fn load(&self, index: usize) -> crate::Result<(RgbImage, RgbImage)> {
            self.loads.borrow_mut()[index] += 1;
            self.pages.load(index)
        }
        fn page_id(&self, index: usize) -> String {
            self.pages.page_id(index)
        }
    }

    #[test]
    fn a_pass_decodes_each_page_once_and_cuts_it_into_its_patches() {
        // 40 pages, a cache of 16 (a pool of 5), 4 patches a page: one pass
        // is 160 patches. Drawing pages uniformly from the split decoded
        // a page for most patches once the split outgrew the cache.
        let src = Counting::new(40);
        let store = PageStore::new(&src, 16);
        store.set_pages_in_play(40);
        let train: Vec<usize> = (0..40).collect();
        let mut s = PatchSampler::new(7).with_patches_per_page(4);
        let mut drawn = [0u32; 40];
        let mut pages_per_batch = Vec::new();
        for _ in 0..40 {
            let (d, _) = s
                .sample(&store, &train, 4, 8, PatchSampling::Uniform, &Device::Cpu)
                .unwrap();
            let v = d.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut batch: Vec<usize> = v.chunks(3 * 64).map(Counting::page_of).collect();
            for &p in &batch {
                drawn[p] += 1;
            }
            batch.sort_unstable();
            batch.dedup();
            pages_per_batch.push(batch.len());
        }
        // The next pass has begun (its pages left the queue into the pool):
        // every admission of a page gives 4 patches, drawn or still to come.
        let state = s.state();
        let admitted: Vec<u32> = (0..40)
            .map(|p| 1 + u32::from(!state.queue.is_empty() && !state.queue.contains(&p)))
            .collect();
        for p in 0..40 {
            let left: u32 = state.pool.iter().filter(|e| e.0 == p).map(|e| e.1).sum();
            assert_eq!(drawn[p] + left, 4 * admitted[p], "page {p}");
        }
        // Each admission decodes the page at most once (a page readmitted
        // while still cached is not decoded again).
        let loads = src.loads.borrow();
        for p in 0..40 {
            assert!(
                loads[p] >= 1 && loads[p] <= admitted[p],
                "page {p}: {loads:?}"
            );
        }
        let mixed = pages_per_batch.iter().filter(|&&n| n >= 3).count();
        assert!(mixed >= 20, "batches mix pages: {pages_per_batch:?}");
        // Pages that gave their patches are released: the cache holds no
        // more than the pool, not the 16 pages it could.
        assert!(store.cached() <= 5, "{} pages cached", store.cached());
    }

    #[test]
    fn the_pool_fits_the_byte_budget_of_large_pages() {
        // Pairs of 24 x 20 x 3 x 2 = 2,880 bytes under a 6,000-byte budget:
        // two fit, so the pool holds one page and no page is decoded twice.
        let src = Counting::new(10);
        let store = PageStore::with_budget(&src, 64, 6_000);
        let train: Vec<usize> = (0..10).collect();
        let mut s = PatchSampler::new(1).with_patches_per_page(3);
        for _ in 0..10 {
            s.sample(&store, &train, 3, 4, PatchSampling::Uniform, &Device::Cpu)
                .unwrap();
        }
        assert_eq!(store.room(), 2);
        assert_eq!(*src.loads.borrow(), vec![1; 10]);
    }

    #[test]
    fn a_state_without_a_pool_still_loads() {
        // Checkpoints written before the pool have only seed and position.
        let state: SamplerState = serde_json::from_str(r#"{"seed":5,"word_pos":"64"}"#).unwrap();
        let s = PatchSampler::from_state(&state).unwrap();
        assert_eq!(s.state(), state);
    }

    enum Side {
        Degraded,
        Clean,
    }

    /// Of 400 patches of 32 px drawn from page 0 of `store`, how many
    /// (CHW, 3 x 32 x 32 values in [0, 1]) on `side` satisfy `pred`.
    fn count_patches(
        store: &PageStore<'_>,
        seed: u64,
        sampling: PatchSampling,
        side: Side,
        pred: impl Fn(&[f32]) -> bool,
    ) -> usize {
        let (d, c) = PatchSampler::new(seed)
            .sample(store, &[0], 400, 32, sampling, &Device::Cpu)
            .unwrap();
        let t = match side {
            Side::Degraded => d,
            Side::Clean => c,
        };
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.chunks(3 * 32 * 32).filter(|p| pred(p)).count()
    }

    #[test]
    fn ink_sampling_finds_the_text_on_a_mostly_blank_page() {
        // A white 256 x 256 page with one dark 32 x 32 block of "ink" in a corner:
        // a uniform 32 px patch overlaps it about 4% of the time.
        let clean = RgbImage::from_fn(256, 256, |x, y| {
            if (200..232).contains(&x) && (200..232).contains(&y) {
                image::Rgb([20, 20, 20])
            } else {
                image::Rgb([250, 250, 245])
            }
        });
        let mut src = InMemoryPairs::new();
        src.push("p", clean.clone(), clean);
        let store = PageStore::new(&src, 1);
        let with_ink = |sampling| {
            count_patches(&store, 3, sampling, Side::Clean, |p| {
                p.iter().filter(|&&x| x < 0.5).count() as f64 >= INK_SHARE * p.len() as f64
            })
        };
        let (uniform, ink) = (
            with_ink(PatchSampling::Uniform),
            with_ink(PatchSampling::Ink),
        );
        assert!(
            uniform < 60,
            "uniform sampling hit the ink {uniform} times of 400"
        );
        assert!(
            ink > 2 * uniform,
            "ink sampling hit the ink {ink} times, uniform {uniform}"
        );
    }

    #[test]
    fn ink_share_counts_dark_pixels() {
        let img = RgbImage::from_fn(8, 8, |x, _| {
            if x < 4 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        assert!((ink_share(&img, 0, 0, 8) - 0.5).abs() < 1e-9);
        assert_eq!(ink_share(&img, 4, 0, 4), 0.0);
        assert_eq!(ink_share(&img, 0, 0, 4), 1.0);
    }

    #[test]
    fn damage_sampling_goes_where_the_text_is_damaged() {
        // Clean: lines of "ink" (8 px dark, 8 px paper) over the whole page.
        // Degraded: the same, except that the ink inside one 32 x 32 square
        // is recoloured pale (luma ~200), the way a swapped-ink run leaves
        // some words and not the rest. Every position has ink, so ink
        // sampling takes its first candidate; damage sampling should find
        // the recoloured words.
        let pale = |x: u32, y: u32| (20..52).contains(&x) && (100..132).contains(&y);
        let clean = RgbImage::from_fn(256, 256, |_, y| {
            if (y / 8) % 2 == 0 {
                image::Rgb([20, 20, 20])
            } else {
                image::Rgb([250, 250, 245])
            }
        });
        let degraded = RgbImage::from_fn(256, 256, |x, y| {
            let c = *clean.get_pixel(x, y);
            if pale(x, y) && c.0[0] == 20 {
                image::Rgb([150, 220, 235])
            } else {
                c
            }
        });
        let mut src = InMemoryPairs::new();
        src.push("p", clean.clone(), degraded.clone());
        let store = PageStore::new(&src, 1);
        // Patches whose degraded side holds recoloured pixels.
        let plane = 32 * 32;
        let hits = |sampling| {
            count_patches(&store, 9, sampling, Side::Degraded, |p| {
                (0..plane).any(|i| p[i] < 0.7 && p[plane + i] > 0.8)
            })
        };
        // A uniform position overlaps the square about 6% of the time, the
        // best of 4 about 23%.
        let (ink, damage) = (hits(PatchSampling::Ink), hits(PatchSampling::Damage));
        assert!(
            damage > 2 * ink.max(10),
            "damage sampling reached the recoloured words {damage} times of 400, ink sampling {ink}"
        );
        assert_eq!(damage_score(&degraded, &clean, 200, 100, 32), 0.0);
    }

    #[test]
    fn damage_score_weighs_ink_pixels() {
        let flat = |v: [u8; 3]| RgbImage::from_pixel(8, 8, image::Rgb(v));
        let (black, white) = (flat([0, 0, 0]), flat([255, 255, 255]));
        let (pale, grey) = (flat([150, 220, 235]), flat([235, 235, 235]));
        let pale_luma = f64::from(luma_at(&[150, 220, 235], 0));
        assert_eq!(pale_luma, 200.0);
        // Ink recoloured pale: its luma change, counted 1 + weight times.
        let ink = damage_score(&pale, &black, 0, 0, 8);
        assert!(
            (ink - pale_luma * (1.0 + DAMAGE_INK_WEIGHT)).abs() < 1e-9,
            "{ink}"
        );
        // Paper greyed: its luma change, counted once.
        assert_eq!(damage_score(&grey, &white, 0, 0, 8), 20.0);
        assert_eq!(damage_score(&white, &white, 0, 0, 8), 0.0);
        // A square reaching past the page counts only the pixels inside it,
        // and one wholly outside it scores nothing.
        assert_eq!(damage_score(&grey, &white, 6, 6, 8), 20.0);
        assert_eq!(damage_score(&grey, &white, 8, 8, 8), 0.0);
    }

    #[test]
    fn small_pages_repeat_their_edges() {
        let mut src = InMemoryPairs::new();
        src.push("tiny", page(0), page(0));
        let store = PageStore::new(&src, 1);
        let (d, _) = PatchSampler::new(0)
            .sample(&store, &[0], 1, 16, PatchSampling::Uniform, &Device::Cpu)
            .unwrap();
        assert_eq!(d.dims(), &[1, 3, 16, 16]);
    }
}
