//! The HTML report, opened in headless Chromium (Debian's `chromium`): what the page shows
//! after the browser has parsed it. The README's test command installs the browser.

use std::path::PathBuf;
use std::process::Command;

use chrono::NaiveDate;
use paved_analytics::dora::{self, DoraSettings};
use paved_analytics::generate::{GeneratorSettings, generate};
use paved_analytics::input::EventTables;
use paved_analytics::render::{Format, render};
use paved_analytics::window::ReportWindow;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PAVED_CHROMIUM") {
        return path.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("which").arg(name).output();
        if let Ok(out) = found
            && out.status.success()
        {
            return String::from_utf8_lossy(&out.stdout).trim().into();
        }
    }
    panic!("no Chromium: install Debian's `chromium` (scripts/test.sh does) or set PAVED_CHROMIUM");
}

/// The DOM Chromium built from the file, serialised.
fn rendered_dom(html: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).expect("write page");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // Offline: the page must not need the network.
            "--proxy-server=127.0.0.1:9",
            &format!("--user-data-dir={}", dir.path().join("profile").display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// The text of the element with `id`, tags stripped.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} on the page"));
    let rest = &dom[start..];
    // The element ends where its <div> nesting closes.
    let mut depth = 1usize;
    let mut end = rest.len();
    let mut at = 0;
    while let Some(next) = rest[at..]
        .find("<div")
        .into_iter()
        .chain(rest[at..].find("</div>"))
        .min()
    {
        at += next;
        if rest[at..].starts_with("</div>") {
            depth -= 1;
            if depth == 0 {
                end = at;
                break;
            }
        } else {
            depth += 1;
        }
        at += 4;
    }
    let mut text = String::new();
    let mut in_tag = true;
    for c in rest[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_report_page_shows_the_figures_charts_and_definitions() {
    let records = generate(
        &GeneratorSettings {
            services: 24,
            days: 60,
            deploys_per_day: 70.0,
            seed: 11,
            end: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
        },
        |_| {},
    );
    let window = ReportWindow::parse(
        Some("2026-09-24"),
        Some("2026-11-23"),
        None,
        chrono::Utc::now(),
    )
    .expect("window");
    let tables = EventTables::from_records(&records).expect("tables");
    let analysis = dora::analyse(&tables, &DoraSettings::new(window)).expect("analysis");
    let org = &analysis.report.org;
    let dom = rendered_dom(&render(&analysis, Format::Html).expect("html"));

    assert!(dom.contains("<h1>DORA metrics</h1>"));
    let frequency = text_of(&dom, "deployment-frequency");
    assert_eq!(
        frequency,
        format!(
            "Deployment frequency {:.2}/day {}",
            org.deploys_per_day,
            org.bands.deployment_frequency.expect("band").as_str()
        )
    );
    let cfr = text_of(&dom, "change-failure-rate");
    assert!(
        cfr.contains(&format!(
            "{:.1} %",
            org.change_failure_rate.expect("rate") * 100.0
        )),
        "{cfr}"
    );
    assert!(cfr.contains(org.bands.change_failure_rate.expect("band").as_str()));

    // Charts are inline SVG: the weekly bars, the lead time line, one bar per team.
    for chart in [
        "weekly-deployments",
        "lead-time-trend",
        "team-change-failure",
        "team-recovery",
    ] {
        let at = dom
            .find(&format!("id=\"{chart}\""))
            .expect("chart container");
        assert!(
            dom[at..].trim_start_matches(|c| c != '<').contains("<svg"),
            "{chart}"
        );
    }
    assert!(dom.contains("Production deployments per week"));
    let weeks = analysis.weekly.len();
    let weekly = &dom[dom.find("id=\"weekly-deployments\"").expect("chart")..];
    let weekly = &weekly[..weekly.find("</svg>").expect("svg end")];
    assert!(
        weekly.matches("<rect").count() >= 2 * weeks,
        "a bar and a failed bar per week"
    );

    // Every team is in the table, with band badges; best and worst services are listed.
    let teams = &dom[dom.find("id=\"teams\"").expect("teams table")..];
    let teams = &teams[..teams.find("</table>").expect("table end")];
    for team in &analysis.report.teams {
        assert!(
            teams.contains(&format!("<td>{}</td>", team.team)),
            "{}",
            team.team
        );
    }
    assert!(teams.contains("class=\"badge "));
    assert!(dom.contains("id=\"best-services\"") && dom.contains("id=\"worst-services\""));

    // The definitions footer names the spec.
    assert!(dom.contains("paved metrics spec version 1"));
    // Self-contained: nothing is fetched.
    assert!(
        !dom.contains("<script") && !dom.contains("src=\"http") && !dom.contains("href=\"http")
    );
}
