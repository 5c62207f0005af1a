//! A report's result as CSV, XLSX, Parquet or PDF. A `line_type` column (statements) marks
//! headings, subtotals and totals, which the XLSX and PDF outputs set in bold.

use crate::definition::Format;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type, TimeUnit};
use datafusion::arrow::util::display::ArrayFormatter;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// What a document says about itself besides its rows.
#[derive(Debug, Clone)]
pub struct Heading {
    pub title: String,
    /// e.g. `Company MAIN`, `Period 2026-01` (one line each under the title).
    pub subtitles: Vec<String>,
    pub generated_at: DateTime<Utc>,
}

pub fn render(format: Format, heading: &Heading, batch: &RecordBatch) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => csv(batch),
        Format::Parquet => parquet(batch),
        Format::Xlsx => xlsx(heading, batch).map_err(|e| format!("XLSX: {e}")),
        Format::Pdf => Ok(crate::pdf::document(heading, Table::of(batch)?)),
    }
}

fn csv(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(Vec::new());
    writer.write(batch).map_err(|e| format!("CSV: {e}"))?;
    Ok(writer.into_inner())
}

fn parquet(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut buffer = Vec::new();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None)
            .map_err(|e| format!("Parquet: {e}"))?;
    writer.write(batch).map_err(|e| format!("Parquet: {e}"))?;
    writer.close().map_err(|e| format!("Parquet: {e}"))?;
    Ok(buffer)
}

/// A column title for people: `previous_year_to_date` → `Previous year to date`.
pub fn title_of(column: &str) -> String {
    let words = column.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A cell as the documents need it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Integer(i64),
    Amount(Decimal),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Boolean(bool),
}

/// The rows of a result as typed cells, with the statement markers taken out.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

pub struct Row {
    /// `heading`, `account`, `subtotal`, `total`, or `detail` for plain results.
    pub line_type: String,
    pub level: i32,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn emphasised(&self) -> bool {
        matches!(self.line_type.as_str(), "heading" | "subtotal" | "total")
    }
}

impl Table {
    pub fn of(batch: &RecordBatch) -> Result<Table, String> {
        let schema = batch.schema();
        let shown: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| !matches!(schema.field(i).name().as_str(), "line_type" | "level"))
            .collect();
        let line_type = batch.column_by_name("line_type");
        let level = batch.column_by_name("level");
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let cells = shown
                .iter()
                .map(|&i| cell(batch.column(i).as_ref(), row))
                .collect::<Result<_, _>>()?;
            rows.push(Row {
                line_type: match line_type
                    .map(|array| cell(array.as_ref(), row))
                    .transpose()?
                {
                    Some(Cell::Text(text)) => text,
                    _ => "detail".to_owned(),
                },
                level: match level.map(|array| cell(array.as_ref(), row)).transpose()? {
                    Some(Cell::Integer(level)) => i32::try_from(level).unwrap_or(0),
                    _ => 0,
                },
                cells,
            });
        }
        Ok(Table {
            columns: shown
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect(),
            rows,
        })
    }
}

pub fn cell(array: &dyn Array, row: usize) -> Result<Cell, String> {
    if array.is_null(row) {
        return Ok(Cell::Empty);
    }
    Ok(match array.data_type() {
        DataType::Decimal128(_, _) => {
            Cell::Amount(tributary_lakehouse::decimal::value_at(array, row)?)
        }
        DataType::Int64 => Cell::Integer(array.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => Cell::Integer(i64::from(array.as_primitive::<Int32Type>().value(row))),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            Cell::Date(
                NaiveDate::default()
                    .checked_add_signed(chrono::Duration::days(i64::from(days)))
                    .ok_or("date out of range")?,
            )
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = array
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .value(row);
            Cell::DateTime(DateTime::from_timestamp_micros(micros).ok_or("timestamp out of range")?)
        }
        DataType::Boolean => Cell::Boolean(array.as_boolean().value(row)),
        _ => {
            let formatter =
                ArrayFormatter::try_new(array, &Default::default()).map_err(|e| e.to_string())?;
            Cell::Text(formatter.value(row).to_string())
        }
    })
}

