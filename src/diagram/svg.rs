//! Draws a [`Diagram`] as SVG sized for A4 paper, portrait.
//!
//! Each page is 210 × 297 mm (794 × 1123 px at CSS's 96 px per inch).
//! A long story does not shrink to fit one page: a lesson's trace has 100
//! to 300 rows, and squeezed onto one sheet its text would be a few
//! pixels high — unreadable on paper, which is the point of a handout.
//! Instead the text keeps one size (9 px ≈ 7 pt, like a footnote) and the
//! story continues on further pages, each repeating the title and the
//! participants' names, so every sheet stands on its own. The pages are
//! stacked in one SVG (N × 297 mm high); printed with no margins, the
//! browser cuts it at exactly the page boundaries.
//!
//! Widths are estimated, not measured (there is no font engine here):
//! arrow labels are set in a monospace font, so a character is 0.6 em
//! wide, and labels are cut with "…" to the room they have.

use std::fmt::Write;

use super::model::{ArrowKind, Diagram, Item, NoteKind, cut_to};
use crate::trace::Protocol;

/// One A4 page at 96 px per inch.
pub const PAGE_WIDTH: f64 = 794.0;
pub const PAGE_HEIGHT: f64 = 1123.0;
const MARGIN: f64 = 28.0;
const TITLE_HEIGHT: f64 = 26.0;
const HEADER_HEIGHT: f64 = 30.0;
const FOOTER: f64 = 28.0;
const ARROW_ROW: f64 = 19.0;
const DIVIDER_ROW: f64 = 24.0;
const NOTE_LINE: f64 = 12.0;
const FONT: f64 = 9.0;
/// Width of one character of the monospace label font.
const MONO_CHAR: f64 = FONT * 0.6;
/// A generous average for the sans-serif note font.
const SANS_CHAR: f64 = FONT * 0.56;
const MAX_NOTE_LINES: usize = 3;

/// Where one item goes: its page, its top, its height.
struct Placed<'a> {
    item: &'a Item,
    page: usize,
    top: f64,
    height: f64,
}

