//! The pieces a page is made of: tables (shown as HTML, exported as CSV from the same
//! rows), line charts drawn as SVG on the server, and text.
//!
//! Every string that comes from a report reaches the page through maud's `html!`, which
//! escapes it; nothing here writes markup by string concatenation.

use maud::{Markup, html};

/// One cell of a table.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Text.
    Text(String),
    /// Text or nothing.
    Opt(Option<String>),
    /// A whole number.
    Num(i64),
    /// `part / whole` as a percentage (empty for an empty whole).
    Pct(i64, i64),
    /// Unix time, shown as UTC.
    Time(i64),
    /// Text linking to a page of the dashboard.
    Link(String, String),
    /// A drawing (HTML only; empty in CSV).
    Svg(Markup),
}

impl Cell {
    /// The value for CSV: plain text, numbers as digits, percentages with one decimal.
    fn csv(&self) -> String {
        match self {
            Cell::Text(t) | Cell::Link(t, _) => t.clone(),
            Cell::Opt(t) => t.clone().unwrap_or_default(),
            Cell::Num(n) => n.to_string(),
            Cell::Pct(p, w) => pct_number(*p, *w),
            Cell::Time(t) => dmarc_store::format_utc(*t),
            Cell::Svg(_) => String::new(),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Cell::Num(_) | Cell::Pct(..))
    }

    fn html(&self) -> Markup {
        match self {
            Cell::Text(t) => html! { (t) },
            Cell::Opt(t) => html! { (t.as_deref().unwrap_or("-")) },
            Cell::Num(n) => html! { (n) },
            Cell::Pct(p, w) => match pct_number(*p, *w) {
                s if s.is_empty() => html! { "-" },
                s => html! { (s) "%" },
            },
            Cell::Time(t) => html! { (dmarc_store::format_utc(*t)) },
            Cell::Link(t, href) => html! { a href=(href) { (t) } },
            Cell::Svg(m) => m.clone(),
        }
    }
}

