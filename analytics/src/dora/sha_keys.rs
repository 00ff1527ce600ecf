//! Shas as small fixed-size keys that compare exactly as the strings do.
//!
//! R4 holds ~54 million shas at the benchmark's scale. As strings they take 56 bytes each
//! (a 16-byte view and 40 bytes of text); as keys, 21. A *canonical* sha (40 lowercase hex
//! digits, what git prints) is packed into 20 bytes behind a `0` tag. Any other string (a
//! short sha, `ABC…` next to `abc…`, a name in a test) is interned: it gets a number behind a
//! `1` tag, the same number wherever the same string appears. Two keys are equal exactly when
//! their strings are.

use std::collections::HashMap;

/// A sha's key; see the module.
pub(super) type ShaKey = [u8; 21];

const CANONICAL: u8 = 0;
const INTERNED: u8 = 1;

/// Where a list holds a null: no sha, and skipped wherever keys are compared.
pub(super) const NO_SHA: ShaKey = {
    let mut key = [0u8; 21];
    key[0] = 2;
    key
};

/// Turns shas into keys and back; holds the strings that are not canonical.
#[derive(Default)]
pub(super) struct ShaKeys {
    numbers: HashMap<String, u32>,
    strings: Vec<String>,
}

impl ShaKeys {
    /// The key of `sha`, interning it if it is not canonical.
    pub(super) fn key(&mut self, sha: &str) -> ShaKey {
        if let Some(key) = canonical(sha) {
            return key;
        }
        let number = match self.numbers.get(sha) {
            Some(number) => *number,
            None => {
                let number = self.strings.len() as u32;
                self.numbers.insert(sha.to_owned(), number);
                self.strings.push(sha.to_owned());
                number
            }
        };
        let mut key = [0u8; 21];
        key[0] = INTERNED;
        key[1..5].copy_from_slice(&number.to_le_bytes());
        key
    }

    /// The sha a key stands for.
    pub(super) fn text(&self, key: &ShaKey) -> String {
        if key[0] == INTERNED {
            let number = u32::from_le_bytes([key[1], key[2], key[3], key[4]]);
            return self
                .strings
                .get(number as usize)
                .cloned()
                .unwrap_or_default();
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(40);
        for byte in &key[1..] {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }
}

/// The packed key of 40 lowercase hex digits; `None` for any other string.
pub(super) fn canonical(sha: &str) -> Option<ShaKey> {
    let digits = sha.as_bytes();
    if digits.len() != 40 {
        return None;
    }
    let mut key = [0u8; 21];
    key[0] = CANONICAL;
    // One table lookup per digit and one check at the end: ~54 million shas pass through here.
    let mut seen = 0u8;
    for (byte, pair) in key[1..].iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        seen |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (seen & 0xf0 == 0).then_some(key)
}

/// The value of each lowercase hex digit; `INVALID` for every other byte.
const NIBBLES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};
const INVALID: u8 = 0xff;

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0011223344556677deadbeef";

    #[test]
    fn only_forty_lowercase_hex_digits_are_packed() {
        let key = canonical(SHA).expect("canonical");
        assert_eq!(key[0], CANONICAL);
        assert_eq!(&key[1..4], [0x01, 0x23, 0x45]);
        assert_eq!(key[20], 0xef);
        for other in [
            SHA.to_uppercase(),
            SHA[..39].to_owned(),
            format!("{SHA}0"),
            "+123456789abcdef0011223344556677deadbeef".to_owned(),
            "c1".to_owned(),
        ] {
            assert_eq!(canonical(&other), None, "{other}");
        }
    }

    #[test]
    fn keys_are_equal_exactly_when_the_strings_are() {
        let mut keys = ShaKeys::default();
        let upper = SHA.to_uppercase();
        let all = [SHA, upper.as_str(), "c1", "C1", "c1 "];
        let first: Vec<ShaKey> = all.iter().map(|sha| keys.key(sha)).collect();
        let again: Vec<ShaKey> = all.iter().map(|sha| keys.key(sha)).collect();
        assert_eq!(first, again);
        for (i, a) in first.iter().enumerate() {
            for b in &first[i + 1..] {
                assert_ne!(a, b);
            }
            assert_eq!(keys.text(a), all[i]);
        }
    }
}
