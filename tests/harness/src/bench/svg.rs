//! The storm timeline: one panel per strategy, one row per camera (sorted by the time it
//! came back), time left to right, each cell coloured by the daemon's state for that
//! camera (from its status, read twice a second). Hand-written SVG, no dependency.

use std::fmt::Write as _;

use super::Finished;
use super::run::STATES;

/// Fill colour of each state in [`STATES`] order, and of "unknown".
const COLOURS: [&str; 11] = [
    "#bdbdbd", // starting
    "#4a90d9", // connecting
    "#2e9e44", // online
    "#e6c229", // suspect
    "#f08c2e", // backoff
    "#c0392b", // auth-hold
    "#7b1010", // locked
    "#8e44ad", // stuck
    "#555555", // stopping
    "#222222", // removed
    "#ffffff", // unknown
];

/// Pixels per second and per camera row.
const PX_S: f64 = 3.0;
const ROW: f64 = 1.0;
const LEFT: f64 = 70.0;
const PANEL_GAP: f64 = 36.0;
/// Seconds shown before the power-off (every daemon has been up longer than that).
const LEAD: f64 = 5.0;

/// The SVG document for the storm runs in `runs` (those of other scenarios are ignored);
/// `None` when there is no storm run with status samples.
pub fn storm(runs: &[Finished]) -> Option<String> {
    let storms: Vec<&Finished> = runs
        .iter()
        .filter(|f| f.scenario == super::Scenario::Storm && !f.raw.status.is_empty())
        .collect();
    let first = storms.first()?;
    let n = first.metrics.cameras;
    // Common time axis: from LEAD s before the power-off to the longest settle.
    let span = storms
        .iter()
        .map(|f| f.raw.t_end.saturating_sub(f.raw.t_phase) as f64 / 1e6 + LEAD)
        .fold(0.0, f64::max);
    let width = LEFT + span * PX_S + 20.0;
    let panel_h = n as f64 * ROW + PANEL_GAP;
    let height = 40.0 + panel_h * storms.len() as f64 + 40.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\" shape-rendering=\"crispEdges\">"
    );
    let _ = writeln!(
        o,
        "<title>hikwatch storm timeline: {n} cameras off together, back staggered over 5 s</title>\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    );
    let _ = writeln!(
        o,
        "<text x=\"{LEFT}\" y=\"16\" font-size=\"13\">Storm: {n} cameras off at t = 0, back over 5 s \
         (black ticks). Rows: cameras by return time; colour: the daemon's state.</text>"
    );
    for (k, f) in storms.iter().enumerate() {
        let top = 40.0 + panel_h * k as f64;
        panel(&mut o, f, top, span);
    }
    // Legend.
    let y = height - 22.0;
    let mut x = LEFT;
    for (i, name) in STATES.iter().enumerate().take(8) {
        let _ = write!(
            o,
            "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#999\"/>\
             <text x=\"{:.0}\" y=\"{:.0}\">{name}</text>",
            y - 10.0,
            COLOURS[i],
            x + 16.0,
            y
        );
        x += 30.0 + name.len() as f64 * 6.5;
    }
    let _ = writeln!(
        o,
        "<line x1=\"{x:.0}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#000\" stroke-width=\"2\"/>\
         <text x=\"{:.0}\" y=\"{y:.0}\">camera back (listening)</text>",
        y - 10.0,
        x,
        y + 2.0,
        x + 6.0
    );
    o.push_str("</svg>\n");
    Some(o)
}

fn panel(o: &mut String, f: &Finished, top: f64, span: f64) {
    let n = f.metrics.cameras;
    let t0 = f.raw.t_phase; // the power-off
    let x_of = |t: u64| LEFT + ((t as f64 - t0 as f64) / 1e6 + LEAD) * PX_S;
    // Rows sorted by return time.
    let mut back: Vec<(u64, usize)> = (0..n)
        .map(|c| {
            let b = f
                .raw
                .faults
                .iter()
                .filter(|h| h.cam == c)
                .filter_map(|h| h.back)
                .max()
                .unwrap_or(u64::MAX);
            (b, c)
        })
        .collect();
    back.sort_unstable();
    let mut row_of = vec![0usize; n];
    for (r, &(_, c)) in back.iter().enumerate() {
        row_of[c] = r;
    }
    let m = &f.metrics;
    let _ = writeln!(
        o,
        "<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\
         <text x=\"{LEFT}\" y=\"{:.0}\">{}: recovery p50 {} / p99 {}; all online {} after the last return</text>",
        top + 12.0,
        f.strategy,
        top - 4.0,
        f.strategy,
        super::report::secs(m.lat.recovery.p50),
        super::report::secs(m.lat.recovery.p99),
        m.all_online_after_last
            .map_or_else(|| "not".into(), super::report::secs)
    );
    // Runs of one state per camera, grouped by colour.
    let samples = &f.raw.status;
    let mut by_colour: Vec<String> = vec![String::new(); COLOURS.len()];
    for (cam, row) in row_of.iter().enumerate() {
        let y = top + *row as f64 * ROW;
        let mut run: Option<(u8, u64)> = None;
        for (i, s) in samples.iter().enumerate() {
            let st = s.states.get(cam).copied().unwrap_or(255);
            let t_next = samples.get(i + 1).map_or(s.t + 500_000, |n| n.t);
            match run {
                Some((cur, _)) if cur == st => {}
                _ => {
                    if let Some((cur, from)) = run {
                        rect(&mut by_colour, cur, x_of(from), x_of(s.t), y);
                    }
                    run = Some((st, s.t));
                }
            }
            if i + 1 == samples.len() {
                if let Some((cur, from)) = run {
                    rect(&mut by_colour, cur, x_of(from), x_of(t_next), y);
                }
            }
        }
    }
    for (i, rects) in by_colour.iter().enumerate() {
        if !rects.is_empty() {
            let _ = writeln!(o, "<g fill=\"{}\">{rects}</g>", COLOURS[i]);
        }
    }
    // Return ticks and the time axis.
    let mut ticks = String::new();
    for &(b, c) in &back {
        if b != u64::MAX {
            let y = top + row_of[c] as f64 * ROW;
            let _ = write!(ticks, "M{:.1} {y:.1}v{ROW}", x_of(b));
        }
    }
    let _ = writeln!(
        o,
        "<path d=\"{ticks}\" stroke=\"#000\" stroke-width=\"2\"/>"
    );
    let bottom = top + n as f64 * ROW;
    let _ = writeln!(
        o,
        "<rect x=\"{LEFT}\" y=\"{top:.0}\" width=\"{:.0}\" height=\"{:.0}\" fill=\"none\" stroke=\"#999\"/>",
        span * PX_S,
        n as f64 * ROW
    );
    let mut t = 0i64;
    while (t as f64) < span - LEAD {
        let x = x_of(t0 + (t as u64) * 1_000_000);
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{bottom:.0}\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#000\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{t} s</text>",
            bottom + 4.0,
            x - 6.0,
            bottom + 15.0
        );
        t += 30;
    }
    o.push('\n');
}

fn rect(by_colour: &mut [String], state: u8, x0: f64, x1: f64, y: f64) {
    let i = usize::from(state).min(COLOURS.len() - 1);
    let x0 = x0.max(LEFT);
    if x1 <= x0 {
        return;
    }
    let _ = write!(
        by_colour[i],
        "<rect x=\"{x0:.1}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"{ROW}\"/>",
        x1 - x0
    );
}
