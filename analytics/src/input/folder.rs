//! A folder of `<table>.parquet` or `<table>.ndjson` files, read into normalised frames (and
//! written, for the generator).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{EventRecords, EventTables, frames};
use crate::error::{AnalyticsError, Result};

/// How a table is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Ndjson,
}

impl TableFormat {
    fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Ndjson => "ndjson",
        }
    }
}

/// What a column of an input table must hold.
#[derive(Clone, Copy)]
enum Field {
    Text,
    OptionalText,
    Instant,
    OptionalInstant,
    TextList,
}

const DEPLOYMENTS: &[(&str, Field)] = &[
    ("deploy_id", Field::Text),
    ("service", Field::Text),
    ("environment", Field::Text),
    ("status", Field::Text),
    ("kind", Field::OptionalText),
    ("commit_sha", Field::OptionalText),
    ("finished_at", Field::Instant),
    ("changes", Field::TextList),
];
const CHANGES: &[(&str, Field)] = &[
    ("sha", Field::Text),
    ("service", Field::Text),
    ("authored_at", Field::Instant),
];
const INCIDENTS: &[(&str, Field)] = &[
    ("incident_id", Field::Text),
    ("service", Field::OptionalText),
    ("created_at", Field::Instant),
    ("resolved_at", Field::OptionalInstant),
    ("deploy_id", Field::OptionalText),
    ("commit_sha", Field::OptionalText),
];
const SERVICES: &[(&str, Field)] = &[("service", Field::Text), ("team", Field::Text)];

/// Reads `deployments`, `changes` and `incidents` (required) and `services` (optional) from
/// `dir`, each as `.parquet` or else `.ndjson`.
pub fn read_dir(dir: &Path) -> Result<EventTables> {
    if !dir.is_dir() {
        return Err(AnalyticsError::InvalidOption(format!(
            "--input {}: not a folder",
            dir.display()
        )));
    }
    let deployments = read_table(dir, "deployments", DEPLOYMENTS, frames::deployments)?;
    let changes = read_table(dir, "changes", CHANGES, frames::changes)?;
    let incidents = read_table(dir, "incidents", INCIDENTS, frames::incidents)?;
    let services = if table_path(dir, "services").is_some() {
        Some(read_table(dir, "services", SERVICES, frames::services)?)
    } else {
        None
    };
    Ok(EventTables {
        deployments: deployments.ok_or_else(|| missing(dir, "deployments"))?,
        changes: changes.ok_or_else(|| missing(dir, "changes"))?,
        incidents: incidents.ok_or_else(|| missing(dir, "incidents"))?,
        services: services.flatten(),
    })
}

/// Writes every table to `dir` (created if needed) in `format`. Parquet time stamps are
/// `timestamp[us, UTC]`; NDJSON ones are RFC 3339 with `Z`.
pub fn write_dir(records: &EventRecords, dir: &Path, format: TableFormat) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| AnalyticsError::io(dir, e))?;
    match format {
        TableFormat::Ndjson => {
            write_ndjson(dir, "deployments", &records.deployments)?;
            write_ndjson(dir, "changes", &records.changes)?;
            write_ndjson(dir, "incidents", &records.incidents)?;
            if let Some(services) = &records.services {
                write_ndjson(dir, "services", services)?;
            }
        }
        TableFormat::Parquet => {
            write_parquet(
                dir,
                "deployments",
                frames::deployments(&records.deployments)?,
                &["finished_at"],
            )?;
            write_parquet(
                dir,
                "changes",
                frames::changes(&records.changes)?,
                &["authored_at"],
            )?;
            write_parquet(
                dir,
                "incidents",
                frames::incidents(&records.incidents)?,
                &["created_at", "resolved_at"],
            )?;
            if let Some(services) = &records.services {
                write_parquet(dir, "services", frames::services(services)?, &[])?;
            }
        }
    }
    Ok(())
}

fn missing(dir: &Path, table: &str) -> AnalyticsError {
    AnalyticsError::input(
        table,
        format!("no {table}.parquet or {table}.ndjson in {}", dir.display()),
    )
}

