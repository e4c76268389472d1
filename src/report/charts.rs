//! PNG charts with plotters: line charts over the run's time axis, drill events marked.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// The charts' font, shipped in the binary so no system font is needed.
pub fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// One line on a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub line: Line,
}

/// How a series is stroked, on the chart and in its legend alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Solid,
    Dashed,
    Dotted,
}

impl Line {
    /// (dash, gap) in pixels; None for a solid line.
    fn pattern(self) -> Option<(u32, u32)> {
        match self {
            Line::Solid => None,
            Line::Dashed => Some((8, 5)),
            Line::Dotted => Some((2, 4)),
        }
    }

    pub fn dashed_if(b: bool) -> Line {
        if b {
            Line::Dashed
        } else {
            Line::Solid
        }
    }
}

/// A line chart: title, axis titles with units, a legend, events as vertical lines.
pub struct LineChart<'a> {
    pub title: String,
    pub x_label: &'a str,
    pub y_label: String,
    pub series: Vec<Series>,
    /// (t_s, label)
    pub events: &'a [(f64, String)],
    /// Where the x axis starts (0 when None).
    pub x_from: Option<f64>,
    /// Spans shaded behind the lines: (from, to, what), e.g. an outage.
    pub shades: &'a [(f64, f64, String)],
}

pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw `chart` to a 1100x550 PNG.
pub fn draw_line_chart(path: &Path, chart: &LineChart) -> Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1100, 550)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let all: Vec<&(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| !p.1.is_nan())
        .collect();
    let x_max = all
        .iter()
        .map(|p| p.0)
        .fold(1.0f64, f64::max)
        .max(chart.events.iter().map(|e| e.0).fold(0.0, f64::max))
        .max(chart.shades.iter().map(|s| s.1).fold(0.0, f64::max));
    let x_max = if chart.x_from.is_some() {
        x_max + 0.5
    } else {
        x_max
    };
    let y_max = all.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.12 } else { 1.0 };
    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(chart.x_from.unwrap_or(0.0)..x_max, 0f64..y_top)
        .map_err(|e| err(&e))?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|v| format_tick(*v))
        .x_label_formatter(&|v| {
            // An axis of whole values (the majors) labels only those.
            if chart.x_from.is_some() {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            } else {
                format_tick(*v)
            }
        })
        .draw()
        .map_err(|e| err(&e))?;
    for (from, to, what) in chart.shades {
        let fill = RGBColor(230, 85, 85).mix(0.13);
        ctx.draw_series(std::iter::once(Rectangle::new(
            [(*from, 0.0), (*to, y_top)],
            fill.filled(),
        )))
        .map_err(|e| err(&e))?;
        ctx.draw_series(std::iter::once(Text::new(
            format!(" {what}"),
            (*from, y_top * 0.05),
            ("sans-serif", 13).into_font().color(&RGBColor(170, 40, 40)),
        )))
        .map_err(|e| err(&e))?;
    }
    for (i, (t, label)) in chart.events.iter().enumerate() {
        let color = RGBColor(200, 60, 60);
        ctx.draw_series(DashedLineSeries::new(
            vec![(*t, 0.0), (*t, y_top)],
            6,
            4,
            color.stroke_width(1),
        ))
        .map_err(|e| err(&e))?;
        let y = y_top * (0.97 - 0.06 * (i % 4) as f64);
        ctx.draw_series(std::iter::once(Text::new(
            format!(" {label}"),
            (*t, y),
            ("sans-serif", 13).into_font().color(&color),
        )))
        .map_err(|e| err(&e))?;
    }
    for s in &chart.series {
        let style = s.color.stroke_width(2);
        let color = s.color;
        let line = s.line;
        let legend = move |(x, y): (i32, i32)| {
            // The legend's sample is stroked as the line is: the segments of its dash pattern
            // over 20 px (at most four; the rest empty).
            let (dash, gap) = line.pattern().unwrap_or((20, 0));
            let mut segs: Vec<Vec<(i32, i32)>> = Vec::new();
            let mut at = 0;
            while at < 20 && segs.len() < 4 {
                let end = (at + dash as i32).min(20);
                segs.push(vec![(at, 0), (end, 0)]);
                at = end + gap as i32;
            }
            segs.resize(4, Vec::new());
            let stroke = color.stroke_width(2);
            let mut segs = segs.into_iter();
            let mut seg = || PathElement::new(segs.next().unwrap_or_default(), stroke);
            EmptyElement::at((x, y)) + seg() + seg() + seg() + seg()
        };
        // A NaN breaks the line: each run of points between breaks is drawn on its own, the
        // legend entry once. A series without a point has no legend entry either.
        let segments: Vec<Vec<(f64, f64)>> = s
            .points
            .split(|p| p.1.is_nan())
            .filter(|seg| !seg.is_empty())
            .map(|seg| seg.to_vec())
            .collect();
        for (k, seg) in segments.into_iter().enumerate() {
            let drawn = match s.line.pattern() {
                Some((dash, gap)) => ctx
                    .draw_series(DashedLineSeries::new(seg, dash, gap, style))
                    .map_err(|e| err(&e))?,
                None => ctx
                    .draw_series(LineSeries::new(seg, style))
                    .map_err(|e| err(&e))?,
            };
            if k == 0 {
                drawn.label(&s.name).legend(legend);
            }
        }
    }
    if chart
        .series
        .iter()
        .any(|s| s.points.iter().any(|p| !p.1.is_nan()))
    {
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
    }
    if chart.series.iter().all(|s| s.points.is_empty()) {
        root.draw(&Text::new(
            "no data",
            (500, 270),
            ("sans-serif", 22)
                .into_font()
                .color(&RGBColor(120, 120, 120)),
        ))
        .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Bytes scaled to the unit that fits `max`: (divisor, unit name).
pub fn byte_unit(max: f64) -> (f64, &'static str) {
    if max >= 1e9 {
        (1e9, "GB")
    } else if max >= 1e6 {
        (1e6, "MB")
    } else if max >= 1e3 {
        (1e3, "kB")
    } else {
        (1.0, "bytes")
    }
}
