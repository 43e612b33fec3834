//! Made-up names, places, addresses and dates for letterheads, forms,
//! signatures, stamps and mastheads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::content::pick;

const FIRST_NAMES: &[&str] = &[
    "Alice", "Arthur", "Clara", "Edith", "Frank", "George", "Harriet", "Henry", "Isabel", "James",
    "Lucy", "Margaret", "Oliver", "Rose", "Thomas", "Walter", "Agnes", "Samuel",
];
const SURNAMES: &[&str] = &[
    "Harlow", "Finch", "Whitmore", "Ashby", "Caldwell", "Pryce", "Ogden", "Bramley", "Hale",
    "Lister", "Moreton", "Penrose", "Rudd", "Sefton", "Tarrant", "Vance", "Wardle", "Yates",
];
const PLACE_HEADS: &[&str] = &[
    "Ash", "Bel", "Brook", "Cal", "Dun", "Elm", "Fern", "Glen", "Hal", "Hart", "Kings", "Lang",
    "Mar", "Nor", "Oak", "Pem", "Red", "Ros", "Stan", "Thorn", "Wex", "Wil", "Ard", "Bram",
];
const PLACE_TAILS: &[&str] = &[
    "bury", "field", "ford", "gate", "haven", "hurst", "ley", "mere", "more", "stead", "ton",
    "vale", "well", "wick", "wood", "worth",
];
const COMPANY_KINDS: &[&str] = &[
    "& Co.",
    "Ltd",
    "Group",
    "Holdings",
    "Partners",
    "Trust",
    "Associates",
    "Insurance",
    "Engineering",
    "Press",
    "Bank",
    "Mutual",
    "Supplies",
    "Shipping",
    "Textiles",
    "Consulting",
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const STREETS: &[&str] = &[
    "Street", "Road", "Lane", "Avenue", "Place", "Terrace", "Row", "Square",
];

/// "Alice Harlow" or "A. Harlow".
pub(super) fn person_name(rng: &mut ChaCha8Rng) -> String {
    let first = *pick(rng, FIRST_NAMES);
    let last = *pick(rng, SURNAMES);
    if rng.random_bool(0.3) {
        format!("{}. {last}", &first[..1])
    } else {
        format!("{first} {last}")
    }
}

/// A made-up English place name such as "Thornbury".
pub(super) fn place(rng: &mut ChaCha8Rng) -> String {
    format!("{}{}", pick(rng, PLACE_HEADS), pick(rng, PLACE_TAILS))
}

/// "Thornbury Holdings" or "Harlow & Finch".
pub(super) fn company_name(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.3) {
        format!("{} & {}", pick(rng, SURNAMES), pick(rng, SURNAMES))
    } else {
        format!("{} {}", place(rng), pick(rng, COMPANY_KINDS))
    }
}

/// "14 Harbour Street, Thornbury".
pub(super) fn address(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{} {}{} {}, {}",
        rng.random_range(1..220),
        pick(rng, PLACE_HEADS),
        pick(rng, PLACE_TAILS),
        pick(rng, STREETS),
        place(rng)
    )
}

/// A calendar date as `(day, month 0-based, year)`.
pub(super) fn date(rng: &mut ChaCha8Rng) -> (u32, usize, u32) {
    (
        rng.random_range(1..=28),
        rng.random_range(0..12),
        rng.random_range(1948..2025),
    )
}

/// "3 March 1891" or "03/03/1891".
pub(super) fn date_text(rng: &mut ChaCha8Rng) -> String {
    let (d, m, y) = date(rng);
    if rng.random_bool(0.5) {
        format!("{d} {} {y}", MONTHS[m])
    } else {
        format!("{d:02}/{:02}/{y}", m + 1)
    }
}

/// A stamp date: "12 MAR 1998".
pub(super) fn stamp_date(rng: &mut ChaCha8Rng) -> String {
    let (d, m, y) = date(rng);
    format!("{d:02} {} {y}", MONTHS[m][..3].to_ascii_uppercase())
}

/// A long date line for a newspaper masthead.
pub(super) fn long_date(rng: &mut ChaCha8Rng) -> String {
    const DAYS: &[&str] = &[
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let (d, m, _) = date(rng);
    let year = rng.random_range(1850..1960);
    format!("{}, {} {d}, {year}", pick(rng, DAYS), MONTHS[m])
}