/// `part / whole` in percent with one decimal, `""` for an empty whole.
pub fn pct_number(part: i64, whole: i64) -> String {
    if whole <= 0 {
        String::new()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

/// A table with a stable id (the `table=` of its CSV export).
#[derive(Debug, Clone)]
pub struct Table {
    /// The id, unique on its page.
    pub id: &'static str,
    /// The heading shown above it.
    pub title: String,
    /// Column names.
    pub columns: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// Said instead of an empty table.
    pub empty: &'static str,
}

impl Table {
    /// A table without rows yet.
    pub fn new(id: &'static str, title: impl Into<String>, columns: &[&'static str]) -> Table {
        Table {
            id,
            title: title.into(),
            columns: columns.to_vec(),
            rows: Vec::new(),
            empty: "Nothing in this selection.",
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as CSV (RFC 4180, a header line first).
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns)?;
        for r in &self.rows {
            w.write_record(r.iter().map(Cell::csv))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }

    /// The table as HTML, with a link to its CSV export (`csv_href`).
    pub fn html(&self, csv_href: &str) -> Markup {
        html! {
            section id=(self.id) {
                h2 { (self.title) " " a.csv href=(csv_href) { "CSV" } }
                @if self.rows.is_empty() {
                    p.empty { (self.empty) }
                } @else {
                    table {
                        thead { tr { @for c in &self.columns { th scope="col" { (c) } } } }
                        tbody {
                            @for r in &self.rows {
                                tr { @for c in r { td.num[c.numeric()] { (c.html()) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// `(label, value)` points in order; `None` is a gap.
    pub points: Vec<(String, Option<f64>)>,
}

/// A line chart as inline SVG: values between `min` and `max`, x labels at the ends.
pub fn line_chart(title: &str, series: &[Series], min: f64, max: f64, unit: &str) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 180.0;
    const L: f64 = 44.0;
    const B: f64 = 24.0;
    let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let span = if max > min { max - min } else { 1.0 };
    let x = |i: usize| {
        if n <= 1 {
            L + (W - L) / 2.0
        } else {
            L + (W - L - 8.0) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| 8.0 + (H - B - 8.0) * (1.0 - ((v - min) / span).clamp(0.0, 1.0));
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
    let first = series
        .first()
        .and_then(|s| s.points.first())
        .map(|p| p.0.as_str())
        .unwrap_or("");
    let last = series
        .first()
        .and_then(|s| s.points.last())
        .map(|p| p.0.as_str())
        .unwrap_or("");
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}"))
                role="img" aria-label=(title) {
                title { (title) }
                @for frac in [0.0, 0.5, 1.0] {
                    @let v = min + span * frac;
                    line x1=(L) x2=(W) y1=(y(v)) y2=(y(v)) stroke="#ddd" {}
                    text x=(L - 4.0) y=(y(v) + 4.0) text-anchor="end" font-size="11" {
                        (format!("{v:.0}{unit}"))
                    }
                }
                text x=(L) y=(H - 6.0) font-size="11" { (first) }
                text x=(W - 8.0) y=(H - 6.0) font-size="11" text-anchor="end" { (last) }
                @for (k, s) in series.iter().enumerate() {
                    @let colour = colours[k % colours.len()];
                    @let path = path_of(&s.points, &x, &y);
                    path d=(path) fill="none" stroke=(colour) stroke-width="2" {}
                    @for (i, p) in s.points.iter().enumerate() {
                        @if let Some(v) = p.1 {
                            circle cx=(x(i)) cy=(y(v)) r="2.5" fill=(colour) {
                                title { (s.name) " " (p.0) ": " (format!("{v:.1}{unit}")) }
                            }
                        }
                    }
                }
            }
            figcaption {
                (title) ": "
                @for (k, s) in series.iter().enumerate() {
                    span.legend {
                        svg width="10" height="10" {
                            rect width="10" height="10" fill=(colours[k % colours.len()]) {}
                        }
                        " " (s.name) " "
                    }
                }
            }
        }
    }
}

/// The SVG path through the points, a new segment after each gap.
fn path_of(
    points: &[(String, Option<f64>)],
    x: &impl Fn(usize) -> f64,
    y: &impl Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p.1 {
            Some(v) => {
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if pen_down { "L" } else { "M" },
                    x(i),
                    y(v)
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

/// A small trend line (no axes), values 0 to 100.
pub fn sparkline(values: &[Option<f64>]) -> Markup {
    let n = values.len();
    let x = |i: usize| {
        if n <= 1 {
            50.0
        } else {
            100.0 * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| 18.0 - 16.0 * (v / 100.0).clamp(0.0, 1.0);
    let points: Vec<(String, Option<f64>)> = values.iter().map(|v| (String::new(), *v)).collect();
    html! {
        svg.spark xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 20" width="100" height="20"
            role="img" aria-label="DMARC pass rate per day" {
            path d=(path_of(&points, &x, &y)) fill="none" stroke="#1f77b4" stroke-width="1.5" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_html_escapes_it() {
        let mut t = Table::new("t", "T", &["name", "messages", "rate"]);
        t.row(vec![
            Cell::Text("<script>\"a\",b".into()),
            Cell::Num(3),
            Cell::Pct(1, 3),
        ]);
        let csv = String::from_utf8(t.csv().expect("csv")).expect("utf-8");
        assert_eq!(csv, "name,messages,rate\n\"<script>\"\"a\"\",b\",3,33.3\n");
        let html = t.html("?format=csv").into_string();
        assert!(html.contains("&lt;script&gt;&quot;a&quot;,b"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn chart_paths_break_at_gaps() {
        let pts: Vec<(String, Option<f64>)> = vec![
            ("a".into(), Some(1.0)),
            ("b".into(), None),
            ("c".into(), Some(2.0)),
        ];
        let d = path_of(&pts, &|i| i as f64, &|v| v);
        assert_eq!(d, "M0.0,1.0 M2.0,2.0 ");
    }
}
