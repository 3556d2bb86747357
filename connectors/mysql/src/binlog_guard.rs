//! Checks a binlog event must pass before mysql_common decodes its rows.
//! That decoder trusts the server: a corrupt table map (a broken server, a
//! proxy in between) with a DECIMAL whose scale exceeds its precision makes
//! it compute a wrapped byte count and allocate exabytes, which aborts the
//! whole worker; a column without its metadata makes it index past an
//! empty slice (a panic); a rows event whose images take no bytes makes it
//! yield rows for ever. All found by the binlog fuzz target (`fuzz/`),
//! which runs these same checks before decoding.

use mysql_async::binlog::events::{RowsEventData, TableMapEvent};
use mysql_async::consts::ColumnType;

/// MySQL's limit on the columns of a table.
const MAX_COLUMNS: u64 = 4096;
/// MySQL's limits on DECIMAL(M, D): M ≤ 65, D ≤ 30.
const MAX_DECIMAL_PRECISION: u8 = 65;
const MAX_DECIMAL_SCALE: u8 = 30;

/// Whether the row images of `tme`'s table can be decoded safely; the
/// error names the column and what is wrong with it.
pub fn check_table_map(tme: &TableMapEvent<'_>) -> Result<(), String> {
    let columns = tme.columns_count();
    if columns > MAX_COLUMNS {
        return Err(format!(
            "the table map claims {columns} columns (MySQL allows {MAX_COLUMNS})"
        ));
    }
    for column in 0..columns as usize {
        // The decoder indexes each column's metadata as its type demands,
        // and reads an absent one as empty.
        let Ok(Some(kind)) = tme.get_column_type(column) else {
            return Err(format!("column {column} has a type MySQL does not have"));
        };
        let Some(metadata) = tme.get_column_metadata(column) else {
            return Err(format!("column {column} ({kind:?}) lacks its metadata"));
        };
        // A typed array's values are read as the type the first byte of
        // its metadata names, with that same metadata (mysql_common's
        // reading): a DECIMAL hidden that way needs the same check. The
        // connector's row reader (row_images.rs) reaches it where
        // mysql_common's own used to stop earlier, at optional metadata
        // it could not parse (found by the binlog fuzz target).
        let kind = match (kind, metadata.first()) {
            (ColumnType::MYSQL_TYPE_TYPED_ARRAY, Some(inner)) => {
                ColumnType::try_from(*inner).unwrap_or(kind)
            }
            _ => kind,
        };
        if kind != ColumnType::MYSQL_TYPE_NEWDECIMAL {
            continue;
        }
        let (precision, scale) = match metadata {
            [precision, scale, ..] => (*precision, *scale),
            _ => {
                return Err(format!(
                    "column {column} is a DECIMAL without its precision and scale"
                ))
            }
        };
        if precision == 0
            || precision > MAX_DECIMAL_PRECISION
            || scale > MAX_DECIMAL_SCALE
            || scale > precision
        {
            return Err(format!(
                "column {column} is DECIMAL({precision},{scale}), which MySQL cannot declare"
            ));
        }
    }
    Ok(())
}

/// The most rows `rows` can hold: every real row image takes at least a
/// byte (its null bitmap).
pub fn most_rows(rows: &RowsEventData<'_>) -> usize {
    rows.rows_data().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TABLE_MAP event for `db.t (id INT, price DECIMAL(precision, scale))`.
    fn table_map(precision: u8, scale: u8) -> TableMapEvent<'static> {
        with_metadata(&[precision, scale])
    }

    /// The same table with a DECIMAL whose metadata is cut to one byte.
    fn short_metadata() -> TableMapEvent<'static> {
        with_metadata(&[10])
    }

    fn with_metadata(metadata: &[u8]) -> TableMapEvent<'static> {
        with_type(246, metadata)
    }

    /// `db.t (id INT, c <kind>)` with `metadata` for `c`.
    fn with_type(kind: u8, metadata: &[u8]) -> TableMapEvent<'static> {
        crate::test_binlog::table_map(&[3, kind], metadata, 0b10)
    }

    #[test]
    fn a_column_without_its_metadata_is_refused() {
        // Metadata length 1 for a DECIMAL's 2 bytes: the last column has none.
        let why = check_table_map(&short_metadata()).expect_err("refused");
        assert!(why.contains("lacks its metadata"), "{why}");
    }

    #[test]
    fn a_decimal_mysql_could_declare_passes() {
        assert_eq!(check_table_map(&table_map(10, 2)), Ok(()));
        assert_eq!(check_table_map(&table_map(65, 30)), Ok(()));
    }

    #[test]
    fn a_decimal_inside_a_typed_array_is_checked_too() {
        // MYSQL_TYPE_TYPED_ARRAY (20) whose values read as NEWDECIMAL(246, 250).
        let why = check_table_map(&with_type(20, &[246, 246, 250])).expect_err("refused");
        assert!(why.contains("DECIMAL(246,250)"), "{why}");
    }

    /// Each of these made mysql_common compute a wrapped size and try to
    /// allocate exabytes (an abort of the whole worker) in the fuzz target.
    #[test]
    fn a_decimal_no_server_could_declare_is_refused_by_name() {
        for (precision, scale) in [(2, 10), (0, 0), (200, 2), (65, 31)] {
            let why = check_table_map(&table_map(precision, scale)).expect_err("refused");
            assert!(
                why.contains(&format!("DECIMAL({precision},{scale})")),
                "{why}"
            );
        }
    }
}
