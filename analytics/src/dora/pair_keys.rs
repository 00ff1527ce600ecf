//! Exact integer keys for R4's `(service, sha)` pairs.
//!
//! R4 groups ~50 million `(service, sha)` rows at the benchmark's scale. Grouping on the two
//! strings hashes and moves 40-byte shas; grouping on one `u64` is about three times faster and
//! holds a fraction of the memory. The key must not change a single figure, so it is built to be
//! checked rather than trusted:
//! - only a *canonical* sha (40 lowercase hex digits, what git prints) gets a key; any other
//!   string keeps the string path, so `"ABC…"` and `"abc…"` stay different shas;
//! - the key packs the service's number in a dictionary and the sha's leading bits; the rest
//!   of the sha's 160 bits travel in two more `u64`s ([`PairKeys::middle`] and
//!   [`PairKeys::tail`]);
//! - each key group must have one value of each (`min == max`); a group that does not is two
//!   pairs whose shas share their leading bits, and the caller falls back to the string path.

use std::sync::Arc;

use polars::prelude::*;

/// Column names of the parts.
pub(super) const KEY: &str = "pair_key";
pub(super) const MIDDLE: &str = "sha_middle";
pub(super) const TAIL: &str = "sha_tail";
pub(super) const SERVICE_NUMBER: &str = "service_number";

/// The services a pair key can name, numbered; every other service shares one number no
/// shipped row has, so its rows never join a shipped pair. The numbers also sort the
/// deployments per service without comparing strings.
#[derive(Clone)]
pub(super) struct PairKeys {
    numbers: Arc<PlHashMap<String, u64>>,
    /// The names in number order, from number 1.
    names: Arc<Vec<String>>,
    /// The sha's leading bits kept in the key: 64 minus the bits the service numbers take.
    prefix_bits: u32,
}

impl PairKeys {
    /// Numbers the distinct values of the `services` string columns in their sorted order from
    /// 1; 0 is null, and `len + 1` any service not among them.
    pub(super) fn new<'a>(services: impl IntoIterator<Item = &'a Column>) -> PolarsResult<Self> {
        let mut unique = Vec::new();
        for column in services {
            unique.push(column.as_materialized_series().unique()?);
        }
        let mut names: Vec<&str> = Vec::new();
        for series in &unique {
            names.extend(series.str()?.iter().flatten());
        }
        names.sort_unstable();
        names.dedup();
        let numbers: PlHashMap<String, u64> = names
            .iter()
            .zip(1u64..)
            .map(|(service, number)| ((*service).to_owned(), number))
            .collect();
        let names = names.into_iter().map(str::to_owned).collect();
        // Numbers 0..=len+1 must fit above the prefix.
        let service_bits = u64::BITS - (numbers.len() as u64 + 1).leading_zeros();
        Ok(Self {
            numbers: Arc::new(numbers),
            names: Arc::new(names),
            prefix_bits: u64::BITS - service_bits,
        })
    }

    /// The service a number stands for (`None` for 0, null, and for "unknown").
    pub(super) fn name(&self, number: u64) -> Option<&str> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.names.get(index).map(String::as_str)
    }

    /// A service's number: sorting on it sorts on the service, nulls first, as polars does.
    pub(super) fn service_number(&self, service: Expr) -> Expr {
        let numbers = Arc::clone(&self.numbers);
        let unknown = numbers.len() as u64 + 1;
        service
            .map(
                move |column: Column| {
                    let mut last: Option<(&str, u64)> = None;
                    let numbers: UInt64Chunked = column
                        .str()?
                        .iter()
                        .map(|service| Some(number_of(&numbers, unknown, service, &mut last)))
                        .collect();
                    Ok(numbers.into_column())
                },
                |_, field| Ok(Field::new(field.name().clone(), DataType::UInt64)),
            )
            .alias(SERVICE_NUMBER)
    }

    /// The pair key of `service` and `sha` columns; null where the sha is not canonical.
    pub(super) fn key(&self, service: Expr, sha: Expr) -> Expr {
        let numbers = Arc::clone(&self.numbers);
        let prefix_bits = self.prefix_bits;
        let unknown = numbers.len() as u64 + 1;
        map_multiple(
            move |columns: &mut [Column]| {
                let services = columns[0].str()?;
                let shas = columns[1].str()?;
                let mut last = None;
                let keys: UInt64Chunked = services
                    .iter()
                    .zip(shas.iter())
                    .map(|(service, sha)| {
                        let (high, _, _) = canonical(sha?)?;
                        let number = number_of(&numbers, unknown, service, &mut last);
                        Some(pack(number, high, prefix_bits))
                    })
                    .collect();
                Ok(keys.with_name(KEY.into()).into_column())
            },
            [service, sha],
            |_, _| Ok(Field::new(KEY.into(), DataType::UInt64)),
        )
        .alias(KEY)
    }

    /// Bits 64..128 of a canonical sha (null otherwise). Only used on rows with a key, so it
    /// parses just its own digits.
    pub(super) fn middle(&self, sha: Expr) -> Expr {
        sha_part(sha, MIDDLE, |bytes| hex(&bytes[16..32]))
    }

    /// The sha's bits that are in neither the key nor [`Self::middle`]: the low
    /// `64 - prefix_bits` bits of the first 64, then the last 32 (null when not canonical).
    pub(super) fn tail(&self, sha: Expr) -> Expr {
        // Whole digits holding the bits the key left out of the first 64 (at most 16).
        let rest_digits = ((u64::BITS - self.prefix_bits) as usize).div_ceil(4);
        let rest_mask = u64::MAX >> self.prefix_bits;
        sha_part(sha, TAIL, move |bytes| {
            let rest = hex(&bytes[16 - rest_digits..16])? & rest_mask;
            Some((rest << 32) | hex(&bytes[32..40])?)
        })
    }
}

