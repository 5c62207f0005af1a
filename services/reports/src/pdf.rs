//! The PDF of a report: title block, aligned columns (amounts right-aligned), headings,
//! subtotals and totals in bold with rules, page numbers, and a generated-at line. Written
//! with `pdf-writer` in the standard Helvetica fonts (no font file to embed or ship).

// Page coordinates and text widths are points: layout, not money.
#![allow(clippy::float_arithmetic)]

use crate::render::{Cell, Heading, Table, cell_text, title_of};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MARGIN: f32 = 40.0;
const SIZE: f32 = 8.5;
const ROW: f32 = 13.0;
const PADDING: f32 = 10.0;

/// Advance widths (1/1000 em) of ASCII 32..=126 in Helvetica and Helvetica-Bold, from the
/// Adobe core font metrics; other characters are taken as 556.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

fn width(text: &str, bold: bool, size: f32) -> f32 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    let units: u32 = text
        .chars()
        .map(|c| {
            let code = c as u32;
            if (32..=126).contains(&code) {
                u32::from(table[(code - 32) as usize])
            } else {
                556
            }
        })
        .sum();
    // Widths are below 2^24, exact as f32.
    units as f32 * size / 1000.0
}

/// Text in the fonts' WinAnsi encoding: ASCII and Latin-1 as they are, the euro sign at 0x80,
/// anything else as '?'.
fn encode(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            c if (c as u32) < 0x7f || (0xa0..=0xff).contains(&(c as u32)) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

struct Column {
    title: String,
    x: f32,
    width: f32,
    right: bool,
    /// The statement line's label, indented by its level.
    indented: bool,
}

fn layout(table: &Table, page_width: f32) -> Vec<Column> {
    let numeric: Vec<bool> = (0..table.columns.len())
        .map(|i| {
            table
                .rows
                .iter()
                .any(|row| matches!(row.cells[i], Cell::Amount(_) | Cell::Integer(_)))
                && table.rows.iter().all(|row| {
                    matches!(
                        row.cells[i],
                        Cell::Amount(_) | Cell::Integer(_) | Cell::Empty
                    )
                })
        })
        .collect();
    let mut widths: Vec<f32> = (0..table.columns.len())
        .map(|i| {
            let values = table
                .rows
                .iter()
                .map(|row| {
                    let indent = if table.columns[i] == "name" {
                        row.level.max(0) as f32 * 8.0
                    } else {
                        0.0
                    };
                    width(&cell_text(&row.cells[i]), true, SIZE) + indent
                })
                .fold(0.0_f32, f32::max);
            // Long titles wrap onto two lines: half the title is enough room.
            let title = title_of(&table.columns[i]);
            let title = width(&title, true, SIZE) / if title.contains(' ') { 1.8 } else { 1.0 };
            values.max(title) + PADDING
        })
        .collect();
    // Shrink the widest text column if the page is too narrow.
    let available = page_width - 2.0 * MARGIN;
    let total: f32 = widths.iter().sum();
    let widest = (0..widths.len())
        .filter(|&i| !numeric[i])
        .max_by(|&a, &b| widths[a].total_cmp(&widths[b]));
    if let (true, Some(widest)) = (total > available, widest) {
        widths[widest] = (widths[widest] - (total - available)).max(60.0);
    }
    let mut x = MARGIN;
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let column = Column {
                title: title_of(name),
                x,
                width: widths[i],
                right: numeric[i],
                indented: name == "name",
            };
            x += widths[i];
            column
        })
        .collect()
}

