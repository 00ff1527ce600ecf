//! Inline SVG charts (plotters' SVG backend): no scripts, no fonts, no network.

use plotters::prelude::*;

use crate::dora::WeekPoint;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 280;
const ACCENT: RGBColor = RGBColor(37, 99, 235);
const WARN: RGBColor = RGBColor(220, 38, 38);

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn svg(
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Drawn,
    height: u32,
) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        if let Err(error) = draw(root) {
            return format!("<p class=\"chart-error\">chart unavailable: {error}</p>");
        }
    }
    // Scale with the page instead of a fixed pixel size.
    out.replacen(
        &format!("width=\"{WIDTH}\" height=\"{height}\""),
        "width=\"100%\" role=\"img\"",
        1,
    )
}

fn week_label(weekly: &[WeekPoint], index: usize) -> String {
    weekly
        .get(index)
        .map(|w| w.week_start.format("%d %b").to_string())
        .unwrap_or_default()
}

type WeeklyChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart with one slot per week on x (labelled by its Monday) and `0..top` on y.
fn weekly_axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    weekly: &[WeekPoint],
    title: &str,
    top: f64,
    y_decimals: usize,
) -> Result<WeeklyChart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .caption(title, ("sans-serif", 16))
        .build_cartesian_2d(0f64..weekly.len().max(1) as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(weekly.len().min(14))
        .x_label_formatter(&|x| week_label(weekly, x.floor() as usize))
        .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
        .draw()?;
    Ok(chart)
}

/// Deployments per ISO week, failed ones in red on top.
pub(super) fn weekly_deployments(weekly: &[WeekPoint]) -> String {
    svg(
        |root| {
            root.fill(&WHITE)?;
            let top = weekly
                .iter()
                .map(|w| w.deployments)
                .max()
                .unwrap_or(0)
                .max(1) as f64
                * 1.1;
            let mut chart = weekly_axes(&root, weekly, "Production deployments per week", top, 0)?;
            chart.draw_series(weekly.iter().enumerate().map(|(i, w)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.1, 0.0), (x + 0.9, w.deployments as f64)],
                    ACCENT.filled(),
                )
            }))?;
            chart.draw_series(weekly.iter().enumerate().map(|(i, w)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.1, 0.0), (x + 0.9, w.failed_deployments as f64)],
                    WARN.filled(),
                )
            }))?;
            root.present()?;
            Ok(())
        },
        HEIGHT,
    )
}

/// The weekly median lead time, in hours; weeks without samples leave a gap.
pub(super) fn lead_time_trend(weekly: &[WeekPoint]) -> String {
    svg(
        |root| {
            root.fill(&WHITE)?;
            let hours: Vec<Option<f64>> = weekly
                .iter()
                .map(|w| w.lead_time_median_minutes.map(|m| m / 60.0))
                .collect();
            let top = hours.iter().flatten().copied().fold(0.0, f64::max).max(1.0) * 1.1;
            let title = "Median lead time for changes (hours), by week";
            let mut chart = weekly_axes(&root, weekly, title, top, 1)?;
            let points = |run: &[(usize, f64)]| -> Vec<(f64, f64)> {
                run.iter().map(|(i, h)| (*i as f64 + 0.5, *h)).collect()
            };
            let mut run: Vec<(usize, f64)> = Vec::new();
            let mut runs = Vec::new();
            for (i, h) in hours.iter().enumerate() {
                match h {
                    Some(h) => run.push((i, *h)),
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            runs.push(run);
            for run in runs.iter().filter(|r| !r.is_empty()) {
                chart.draw_series(LineSeries::new(points(run), ACCENT.stroke_width(2)))?;
                chart.draw_series(
                    points(run)
                        .into_iter()
                        .map(|p| Circle::new(p, 3, ACCENT.filled())),
                )?;
            }
            root.present()?;
            Ok(())
        },
        HEIGHT,
    )
}

/// One horizontal bar per team, labelled with the value.
pub(super) fn team_bars(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    let height = 60 + 22 * bars.len().max(1) as u32;
    svg(
        |root| {
            root.fill(&WHITE)?;
            let top = bars
                .iter()
                .map(|(_, v)| *v)
                .fold(0.0, f64::max)
                .max(f64::EPSILON)
                * 1.25;
            let rows = bars.len().max(1) as f64;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(180)
                .caption(title, ("sans-serif", 16))
                .build_cartesian_2d(0f64..top, 0f64..rows)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(bars.len().max(1))
                .y_label_formatter(&|y| {
                    let index = bars.len().saturating_sub(1 + y.floor() as usize);
                    bars.get(index)
                        .map(|(name, _)| name.clone())
                        .unwrap_or_default()
                })
                .x_label_formatter(&|x| format!("{x:.0}{unit}"))
                .draw()?;
            chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
                let y = rows - 1.0 - i as f64;
                Rectangle::new([(0.0, y + 0.15), (*value, y + 0.85)], ACCENT.filled())
            }))?;
            chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
                let y = rows - 1.0 - i as f64;
                Text::new(
                    format!("{value:.1}{unit}"),
                    (*value, y + 0.7),
                    ("sans-serif", 12),
                )
            }))?;
            root.present()?;
            Ok(())
        },
        height,
    )
}
