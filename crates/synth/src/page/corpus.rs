//! Sampling real English prose from the embedded corpus.
//!
//! The corpus mixes passages of 19th-century public-domain works with
//! original prose in the same register, one paragraph per blank-line block.

use std::sync::OnceLock;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

const CORPUS: &str = include_str!("corpus.txt");

/// Function words that make a phrase look cut off when it ends with them.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "but", "by", "for", "from", "had", "has", "have", "he", "her",
    "his", "i", "in", "into", "is", "it", "its", "my", "nor", "of", "on", "or", "our", "she", "so",
    "that", "the", "their", "them", "then", "they", "this", "those", "to", "upon", "was", "we",
    "were", "which", "who", "with", "would", "you", "be", "been", "not", "no", "all", "any", "one",
    "what", "when", "where", "whether", "there", "these", "than", "very", "more", "most", "some",
    "such",
];

fn is_stopword(word: &str) -> bool {
    let w = trim_punct(word).to_ascii_lowercase();
    STOPWORDS.contains(&w.as_str())
}

/// Drops trailing function words so a cut phrase still reads as complete.
pub(super) fn trim_tail<T: AsRef<str>>(words: &mut Vec<T>) {
    while words.len() > 1 && words.last().is_some_and(|w| is_stopword(w.as_ref())) {
        words.pop();
    }
}

/// Titles and honorifics whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] = &["Mr.", "Mrs.", "Dr.", "St.", "Messrs."];

/// The corpus split into sentences, computed once per process.
fn sentences() -> &'static [&'static str] {
    static SENTENCES: OnceLock<Vec<&'static str>> = OnceLock::new();
    SENTENCES.get_or_init(|| split_sentences(CORPUS))
}

fn split_sentences(text: &'static str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'.' | b'!' | b'?') {
            continue;
        }
        // A closing quote belongs to the sentence it closes.
        let mut end = i + 1;
        if bytes.get(end) == Some(&b'"') {
            end += 1;
        }
        let at_break = bytes.get(end).is_none_or(|c| c.is_ascii_whitespace());
        if !at_break {
            continue;
        }
        let candidate = text[start..end].trim();
        if ABBREVIATIONS.iter().any(|a| candidate.ends_with(a)) {
            continue;
        }
        if !candidate.is_empty() {
            out.push(candidate);
        }
        start = end;
    }
    let tail = text[start..].trim();
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

/// Words of `count` consecutive sentences starting at a random sentence.
pub(super) fn paragraph_words(rng: &mut ChaCha8Rng, count: usize) -> Vec<&'static str> {
    let all = sentences();
    let first = rng.random_range(0..all.len());
    (0..count)
        .flat_map(|k| all[(first + k) % all.len()].split_whitespace())
        .collect()
}

/// One sentence, cut to at most `max_words` words (ending with a period when cut).
pub(super) fn sentence(rng: &mut ChaCha8Rng, max_words: usize) -> Vec<String> {
    let all = sentences();
    let words: Vec<&str> = all[rng.random_range(0..all.len())]
        .split_whitespace()
        .collect();
    if words.len() <= max_words {
        return words.into_iter().map(str::to_owned).collect();
    }
    let mut out: Vec<String> = words[..max_words].iter().map(|w| (*w).to_owned()).collect();
    trim_tail(&mut out);
    if let Some(last) = out.last_mut() {
        let trimmed = trim_punct(last).to_owned();
        *last = format!("{trimmed}.");
    }
    out
}

/// A short title-cased phrase for headings, taken from the start of a clause.
pub(super) fn heading(rng: &mut ChaCha8Rng, max_words: usize) -> Vec<String> {
    let all = sentences();
    let words: Vec<&str> = all[rng.random_range(0..all.len())]
        .split_whitespace()
        .collect();
    // Start at the beginning of a clause, on a content word.
    let starts: Vec<usize> = (0..words.len())
        .filter(|&i| {
            (i == 0 || words[i - 1].ends_with(',') || words[i - 1].ends_with(';'))
                && !is_stopword(words[i])
        })
        .collect();
    let start = if starts.is_empty() {
        0
    } else {
        starts[rng.random_range(0..starts.len())]
    };
    let n = rng.random_range(2..=max_words.max(2));
    let mut out: Vec<&str> = Vec::with_capacity(n);
    for w in words[start..].iter().take(n) {
        out.push(w);
        // Stop at the end of the clause.
        if w.ends_with(|c: char| c.is_ascii_punctuation()) {
            break;
        }
    }
    trim_tail(&mut out);
    out.iter()
        .map(|w| capitalize(trim_punct(w)))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A single capitalised word of at least four letters, for table headers.
pub(super) fn noun(rng: &mut ChaCha8Rng) -> String {
    let all = sentences();
    loop {
        let words: Vec<&str> = all[rng.random_range(0..all.len())]
            .split_whitespace()
            .collect();
        let w = trim_punct(words[rng.random_range(0..words.len())]);
        if w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic()) && !is_stopword(w) {
            return capitalize(w);
        }
    }
}

fn trim_punct(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_ascii_alphanumeric())
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn corpus_is_real_prose() {
        let words = CORPUS.split_whitespace().count();
        assert!(words > 3000, "corpus has {words} words");
        assert!(
            CORPUS.is_ascii(),
            "fonts are checked for ASCII coverage only"
        );
        let s = sentences();
        assert!(s.len() > 120, "{} sentences", s.len());
        assert!(s.iter().all(|x| !x.ends_with("Mr.")));
    }

    #[test]
    fn sampling_is_deterministic() {
        let a = paragraph_words(&mut ChaCha8Rng::seed_from_u64(3), 4);
        let b = paragraph_words(&mut ChaCha8Rng::seed_from_u64(3), 4);
        assert_eq!(a, b);
        assert!(a.len() > 10);
        let h = heading(&mut ChaCha8Rng::seed_from_u64(5), 5);
        assert!(!h.is_empty() && h.len() <= 5);
        let n = noun(&mut ChaCha8Rng::seed_from_u64(5));
        assert!(n.chars().next().is_some_and(char::is_uppercase));
    }
}