/// An amount as finance prints it: thousands separated, two decimals (up to four when the
/// amount has them), negatives in parentheses.
pub fn amount_text(amount: Decimal) -> String {
    let mut shown = amount.abs().normalize();
    if shown.scale() < 2 {
        shown.rescale(2);
    }
    let text = shown.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if amount.is_sign_negative() && !amount.is_zero() {
        format!("({grouped}.{fraction})")
    } else {
        format!("{grouped}.{fraction}")
    }
}

pub fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) => text.clone(),
        Cell::Integer(number) => number.to_string(),
        Cell::Amount(amount) => amount_text(*amount),
        Cell::Date(date) => date.to_string(),
        Cell::DateTime(time) => time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Cell::Boolean(flag) => flag.to_string(),
    }
}

fn xlsx(heading: &Heading, batch: &RecordBatch) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{ExcelDateTime, Format as Style, FormatBorder, Workbook};
    let table = Table::of(batch).map_err(rust_xlsxwriter::XlsxError::ParameterError)?;
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Report")?;
    let bold = Style::new().set_bold();
    sheet.write_string_with_format(
        0,
        0,
        &heading.title,
        &Style::new().set_bold().set_font_size(14),
    )?;
    let mut row: u32 = 1;
    for subtitle in &heading.subtitles {
        sheet.write_string(row, 0, subtitle)?;
        row += 1;
    }
    sheet.write_string(
        row,
        0,
        format!(
            "Generated {}",
            heading.generated_at.format("%Y-%m-%d %H:%M UTC")
        ),
    )?;
    row += 2;
    let header_row = row;
    for (column, name) in table.columns.iter().enumerate() {
        let column = u16::try_from(column).unwrap_or(u16::MAX);
        sheet.write_string_with_format(
            header_row,
            column,
            title_of(name),
            &bold.clone().set_border_bottom(FormatBorder::Thin),
        )?;
        sheet.set_column_width(column, if name == "name" { 40 } else { 16 })?;
    }
    sheet.set_freeze_panes(header_row + 1, 0)?;
    for line in &table.rows {
        row += 1;
        let mut style = Style::new();
        if line.emphasised() {
            style = style.set_bold();
        }
        if matches!(line.line_type.as_str(), "subtotal" | "total") {
            style = style.set_border_top(FormatBorder::Thin);
        }
        for (column, (name, value)) in table.columns.iter().zip(&line.cells).enumerate() {
            let column = u16::try_from(column).unwrap_or(u16::MAX);
            match value {
                Cell::Empty => {
                    sheet.write_blank(row, column, &style)?;
                }
                Cell::Text(text) => {
                    let indent = if name == "name" {
                        u8::try_from(line.level.max(0)).unwrap_or(0)
                    } else {
                        0
                    };
                    sheet.write_string_with_format(
                        row,
                        column,
                        text,
                        &style.clone().set_indent(indent),
                    )?;
                }
                Cell::Integer(number) => {
                    // Whole numbers up to 2^53 are exact as spreadsheet numbers.
                    sheet.write_number_with_format(
                        row,
                        column,
                        number.to_f64().unwrap_or_default(),
                        &style,
                    )?;
                }
                Cell::Amount(amount) => {
                    let decimals = if amount.normalize().scale() > 2 {
                        "#,##0.00##"
                    } else {
                        "#,##0.00"
                    };
                    sheet.write_number_with_format(
                        row,
                        column,
                        amount.to_f64().unwrap_or_default(),
                        &style
                            .clone()
                            .set_num_format(format!("{decimals};({decimals})")),
                    )?;
                }
                Cell::Date(date) => {
                    use chrono::Datelike;
                    let value = ExcelDateTime::from_ymd(
                        u16::try_from(date.year()).unwrap_or(1900),
                        u8::try_from(date.month()).unwrap_or(1),
                        u8::try_from(date.day()).unwrap_or(1),
                    )?;
                    sheet.write_datetime_with_format(
                        row,
                        column,
                        &value,
                        &style.clone().set_num_format("yyyy-mm-dd"),
                    )?;
                }
                Cell::DateTime(time) => {
                    let value = ExcelDateTime::from_timestamp(time.timestamp())?;
                    sheet.write_datetime_with_format(
                        row,
                        column,
                        &value,
                        &style.clone().set_num_format("yyyy-mm-dd hh:mm:ss"),
                    )?;
                }
                Cell::Boolean(flag) => {
                    sheet.write_boolean_with_format(row, column, *flag, &style)?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}