/// Words of `text` in lines no wider than `room`.
fn wrap(text: &str, room: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if width(&format!("{line} {word}"), true, SIZE) <= room => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// Cuts text to fit `room`, ending with "...".
fn fit(text: &str, bold: bool, room: f32) -> String {
    if width(text, bold, SIZE) <= room {
        return text.to_owned();
    }
    let mut cut: String = text.to_owned();
    while !cut.is_empty() && width(&format!("{cut}..."), bold, SIZE) > room {
        cut.pop();
    }
    format!("{cut}...")
}

fn show(content: &mut Content, font: Name, size: f32, x: f32, y: f32, text: &str) {
    content.begin_text();
    content.set_font(font, size);
    content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
    content.show(Str(&encode(text)));
    content.end_text();
}

fn rule(content: &mut Content, x1: f32, x2: f32, y: f32, line_width: f32) {
    content.set_line_width(line_width);
    content.move_to(x1, y);
    content.line_to(x2, y);
    content.stroke();
}

/// A currency column with one value becomes a subtitle instead of a column.
fn one_currency(heading: &Heading, table: Table) -> (Heading, Table) {
    let mut heading = heading.clone();
    let Some(index) = table.columns.iter().position(|c| c == "currency") else {
        return (heading, table);
    };
    let values: std::collections::BTreeSet<String> = table
        .rows
        .iter()
        .map(|row| cell_text(&row.cells[index]))
        .collect();
    if values.len() != 1 {
        return (heading, table);
    }
    heading.subtitles.extend(
        values
            .into_iter()
            .map(|currency| format!("Currency: {currency}")),
    );
    let mut table = table;
    table.columns.remove(index);
    for row in &mut table.rows {
        row.cells.remove(index);
    }
    (heading, table)
}

pub fn document(heading: &Heading, table: Table) -> Vec<u8> {
    let (heading, table) = one_currency(heading, table);
    let (heading, table) = (&heading, &table);
    // Landscape when the columns need it.
    let portrait = layout(table, 595.0);
    let (page_width, page_height) = if portrait
        .last()
        .is_some_and(|c| c.x + c.width > 595.0 - MARGIN)
    {
        (842.0, 595.0)
    } else {
        (595.0, 842.0)
    };
    let columns = layout(table, page_width);
    let right_edge = columns
        .last()
        .map_or(page_width - MARGIN, |c| c.x + c.width);
    let generated = format!(
        "Generated {} by Tributary",
        heading.generated_at.format("%Y-%m-%d %H:%M UTC")
    );

    // Rows per page: below the title block and the column titles, above the footer.
    let mut pages: Vec<Content> = Vec::new();
    let mut rows = table.rows.iter().peekable();
    while rows.peek().is_some() || pages.is_empty() {
        let mut content = Content::new();
        let mut y = page_height - MARGIN - 14.0;
        show(&mut content, BOLD, 14.0, MARGIN, y, &heading.title);
        for subtitle in &heading.subtitles {
            y -= 13.0;
            show(&mut content, REGULAR, 9.5, MARGIN, y, subtitle);
        }
        y -= 20.0;
        let titles: Vec<Vec<String>> = columns
            .iter()
            .map(|c| wrap(&c.title, c.width - PADDING))
            .collect();
        let title_lines = titles.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..title_lines {
            for (column, title) in columns.iter().zip(&titles) {
                // Titles sit on the bottom lines, aligned like their values.
                let Some(text) = (line + title.len())
                    .checked_sub(title_lines)
                    .and_then(|i| title.get(i))
                else {
                    continue;
                };
                let x = if column.right {
                    column.x + column.width - width(text, true, SIZE)
                } else {
                    column.x
                };
                show(&mut content, BOLD, SIZE, x, y, text);
            }
            y -= ROW - 2.0;
        }
        rule(&mut content, MARGIN, right_edge, y + ROW - 6.0, 0.8);
        y -= 4.0;
        while let Some(row) = rows.peek() {
            if y < MARGIN + 30.0 {
                break;
            }
            let bold = row.emphasised();
            if matches!(row.line_type.as_str(), "subtotal" | "total") {
                for (column, cell) in columns.iter().zip(&row.cells) {
                    if column.right && !matches!(cell, Cell::Empty) {
                        rule(
                            &mut content,
                            column.x + PADDING,
                            column.x + column.width,
                            y + ROW - 3.0,
                            if row.line_type == "total" { 0.9 } else { 0.4 },
                        );
                    }
                }
            }
            for (column, cell) in columns.iter().zip(&row.cells) {
                let indent = if column.indented {
                    row.level.max(0) as f32 * 8.0
                } else {
                    0.0
                };
                let text = fit(&cell_text(cell), bold, column.width - PADDING - indent);
                let x = if column.right {
                    column.x + column.width - width(&text, bold, SIZE)
                } else {
                    column.x + indent
                };
                show(
                    &mut content,
                    if bold { BOLD } else { REGULAR },
                    SIZE,
                    x,
                    y,
                    &text,
                );
            }
            y -= if row.line_type == "total" {
                ROW + 6.0
            } else {
                ROW
            };
            rows.next();
        }
        pages.push(content);
    }

    let count = pages.len();
    let mut pdf = Pdf::new();
    let (catalog, tree, regular, bold, info) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
    );
    pdf.catalog(catalog).pages(tree);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(&heading.title))
        .creator(TextStr("Tributary"));
    let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(6 + 2 * i as i32)).collect();
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(count as i32);
    for (index, mut content) in pages.into_iter().enumerate() {
        show(
            &mut content,
            REGULAR,
            8.0,
            MARGIN,
            MARGIN - 14.0,
            &generated,
        );
        let number = format!("Page {} of {count}", index + 1);
        show(
            &mut content,
            REGULAR,
            8.0,
            page_width - MARGIN - width(&number, false, 8.0),
            MARGIN - 14.0,
            &number,
        );
        let page_id = page_ids[index];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, page_width, page_height));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}
