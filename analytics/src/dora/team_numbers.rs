//! Teams as numbers, as [`super::service_numbers`] does for services: the pooling groups ~7
//! million deployments by team, and the lead time pass files each sample under its team; a
//! `u32` taken from the service's number does both without hashing a name per row.

use std::sync::Arc;

use polars::prelude::*;

use super::UNOWNED;
use super::service_numbers::ServiceNumbers;

/// The column holding a team's number.
pub(super) const TEAM_NUMBER: &str = "team_number";

/// Every numbered service's team (its first row in the services table, [`UNOWNED`] without
/// one), numbered from 0. A team named "unowned" is the same team as the unowned services.
#[derive(Clone)]
pub(super) struct TeamNumbers {
    names: Arc<Vec<String>>,
    /// By service number: index 0 (a null service) holds [`Self::NONE`], `len + 1` (a service
    /// that is not numbered) the unowned team.
    of_service: Arc<Vec<u32>>,
}

impl TeamNumbers {
    const NONE: u32 = u32::MAX;

    /// Numbers the teams of `services` from the `service` → `team` map (one row per service).
    pub(super) fn new(team_map: &DataFrame, services: &ServiceNumbers) -> PolarsResult<Self> {
        let mut team_of: PlHashMap<&str, &str> = PlHashMap::new();
        for (service, team) in team_map
            .column("service")?
            .str()?
            .iter()
            .zip(team_map.column("team")?.str()?.iter())
        {
            if let (Some(service), Some(team)) = (service, team) {
                team_of.entry(service).or_insert(team);
            }
        }
        let mut numbers: PlHashMap<String, u32> = PlHashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut number_of = |team: &str| -> u32 {
            if let Some(number) = numbers.get(team) {
                return *number;
            }
            let number = names.len() as u32;
            numbers.insert(team.to_owned(), number);
            names.push(team.to_owned());
            number
        };
        let mut of_service = Vec::with_capacity(services.len() + 2);
        of_service.push(Self::NONE);
        for number in 1..=services.len() as u64 {
            let team = services
                .name(number)
                .and_then(|service| team_of.get(service).copied())
                .unwrap_or(UNOWNED);
            of_service.push(number_of(team));
        }
        of_service.push(number_of(UNOWNED));
        Ok(Self {
            names: Arc::new(names),
            of_service: Arc::new(of_service),
        })
    }

    /// How many teams are numbered; their numbers are `0..len`.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The team a number stands for.
    pub(super) fn name(&self, number: u64) -> Option<&str> {
        self.names
            .get(usize::try_from(number).ok()?)
            .map(String::as_str)
    }

    /// The team of a numbered service; the unowned team for any other.
    pub(super) fn team_of(&self, service_number: Option<u64>) -> &str {
        let unowned = self.of_service.last().copied().unwrap_or(Self::NONE);
        let number = service_number
            .and_then(|service| usize::try_from(service).ok())
            .and_then(|service| self.of_service.get(service).copied())
            .filter(|team| *team != Self::NONE)
            .unwrap_or(unowned);
        self.name(u64::from(number)).unwrap_or(UNOWNED)
    }

    /// The team number of a service number column (a `u32`; null for a null service).
    pub(super) fn team_number(&self, service_number: Expr) -> Expr {
        let of_service = Arc::clone(&self.of_service);
        service_number
            .map(
                move |column: Column| {
                    let unowned = of_service.last().copied().unwrap_or(Self::NONE);
                    let teams: UInt32Chunked = column
                        .u64()?
                        .iter()
                        .map(|service| {
                            let service = usize::try_from(service?).ok()?;
                            let team = of_service.get(service).copied().unwrap_or(unowned);
                            (team != Self::NONE).then_some(team)
                        })
                        .collect();
                    Ok(teams.into_column())
                },
                |_, field| Ok(Field::new(field.name().clone(), DataType::UInt32)),
            )
            .alias(TEAM_NUMBER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::service_numbers::SERVICE_NUMBER;

    #[test]
    fn a_service_takes_its_first_listed_team_and_unlisted_ones_are_unowned() -> PolarsResult<()> {
        let services = Column::new("service".into(), ["a", "b", "c", "d"]);
        let numbers = ServiceNumbers::new([&services])?;
        let team_map = df!(
            "service" => [Some("a"), Some("b"), Some("d")],
            "team" => [Some("red"), Some("unowned"), None],
        )?;
        let teams = TeamNumbers::new(&team_map, &numbers)?;
        let frame =
            df!("service" => [Some("a"), Some("b"), Some("c"), Some("d"), None, Some("zz")])?
                .lazy()
                .select([numbers.service_number(col("service"))])
                .select([col(SERVICE_NUMBER), teams.team_number(col(SERVICE_NUMBER))])
                .collect()?;
        let names: Vec<Option<&str>> = frame
            .column(TEAM_NUMBER)?
            .u32()?
            .iter()
            .map(|n| n.and_then(|n| teams.name(u64::from(n))))
            .collect();
        assert_eq!(
            names,
            [
                Some("red"),
                Some("unowned"),
                Some("unowned"),
                Some("unowned"),
                None,
                Some("unowned")
            ]
        );
        assert_eq!(teams.len(), 2);
        assert_eq!(teams.team_of(numbers.number("a")), "red");
        assert_eq!(teams.team_of(numbers.number("zz")), "unowned");
        Ok(())
    }
}
