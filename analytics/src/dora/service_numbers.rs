//! Services as numbers: sorting, grouping and partitioning on a `u32`-sized integer moves no
//! strings. R4's per-service pass ([`super::lead_time`]) partitions ~27 million changes on them.

use std::sync::Arc;

use polars::prelude::*;

/// The column holding a service's number.
pub(super) const SERVICE_NUMBER: &str = "service_number";

/// The services a scope can name (those deployed to production and those with incidents),
/// numbered from 1 in their sorted order: 0 is null, and `len + 1` any other service.
#[derive(Clone)]
pub(super) struct ServiceNumbers {
    numbers: Arc<PlHashMap<String, u64>>,
    /// The names in number order, from number 1.
    names: Arc<Vec<String>>,
}

impl ServiceNumbers {
    /// Numbers the distinct values of the `services` string columns.
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
        Ok(Self {
            numbers: Arc::new(numbers),
            names: Arc::new(names),
        })
    }

    /// How many services are numbered; their numbers are `1..=len`.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The service a number stands for (`None` for 0, null, and for "unknown").
    pub(super) fn name(&self, number: u64) -> Option<&str> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.names.get(index).map(String::as_str)
    }

    /// A numbered service's number; `None` for any other.
    pub(super) fn number(&self, service: &str) -> Option<u64> {
        self.numbers.get(service).copied()
    }

    /// [`Self::number`] for rows that come in runs of one service: `last` saves looking each
    /// run up again.
    pub(super) fn number_in_run<'a>(
        &self,
        service: &'a str,
        last: &mut Option<(&'a str, Option<u64>)>,
    ) -> Option<u64> {
        match *last {
            Some((seen, number)) if seen == service => number,
            _ => {
                let number = self.number(service);
                *last = Some((service, number));
                number
            }
        }
    }

    /// A service's number: sorting on it sorts on the service, nulls first, as polars does.
    pub(super) fn service_number(&self, service: Expr) -> Expr {
        let numbers = self.clone();
        let unknown = numbers.len() as u64 + 1;
        service
            .map(
                move |column: Column| {
                    let mut last = None;
                    let numbers: UInt64Chunked = column
                        .str()?
                        .iter()
                        .map(|service| {
                            Some(service.map_or(0, |service| {
                                numbers.number_in_run(service, &mut last).unwrap_or(unknown)
                            }))
                        })
                        .collect();
                    Ok(numbers.into_column())
                },
                |_, field| Ok(Field::new(field.name().clone(), DataType::UInt64)),
            )
            .alias(SERVICE_NUMBER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_numbers_sort_like_the_names_nulls_first() -> PolarsResult<()> {
        let services = Column::new("service".into(), [Some("b"), None, Some("a"), Some("b")]);
        let numbers = ServiceNumbers::new([&services])?;
        let frame = df!("service" => [Some("b"), None, Some("a"), Some("zz")])?
            .lazy()
            .select([numbers.service_number(col("service"))])
            .collect()?;
        let got: Vec<Option<u64>> = frame.column(SERVICE_NUMBER)?.u64()?.iter().collect();
        assert_eq!(got, [Some(2), Some(0), Some(1), Some(3)]);
        assert_eq!((numbers.number("a"), numbers.number("zz")), (Some(1), None));
        assert_eq!((numbers.name(2), numbers.name(3)), (Some("b"), None));
        Ok(())
    }
}