/// A `u64` from a 40-byte sha's digits; other lengths are null.
fn sha_part(
    sha: Expr,
    name: &'static str,
    part: impl Fn(&[u8]) -> Option<u64> + Send + Sync + 'static,
) -> Expr {
    sha.map(
        move |column: Column| {
            let parts: UInt64Chunked = column
                .str()?
                .iter()
                .map(|sha| {
                    let bytes = sha?.as_bytes();
                    if bytes.len() == 40 { part(bytes) } else { None }
                })
                .collect();
            Ok(parts.with_name(name.into()).into_column())
        },
        move |_, _| Ok(Field::new(name.into(), DataType::UInt64)),
    )
    .alias(name)
}

/// `service`'s number; rows come in runs of one service (a deployment's changes), so `last`
/// saves looking each run up again.
fn number_of<'a>(
    numbers: &PlHashMap<String, u64>,
    unknown: u64,
    service: Option<&'a str>,
    last: &mut Option<(&'a str, u64)>,
) -> u64 {
    let Some(service) = service else { return 0 };
    match *last {
        Some((seen, number)) if seen == service => number,
        _ => {
            let number = numbers.get(service).copied().unwrap_or(unknown);
            *last = Some((service, number));
            number
        }
    }
}

/// The service's number above the sha's leading `prefix_bits` bits.
fn pack(number: u64, high: u64, prefix_bits: u32) -> u64 {
    // prefix_bits is at most 63: the service numbers always take at least one bit.
    (number << prefix_bits) | (high >> (u64::BITS - prefix_bits))
}

/// A canonical sha's 160 bits as (bits 0..64, 64..128, 128..160); `None` for anything else.
pub(super) fn canonical(sha: &str) -> Option<(u64, u64, u32)> {
    let bytes = sha.as_bytes();
    if bytes.len() != 40 {
        return None;
    }
    let high = hex(&bytes[..16])?;
    let middle = hex(&bytes[16..32])?;
    let low = u32::try_from(hex(&bytes[32..])?).ok()?;
    Some((high, middle, low))
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

/// Lowercase hex digits only: `A`–`F`, signs and spaces make the sha non-canonical. A table
/// lookup per digit and one check at the end: ~60 million shas pass through here.
fn hex(digits: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut seen = 0u8;
    for digit in digits {
        let nibble = NIBBLES[usize::from(*digit)];
        seen |= nibble;
        value = (value << 4) | u64::from(nibble & 0x0f);
    }
    (seen & 0xf0 == 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0011223344556677deadbeef";

    #[test]
    fn only_forty_lowercase_hex_digits_are_canonical() {
        assert_eq!(
            canonical(SHA),
            Some((0x0123_4567_89ab_cdef, 0x0011_2233_4455_6677, 0xdead_beef))
        );
        assert_eq!(canonical(&SHA.to_uppercase()), None);
        assert_eq!(canonical(&SHA[..39]), None);
        assert_eq!(canonical(&format!("{SHA}0")), None);
        assert_eq!(canonical("+123456789abcdef0011223344556677deadbeef"), None);
        assert_eq!(canonical("c1"), None);
    }

    #[test]
    fn key_middle_and_tail_hold_every_bit_of_the_sha() -> PolarsResult<()> {
        let services = Column::new("service".into(), ["a", "b", "c"]);
        let keys = PairKeys::new([&services])?;
        // Numbers 0..=4 (null, three services, "unknown") take 3 bits: 61 of the sha's are in
        // the key.
        assert_eq!(keys.prefix_bits, 61);
        let frame = df!("service" => ["a", "zz", "a"], "sha" => [SHA, SHA, "not-a-sha"])?
            .lazy()
            .select([
                keys.key(col("service"), col("sha")),
                keys.middle(col("sha")),
                keys.tail(col("sha")),
            ])
            .collect()?;
        let key = frame.column(KEY)?.u64()?;
        let a = keys.numbers["a"];
        assert_eq!(a, 1);
        assert_eq!(key.get(0), Some((a << 61) | (0x0123_4567_89ab_cdef >> 3)));
        assert_eq!(key.get(1), Some((4 << 61) | (0x0123_4567_89ab_cdef >> 3)));
        assert_eq!(key.get(2), None);
        let middle = frame.column(MIDDLE)?.u64()?;
        assert_eq!(middle.get(0), Some(0x0011_2233_4455_6677));
        let tail = frame.column(TAIL)?.u64()?;
        // The 3 low bits of 0x…ef (0b111) above the last 32 bits.
        assert_eq!(tail.get(0), Some((0b111 << 32) | 0xdead_beef));
        assert_eq!(tail.get(2), None);
        Ok(())
    }

    #[test]
    fn service_numbers_sort_like_the_names_nulls_first() -> PolarsResult<()> {
        let services = Column::new("service".into(), [Some("b"), None, Some("a"), Some("b")]);
        let keys = PairKeys::new([&services])?;
        let numbers = df!("service" => [Some("b"), None, Some("a"), Some("zz")])?
            .lazy()
            .select([keys.service_number(col("service"))])
            .collect()?;
        let numbers: Vec<Option<u64>> = numbers.column(SERVICE_NUMBER)?.u64()?.iter().collect();
        assert_eq!(numbers, [Some(2), Some(0), Some(1), Some(3)]);
        Ok(())
    }
}
