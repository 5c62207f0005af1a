//! Between the kernel's Arrow-free [`Cell`]s and Arrow: query results as rows of cells for
//! the contexts' read APIs, and source relations built from events for the pipelines.
//!
//! ```text
//!  events ──► Relation::decode(event, sink) ──► RelationRows (one Arrow builder per column)
//!                 │ an event whose rows fail (bad JSON, a decimal finer than its column)
//!                 └─► rejected with its error; its rows are dropped, the others kept
//! ```

use crate::catalog::{MONEY_PRECISION, arrow_type, schema_of};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Date32Builder, Decimal128Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use std::sync::Arc;
use tributary_kernel::EventEnvelope;
use tributary_kernel::lake::{Cell, ColumnSpec, ColumnType, Relation, RowSink, Rows};

/// A parameter as DataFusion binds it.
pub fn scalar(cell: &Cell<'_>) -> ScalarValue {
    match cell {
        Cell::Null => ScalarValue::Null,
        Cell::Text(text) => ScalarValue::Utf8(Some(text.to_string())),
        Cell::Int32(v) => ScalarValue::Int32(Some(*v)),
        Cell::Int64(v) => ScalarValue::Int64(Some(*v)),
        Cell::Date(v) => ScalarValue::Date32(Some(crate::catalog::date32(*v))),
        Cell::Decimal(v) => {
            ScalarValue::Decimal128(Some(v.mantissa()), MONEY_PRECISION, v.scale() as i8)
        }
        Cell::Timestamp(v) => {
            ScalarValue::TimestampMicrosecond(Some(v.timestamp_micros()), Some("UTC".into()))
        }
        Cell::Boolean(v) => ScalarValue::Boolean(Some(*v)),
    }
}

/// The value at `row` of an Arrow column.
pub fn cell_at(array: &dyn Array, row: usize) -> Result<Cell<'static>, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    Ok(match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let formatter = datafusion::arrow::util::display::ArrayFormatter::try_new(
                array,
                &Default::default(),
            )
            .map_err(|e| e.to_string())?;
            Cell::owned(formatter.value(row).to_string())
        }
        DataType::Int32 => Cell::Int32(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Cell::Int64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            Cell::Date(chrono::NaiveDate::default() + chrono::Duration::days(i64::from(days)))
        }
        DataType::Decimal128(_, _) => Cell::Decimal(crate::decimal::value_at(array, row)?),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            Cell::Timestamp(
                chrono::DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| format!("timestamp {micros} out of range"))?,
            )
        }
        DataType::Boolean => Cell::Boolean(array.as_boolean().value(row)),
        other => return Err(format!("a {other} column cannot be read as a cell")),
    })
}

/// Query results as rows of cells.
pub fn rows(batches: &[RecordBatch]) -> Result<Rows, String> {
    let mut rows = Rows::default();
    if let Some(first) = batches.first() {
        rows.columns = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
    }
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| cell_at(column.as_ref(), row))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
    }
    Ok(rows)
}

enum Builder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Date(Date32Builder),
    Decimal(Decimal128Builder, i8),
    Timestamp(TimestampMicrosecondBuilder),
    Boolean(BooleanBuilder),
}

impl Builder {
    fn new(column_type: ColumnType) -> Builder {
        Builder::with_capacity(column_type, 0)
    }

    /// A builder with room for `rows` values (text: 16 bytes each) before it grows.
    fn with_capacity(column_type: ColumnType, rows: usize) -> Builder {
        match column_type {
            ColumnType::Text => Builder::Text(StringBuilder::with_capacity(rows, rows * 16)),
            ColumnType::Int32 => Builder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => Builder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            ColumnType::Decimal { scale } => {
                Builder::Decimal(Decimal128Builder::with_capacity(rows), scale)
            }
            ColumnType::Timestamp => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            ColumnType::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(rows)),
        }
    }

    /// Appends the cell; a cell of another type or a decimal the column cannot hold exactly
    /// appends NULL and says why.
    fn push(&mut self, cell: &Cell<'_>) -> Result<(), String> {
        match (self, cell) {
            (Builder::Text(b), Cell::Text(text)) => b.append_value(text),
            (Builder::Int32(b), Cell::Int32(v)) => b.append_value(*v),
            (Builder::Int64(b), Cell::Int64(v)) => b.append_value(*v),
            (Builder::Date(b), Cell::Date(v)) => b.append_value(crate::catalog::date32(*v)),
            (Builder::Timestamp(b), Cell::Timestamp(v)) => b.append_value(v.timestamp_micros()),
            (Builder::Boolean(b), Cell::Boolean(v)) => b.append_value(*v),
            (Builder::Decimal(b, scale), Cell::Decimal(v)) => {
                let v = *v;
                let mut scaled = v;
                scaled.rescale(*scale as u32);
                if scaled != v || scaled.scale() != *scale as u32 {
                    b.append_null();
                    return Err(format!("{v} has more than {scale} decimals"));
                }
                b.append_value(scaled.mantissa());
            }
            (Builder::Text(b), Cell::Null) => b.append_null(),
            (Builder::Int32(b), Cell::Null) => b.append_null(),
            (Builder::Int64(b), Cell::Null) => b.append_null(),
            (Builder::Date(b), Cell::Null) => b.append_null(),
            (Builder::Decimal(b, _), Cell::Null) => b.append_null(),
            (Builder::Timestamp(b), Cell::Null) => b.append_null(),
            (Builder::Boolean(b), Cell::Null) => b.append_null(),
            (builder, cell) => {
                builder.push(&Cell::Null)?;
                return Err(format!("a {cell:?} cell does not fit the column's type"));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::Int32(mut b) => Arc::new(b.finish()),
            Builder::Int64(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Decimal(mut b, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(MONEY_PRECISION, scale)?,
            ),
            Builder::Timestamp(mut b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Boolean(mut b) => Arc::new(b.finish()),
        })
    }
}

/// An event a relation could not take, with why.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Index into the events given to [`decode_relation`].
    pub event: usize,
    pub error: String,
}

