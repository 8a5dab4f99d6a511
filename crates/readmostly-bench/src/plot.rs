//! SVG plots (plotters, SVG backend only: text is emitted as SVG `<text>`, no fonts needed).

use std::path::Path;

use plotters::prelude::*;

use crate::record::Row;
use crate::Error;

fn err(e: impl std::fmt::Display) -> Error {
    Error::msg(format!("plot: {e}"))
}

/// A distinct colour per map: 16 (Tableau 10, then darker and lighter variants), more
/// than the bench has maps, so no two maps of one plot share one.
fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 16] = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0x00, 0x00, 0x00),
        RGBColor(0x6b, 0x00, 0x00),
        RGBColor(0x00, 0x3f, 0x7f),
        RGBColor(0x00, 0x6d, 0x2c),
        RGBColor(0xff, 0xbb, 0x78),
        RGBColor(0x9e, 0xda, 0xe5),
    ];
    C[i % C.len()]
}

// Every map but `noop` (not plotted) gets a colour of its own.
const _: () = assert!(crate::adapters::MapKind::ALL.len() <= 16 + 1);

fn maps_of(rows: &[&Row]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in rows {
        if r.map != "noop" && !v.contains(&r.map) {
            v.push(r.map.clone());
        }
    }
    v
}

/// Plot size: the chart, and a legend panel to its right so no label covers data.
const WIDTH: u32 = 980;
const LEGEND_WIDTH: u32 = 170;
const HEIGHT: u32 = 520;

/// A drawing area of a plot file.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A white canvas at `path`, split into the chart area and the legend panel.
fn canvas(path: &Path) -> Result<(Area<'_>, Area<'_>), Error> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root.split_horizontally(WIDTH - LEGEND_WIDTH))
}

/// One line and name per map in the legend panel, in plotting order (colour `i`).
fn legend(area: &Area<'_>, maps: &[String]) -> Result<(), Error> {
    let style = ("sans-serif", 15).into_font().color(&BLACK);
    for (i, m) in maps.iter().enumerate() {
        let y = 50 + 22 * i as i32;
        let c = color(i);
        area.draw(&PathElement::new(vec![(8, y), (32, y)], c.stroke_width(2)))
            .map_err(err)?;
        area.draw(&Circle::new((20, y), 3, c.filled()))
            .map_err(err)?;
        area.draw(&Text::new(m.as_str(), (40, y - 8), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// Throughput against threads for one workload, one line per map (noop left out).
pub fn throughput(path: &Path, title: &str, rows: &[&Row]) -> Result<(), Error> {
    let maps = maps_of(rows);
    let mut threads: Vec<usize> = rows.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let n = threads.len().max(1) as i32;
    let max_y = rows
        .iter()
        .filter(|r| r.map != "noop")
        .map(|r| r.mops)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.08;
    let (plot, side) = canvas(path)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..max_y)
        .map_err(err)?;
    let label = |x: &SegmentValue<i32>| match x {
        SegmentValue::CenterOf(i) => threads
            .get(*i as usize)
            .map_or(String::new(), |t| t.to_string()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("threads")
        .y_desc("Mops/s (all threads)")
        .x_labels(threads.len())
        .x_label_formatter(&label)
        .draw()
        .map_err(err)?;
    for (i, m) in maps.iter().enumerate() {
        let mut pts: Vec<(SegmentValue<i32>, f64)> = rows
            .iter()
            .filter(|r| &r.map == m)
            .filter_map(|r| {
                let i = threads.iter().position(|&t| t == r.threads)? as i32;
                Some((SegmentValue::CenterOf(i), r.mops))
            })
            .collect();
        pts.sort_by_key(|p| match p.0 {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => i,
            SegmentValue::Last => i32::MAX,
        });
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    legend(&side, &maps)?;
    plot.present().map_err(err)
}

/// Latency percentiles (p50, p99, p999; log scale) at the highest thread count; a
/// quantile is left out for a map whose cell has too few samples for it (noop left out,
/// also from the axis range).
pub fn latency(path: &Path, title: &str, rows: &[&Row]) -> Result<(), Error> {
    let max_t = rows.iter().map(|r| r.threads).max().unwrap_or(1);
    let at: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| r.threads == max_t && r.map != "noop")
        .collect();
    let maps = maps_of(&at);
    let lo = at.iter().map(|r| r.p50_ns.max(1)).min().unwrap_or(1) as f64 * 0.7;
    // The quantiles each cell has enough samples for (p50 always).
    let quantiles = |r: &Row| {
        [
            (0, r.p50_ns, true),
            (1, r.p99_ns, r.has_p99()),
            (2, r.p999_ns, r.has_p999()),
        ]
        .into_iter()
        .filter(|&(_, _, enough)| enough)
        .map(|(i, ns, _)| (i, ns))
    };
    let hi = at
        .iter()
        .flat_map(|r| quantiles(r).map(|(_, ns)| ns.max(2)))
        .max()
        .unwrap_or(2) as f64
        * 1.5;
    let (plot, side) = canvas(path)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(format!("{title} — {max_t} threads"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..2).into_segmented(), (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(3)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(0) => "p50".into(),
            SegmentValue::CenterOf(1) => "p99".into(),
            SegmentValue::CenterOf(2) => "p99.9".into(),
            _ => String::new(),
        })
        .y_desc("ns (sampled ops, incl. timer)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, m) in maps.iter().enumerate() {
        let Some(r) = at.iter().find(|r| &r.map == m) else {
            continue;
        };
        let pts: Vec<_> = quantiles(r)
            .map(|(i, ns)| (SegmentValue::CenterOf(i), ns.max(1) as f64))
            .collect();
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    legend(&side, &maps)?;
    plot.present().map_err(err)
}