fn table_path(dir: &Path, table: &str) -> Option<(std::path::PathBuf, TableFormat)> {
    [TableFormat::Parquet, TableFormat::Ndjson]
        .into_iter()
        .map(|format| (dir.join(format!("{table}.{}", format.extension())), format))
        .find(|(path, _)| path.is_file())
}

fn read_table<T: DeserializeOwned>(
    dir: &Path,
    table: &str,
    fields: &[(&str, Field)],
    from_rows: fn(&[T]) -> PolarsResult<DataFrame>,
) -> Result<Option<LazyFrame>> {
    let Some((path, format)) = table_path(dir, table) else {
        return Ok(None);
    };
    let frame = match format {
        TableFormat::Ndjson => from_rows(&read_ndjson(&path, table)?)?.lazy(),
        TableFormat::Parquet => {
            let scan = LazyFrame::scan_parquet(
                PlRefPath::new(path.to_string_lossy().as_ref()),
                ScanArgsParquet::default(),
            )?;
            normalise(scan, table, fields)?
        }
    };
    Ok(Some(frame))
}

fn read_ndjson<T: DeserializeOwned>(path: &Path, table: &str) -> Result<Vec<T>> {
    let file = File::open(path).map_err(|e| AnalyticsError::io(path, e))?;
    let mut rows = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| AnalyticsError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|e| {
            AnalyticsError::input(table, format!("{}:{}: {e}", path.display(), index + 1))
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Checks a Parquet table's columns and maps them to the normalised schema: strings stay
/// strings, timestamps of any unit become UTC microseconds (naive ones are read as UTC), and a
/// missing optional column becomes nulls.
fn normalise(scan: LazyFrame, table: &str, fields: &[(&str, Field)]) -> Result<LazyFrame> {
    let mut scan = scan;
    let schema = scan.collect_schema()?;
    let mut columns = Vec::with_capacity(fields.len());
    for &(name, field) in fields {
        let dtype = schema.get(name);
        let expr = match (field, dtype) {
            (Field::OptionalText, None) => lit(NULL).cast(DataType::String),
            (Field::OptionalInstant, None) => lit(NULL).cast(DataType::Int64),
            (_, None) => {
                return Err(AnalyticsError::input(
                    table,
                    format!("the Parquet file has no column `{name}`"),
                ));
            }
            (Field::Text | Field::OptionalText, Some(DataType::String)) => col(name),
            (Field::Instant | Field::OptionalInstant, Some(DataType::Datetime(_, _))) => {
                col(name).dt().timestamp(TimeUnit::Microseconds)
            }
            (Field::TextList, Some(DataType::List(inner))) if **inner == DataType::String => {
                col(name)
            }
            (_, Some(found)) => {
                let wanted = match field {
                    Field::Text | Field::OptionalText => "a string",
                    Field::Instant | Field::OptionalInstant => "a timestamp",
                    Field::TextList => "a list of strings",
                };
                return Err(AnalyticsError::input(
                    table,
                    format!("column `{name}` must be {wanted}, found {found}"),
                ));
            }
        };
        columns.push(expr.alias(name));
    }
    Ok(scan.select(columns))
}

fn write_ndjson<T: Serialize>(dir: &Path, table: &str, rows: &[T]) -> Result<()> {
    let path = dir.join(format!("{table}.ndjson"));
    let file = File::create(&path).map_err(|e| AnalyticsError::io(&path, e))?;
    let mut out = BufWriter::new(file);
    for row in rows {
        serde_json::to_writer(&mut out, row)
            .map_err(|e| AnalyticsError::io(&path, std::io::Error::other(e)))?;
        out.write_all(b"\n")
            .map_err(|e| AnalyticsError::io(&path, e))?;
    }
    out.flush().map_err(|e| AnalyticsError::io(&path, e))
}

fn write_parquet(dir: &Path, table: &str, frame: DataFrame, instants: &[&str]) -> Result<()> {
    let path = dir.join(format!("{table}.parquet"));
    let utc = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    let casts: Vec<Expr> = instants
        .iter()
        .map(|name| col(*name).cast(utc.clone()))
        .collect();
    let mut frame = frame.lazy().with_columns(casts).collect()?;
    let file = File::create(&path).map_err(|e| AnalyticsError::io(&path, e))?;
    ParquetWriter::new(file).finish(&mut frame)?;
    Ok(())
}