struct Sink<'a> {
    columns: &'a [ColumnSpec],
    builders: Vec<Builder>,
    error: Option<String>,
}

impl RowSink for Sink<'_> {
    fn cell(&mut self, column: usize, cell: Cell<'_>) {
        let Some(builder) = self.builders.get_mut(column) else {
            self.error = Some(format!("column {column} is not in the relation"));
            return;
        };
        if let Err(reason) = builder.push(&cell) {
            let name = self.columns.get(column).map_or("?", |c| c.name);
            self.error.get_or_insert(format!("column {name}: {reason}"));
        }
    }
}

/// The relation's rows for `events`, and the events it rejected (their rows left out).
pub fn decode_relation(
    relation: &dyn Relation,
    events: &[&EventEnvelope],
) -> Result<(RecordBatch, Vec<Rejected>), ArrowError> {
    let columns = relation.columns();
    let mut sink = Sink {
        columns: &columns,
        builders: columns
            .iter()
            .map(|c| Builder::new(c.column_type))
            .collect(),
        error: None,
    };
    let mut keep: Vec<bool> = Vec::new();
    let mut rejected = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if !relation.reads(event) {
            continue;
        }
        match relation.decode(event, &mut sink) {
            Ok(rows) => {
                let error = sink.error.take();
                keep.extend(std::iter::repeat_n(error.is_none(), rows));
                if let Some(error) = error {
                    rejected.push(Rejected {
                        event: index,
                        error,
                    });
                }
            }
            Err(error) => rejected.push(Rejected {
                event: index,
                error: error.to_string(),
            }),
        }
    }
    let schema: SchemaRef = schema_of(&columns);
    let arrays = sink
        .builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Result<Vec<_>, _>>()?;
    if keep.iter().all(|k| *k) {
        return Ok((RecordBatch::try_new(schema, arrays)?, rejected));
    }
    // Rejected rows may hold NULLs in non-null columns: filter them out under a nullable
    // schema, then take the relation's own.
    let nullable = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, arrow_type(c.column_type), true))
            .collect::<Vec<_>>(),
    ));
    let all = RecordBatch::try_new(nullable, arrays)?;
    let kept = filter_record_batch(&all, &BooleanArray::from(keep))?;
    Ok((
        RecordBatch::try_new(schema, kept.columns().to_vec())?,
        rejected,
    ))
}

/// Rows of cells (in the schema's column order) as one record batch of `schema`; a cell that
/// does not fit its column is an error naming the row and the column.
pub fn batch_of(schema: &SchemaRef, rows: &[Vec<Cell<'_>>]) -> Result<RecordBatch, ArrowError> {
    let mut builders = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column_type = match field.data_type() {
            DataType::Utf8 => ColumnType::Text,
            DataType::Int32 => ColumnType::Int32,
            DataType::Int64 => ColumnType::Int64,
            DataType::Date32 => ColumnType::Date,
            DataType::Decimal128(_, scale) => ColumnType::Decimal { scale: *scale },
            DataType::Timestamp(..) => ColumnType::Timestamp,
            DataType::Boolean => ColumnType::Boolean,
            other => {
                return Err(ArrowError::NotYetImplemented(format!(
                    "column {} of type {other}",
                    field.name()
                )));
            }
        };
        builders.push(Builder::with_capacity(column_type, rows.len()));
    }
    for (index, row) in rows.iter().enumerate() {
        if row.len() != builders.len() {
            return Err(ArrowError::InvalidArgumentError(format!(
                "row {index} has {} cells for {} columns",
                row.len(),
                builders.len()
            )));
        }
        for ((builder, cell), field) in builders.iter_mut().zip(row).zip(schema.fields()) {
            builder.push(cell).map_err(|reason| {
                ArrowError::InvalidArgumentError(format!(
                    "row {index}, column {}: {reason}",
                    field.name()
                ))
            })?;
        }
    }
    let arrays = builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), arrays)
}
