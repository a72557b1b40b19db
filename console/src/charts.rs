//! Charts drawn on the server, as SVG inside the page: they print, they show on a projector at
//! the morning meeting, and they need no script. Each is a horizontal bar chart whose bars are
//! stacked from parts (on time, yellow, red…), with the numbers written beside them.

use std::fmt::Write;

/// One part of a bar: its value, its CSS class (`green`, `yellow`, `red`, `grey`) and its name.
#[derive(Debug, Clone)]
pub struct Part {
    pub value: u64,
    pub class: &'static str,
    pub name: &'static str,
}

/// One bar: a unit, a category or a channel.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub parts: Vec<Part>,
}

impl Bar {
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.value).sum()
    }
}

/// Text for SVG: the labels are the district's names, which an administrator types.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

const ROW: u32 = 30;
const LABEL: u32 = 150;
const WIDTH: u32 = 640;
const NUMBERS: u32 = 110;

/// A stacked horizontal bar chart, with a legend of the parts' names. `title` is its accessible name.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let max = bars.iter().map(Bar::total).max().unwrap_or(0).max(1);
    let plot = WIDTH - LABEL - NUMBERS;
    let height = ROW * u32::try_from(bars.len()).unwrap_or(0) + 36;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    if bars.is_empty() {
        let _ = write!(svg, r#"<text x="0" y="20" class="muted">暂无数据</text></svg>"#);
        return svg;
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = ROW * u32::try_from(i).unwrap_or(0);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
            LABEL - 8,
            y + 19,
            escape(&shorten(&bar.label, 10))
        );
        let mut x = f64::from(LABEL);
        for part in bar.parts.iter().filter(|p| p.value > 0) {
            let w = f64::from(plot) * part.value as f64 / max as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="20" class="{}"><title>{} {}：{}</title></rect>"#,
                y + 5,
                part.class,
                escape(&bar.label),
                part.name,
                part.value
            );
            x += w;
        }
        let numbers: Vec<String> = bar.parts.iter().map(|p| p.value.to_string()).collect();
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" class="value">{}</text>"#, x + 6.0, y + 19, numbers.join(" / "));
    }
    // The legend, once, from the first bar's parts.
    let legend_y = height - 10;
    let mut x = LABEL;
    for part in &bars[0].parts {
        let _ = write!(svg, r#"<rect x="{x}" y="{}" width="12" height="12" class="{}"/>"#, legend_y - 10, part.class);
        let _ = write!(svg, r#"<text x="{}" y="{legend_y}" class="legend">{}</text>"#, x + 16, part.name);
        x += 24 + 14 * u32::try_from(part.name.chars().count()).unwrap_or(2);
    }
    svg.push_str("</svg>");
    svg
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max - 1).chain(['…']).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, on_time: u64, late: u64) -> Bar {
        Bar {
            label: label.into(),
            parts: vec![Part { value: on_time, class: "green", name: "按时" }, Part { value: late, class: "red", name: "超时" }],
        }
    }

    #[test]
    fn bars_scale_to_the_longest_and_write_their_numbers() {
        let svg = bars("按时办结", &[bar("东门街道", 8, 2), bar("新安街道", 4, 1)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("8 / 2") && svg.contains("4 / 1"));
        // The longest bar fills the plot: 380 units wide in all.
        assert!(svg.contains(r#"width="304.0" height="20" class="green""#), "{svg}");
        assert!(svg.contains(r#"width="76.0" height="20" class="red""#), "{svg}");
    }

    #[test]
    fn labels_are_text_never_markup() {
        let svg = bars("<b>", &[bar("<script>alert(1)</script>", 1, 0)]);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn nothing_to_draw_says_so() {
        assert!(bars("空", &[]).contains("暂无数据"));
    }
}