/// The SVG document of `diagram`, one or more A4 pages high.
pub fn render(diagram: &Diagram) -> String {
    let n = diagram.participants.len().max(1);
    let spacing = (PAGE_WIDTH - 2.0 * MARGIN) / n as f64;
    let x = |i: usize| MARGIN + spacing * (i as f64 + 0.5);
    let first_row = MARGIN + TITLE_HEIGHT + HEADER_HEIGHT + 10.0;
    let last_row = PAGE_HEIGHT - MARGIN - FOOTER;

    // Place every item, starting a new page when it would not fit.
    let mut placed = Vec::new();
    let (mut page, mut y) = (0, first_row);
    for item in &diagram.items {
        let height = match item {
            Item::Arrow { .. } => ARROW_ROW,
            Item::Divider { .. } => DIVIDER_ROW,
            Item::Note { first, last, text, .. } => note_lines(text, note_span(x(*first), x(*last), spacing).1).len() as f64 * NOTE_LINE + 10.0,
        };
        if y + height > last_row && y > first_row {
            page += 1;
            y = first_row;
        }
        placed.push(Placed { item, page, top: y, height });
        y += height;
    }
    let pages = page + 1;

    let mut out = String::new();
    let total_height = PAGE_HEIGHT * pages as f64;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="{}mm" viewBox="0 0 {PAGE_WIDTH} {total_height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="{FONT}" role="img" aria-labelledby="diagram-title">"#,
        297 * pages
    );
    let _ = write!(out, r#"<title id="diagram-title">{}</title>"#, esc(&diagram.title));
    out.push_str(r#"<style>.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace}.participant{font-weight:bold}</style>"#);
    for page in 0..pages {
        let top = PAGE_HEIGHT * page as f64;
        let rows: Vec<&Placed> = placed.iter().filter(|p| p.page == page).collect();
        let bottom = rows.last().map_or(first_row, |p| p.top + p.height) + 6.0;
        let _ = write!(out, r#"<g class="page" data-page="{}" transform="translate(0 {top})">"#, page + 1);
        let _ = write!(out, r##"<rect class="sheet" x="0" y="0" width="{PAGE_WIDTH}" height="{PAGE_HEIGHT}" fill="#ffffff"/>"##);
        let _ = write!(
            out,
            r##"<text class="title" x="{MARGIN}" y="{}" font-size="14" font-weight="bold" fill="#111">{}</text>"##,
            MARGIN + 14.0,
            esc(&cut_to(&diagram.title, 80))
        );
        // The participants: a box with the name, and a lifeline down the page.
        let name_chars = ((spacing - 8.0) / (FONT * 0.62)).floor().max(4.0) as usize;
        for (i, name) in diagram.participants.iter().enumerate() {
            let (cx, y0) = (x(i), MARGIN + TITLE_HEIGHT);
            let _ = write!(
                out,
                r##"<line class="lifeline" x1="{cx}" y1="{}" x2="{cx}" y2="{bottom}" stroke="#9e9e9e" stroke-dasharray="3 3"/>"##,
                y0 + HEADER_HEIGHT
            );
            let _ = write!(
                out,
                r##"<rect x="{}" y="{y0}" width="{}" height="{HEADER_HEIGHT}" rx="4" fill="#eceff1" stroke="#455a64"/>"##,
                cx - spacing / 2.0 + 4.0,
                spacing - 8.0
            );
            let _ = write!(
                out,
                r##"<text class="participant" x="{cx}" y="{}" text-anchor="middle" fill="#111">{}</text>"##,
                y0 + HEADER_HEIGHT / 2.0 + 3.5,
                esc(&cut_to(name, name_chars))
            );
        }
        for p in rows {
            draw(&mut out, p, &x, spacing);
        }
        let _ = write!(
            out,
            r##"<text class="footer" x="{}" y="{}" text-anchor="end" fill="#555">mailflow · page {} of {pages}</text></g>"##,
            PAGE_WIDTH - MARGIN,
            PAGE_HEIGHT - MARGIN,
            page + 1
        );
    }
    out.push_str("</svg>\n");
    out
}

fn draw(out: &mut String, p: &Placed, x: &dyn Fn(usize) -> f64, spacing: f64) {
    match p.item {
        Item::Arrow { from, to, protocol, kind, encrypted, text } => {
            let colour = colour(*protocol);
            let (x1, x2) = (x(*from), x(*to));
            let line_y = p.top + p.height - 4.0;
            let dash = if *kind == ArrowKind::Reply { r#" stroke-dasharray="5 3""# } else { "" };
            if from == to {
                // A host talking to itself: a small loop to the right.
                let _ = write!(out, r#"<path class="arrow" d="M{x1} {} h18 v6 h-18" fill="none" stroke="{colour}"{dash}/>"#, line_y - 6.0);
            } else {
                let _ = write!(out, r#"<line class="arrow" x1="{x1}" y1="{line_y}" x2="{x2}" y2="{line_y}" stroke="{colour}"{dash}/>"#);
                let dir = if x2 > x1 { 1.0 } else { -1.0 };
                if *kind == ArrowKind::Failed {
                    let cx = x2 - dir * 4.0;
                    let _ = write!(
                        out,
                        r#"<path d="M{} {} l8 8 M{} {} l-8 8" stroke="{colour}" stroke-width="1.5"/>"#,
                        cx - 4.0,
                        line_y - 4.0,
                        cx + 4.0,
                        line_y - 4.0
                    );
                } else {
                    let _ = write!(out, r#"<path d="M{x2} {line_y} l{} -3 v6 z" fill="{colour}"/>"#, -dir * 7.0);
                }
            }
            // The label: centred over the arrow, on at least 250 px, inside the page.
            let (lo, hi) = (x1.min(x2), x1.max(x2));
            let width = (hi - lo - 8.0).clamp(250.0, PAGE_WIDTH - 2.0 * MARGIN);
            let centre = ((lo + hi) / 2.0).clamp(MARGIN + width / 2.0, PAGE_WIDTH - MARGIN - width / 2.0);
            let lock = if *encrypted { 10.0 } else { 0.0 };
            let chars = ((width - lock) / MONO_CHAR).floor() as usize;
            let label = cut_to(text, chars);
            let label_width = label.chars().count() as f64 * MONO_CHAR + lock;
            let start = centre - label_width / 2.0;
            if *encrypted {
                lock_icon(out, start, line_y - 11.0, colour);
            }
            let _ = write!(
                out,
                r##"<text class="label mono" x="{}" y="{}" fill="{colour}" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
                start + lock,
                line_y - 3.5,
                esc(&label)
            );
        }
        Item::Note { first, last, kind, text } => {
            let (left, width) = note_span(x(*first), x(*last), spacing);
            let (fill, stroke) = note_colours(*kind);
            let _ = write!(
                out,
                r#"<rect class="note" x="{left}" y="{}" width="{width}" height="{}" rx="3" fill="{fill}" stroke="{stroke}"/>"#,
                p.top + 3.0,
                p.height - 6.0
            );
            for (i, line) in note_lines(text, width).iter().enumerate() {
                let _ = write!(
                    out,
                    r##"<text class="note-text" x="{}" y="{}" fill="#212121">{}</text>"##,
                    left + 5.0,
                    p.top + 13.5 + i as f64 * NOTE_LINE,
                    esc(line)
                );
            }
        }
        Item::Divider { text } => {
            let y = p.top + p.height / 2.0 + 2.0;
            let _ = write!(
                out,
                r##"<line class="divider" x1="{MARGIN}" y1="{y}" x2="{}" y2="{y}" stroke="#607d8b" stroke-dasharray="8 4"/>"##,
                PAGE_WIDTH - MARGIN
            );
            let label = cut_to(text, ((PAGE_WIDTH - 2.0 * MARGIN - 20.0) / (FONT * 0.62)) as usize);
            let w = label.chars().count() as f64 * FONT * 0.62 + 12.0;
            let _ = write!(out, r##"<rect x="{}" y="{}" width="{w}" height="14" fill="#ffffff" stroke="#607d8b"/>"##, MARGIN + 6.0, y - 8.0);
            let _ = write!(out, r##"<text class="step" x="{}" y="{}" font-weight="bold" fill="#263238">{}</text>"##, MARGIN + 12.0, y + 2.5, esc(&label));
        }
    }
}

/// A small padlock before the label of an encrypted hop.
fn lock_icon(out: &mut String, x: f64, y: f64, colour: &str) {
    let _ = write!(
        out,
        r#"<g class="lock"><path d="M{} {} v-2.5 a2.5 2.5 0 0 1 5 0 v2.5" fill="none" stroke="{colour}"/><rect x="{x}" y="{}" width="7" height="5" fill="{colour}"/></g>"#,
        x + 1.0,
        y + 4.0,
        y + 4.0
    );
}

/// The left edge and width of a note over participants at `a..=b`.
fn note_span(a: f64, b: f64, spacing: f64) -> (f64, f64) {
    let half = spacing * 0.45;
    let width = (b - a + 2.0 * half).clamp(200.0, PAGE_WIDTH - 2.0 * MARGIN);
    let left = ((a + b) / 2.0 - width / 2.0).clamp(MARGIN, PAGE_WIDTH - MARGIN - width);
    (left, width)
}

/// A note's text wrapped at words to `width`, at most [`MAX_NOTE_LINES`].
fn note_lines(text: &str, width: f64) -> Vec<String> {
    let per_line = ((width - 10.0) / SANS_CHAR).floor().max(8.0) as usize;
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > per_line {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    if lines.len() > MAX_NOTE_LINES {
        let rest = lines[MAX_NOTE_LINES - 1..].join(" ");
        lines.truncate(MAX_NOTE_LINES - 1);
        lines.push(rest);
    }
    lines.into_iter().map(|l| cut_to(&l, per_line)).collect()
}

/// The protocol's colour (the page's colours, darkened for print contrast).
fn colour(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Smtp => "#0d47a1",
        Protocol::Dns => "#6a1b9a",
        Protocol::Imap => "#1b5e20",
        Protocol::Pop3 => "#bf360c",
        Protocol::Sim => "#424242",
    }
}

fn note_colours(kind: NoteKind) -> (&'static str, &'static str) {
    match kind {
        NoteKind::Queue => ("#fff8e1", "#f9a825"),
        NoteKind::Retry => ("#ffe0b2", "#ef6c00"),
        NoteKind::Bounce | NoteKind::Failure => ("#ffebee", "#c62828"),
        NoteKind::Delivered => ("#e8f5e9", "#2e7d32"),
        NoteKind::Tls => ("#e0f2f1", "#00695c"),
        NoteKind::Auth => ("#e3f2fd", "#1565c0"),
        NoteKind::Dns => ("#f3e5f5", "#6a1b9a"),
        NoteKind::Info => ("#f5f5f5", "#757575"),
    }
}

/// Escapes text for an XML text node or attribute.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::model::{build, tests::story};

    fn pages(svg: &str) -> usize {
        svg.matches(r#"<g class="page""#).count()
    }

    #[test]
    fn one_a4_page_with_every_participant_and_escaped_text() {
        let svg = render(&build(&story(), None).unwrap());
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 794 1123""#), "{}", &svg[..200]);
        assert_eq!(pages(&svg), 1);
        for name in ["alice-laptop", "smtp.school.test", "dns", "mx1.example.org", "bob-phone"] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name}");
        }
        assert!(svg.contains("MAIL FROM:&lt;a@b&gt;"), "text is escaped");
        assert!(!svg.contains("<a@b>"));
        assert!(svg.contains("page 1 of 1"));
    }

    #[test]
    fn a_long_story_continues_on_more_pages_of_the_same_size() {
        let mut diagram = build(&story(), None).unwrap();
        let arrow = diagram.items.iter().find(|i| matches!(i, Item::Arrow { .. })).unwrap().clone();
        diagram.items.extend(std::iter::repeat_n(arrow, 150));
        let svg = render(&diagram);
        let n = pages(&svg);
        assert!(n >= 3, "{n} pages");
        assert!(svg.contains(&format!(r#"height="{}mm" viewBox="0 0 794 {}""#, 297 * n, 1123 * n)));
        assert_eq!(svg.matches(">alice-laptop</text>").count(), n, "each page names the participants");
        assert!(svg.contains(&format!("page {n} of {n}")));
    }

    #[test]
    fn notes_wrap_and_stop_after_three_lines() {
        let lines = note_lines(&"word ".repeat(200), 200.0);
        assert_eq!(lines.len(), MAX_NOTE_LINES);
        assert!(lines.iter().all(|l| l.chars().count() as f64 * SANS_CHAR <= 200.0));
        assert!(lines[2].ends_with('…'));
        assert_eq!(note_lines("", 200.0), [""]);
    }

    #[test]
    fn xml_special_and_control_characters() {
        assert_eq!(esc("<a & 'b'>\u{1}\""), "&lt;a &amp; &#39;b&#39;&gt; &quot;");
    }
}
