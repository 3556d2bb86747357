//! Debezium's schema history read back: the captured tables as the
//! documents of a history topic describe them at a binlog position. A
//! connector taking over from Debezium (its offsets, no history of
//! sluice's own) resumes with the columns the row events there were
//! written under, not the tables' current ones, so DDL between Debezium's
//! last offset and the switch is followed instead of failing the task.
//!
//! A document is read through its `tableChanges` (Debezium's table
//! documents, what sluice writes too); one without them (older Debezium
//! versions kept only the DDL text) makes the whole history unusable here,
//! and the caller falls back to the current definitions as before.

use serde_json::Value as Json;

use crate::catalog::{table_id, ColumnDef, TableDef, Tables};

/// The captured tables (`captured(database, table)`) as of the last
/// document at or before `at` (binlog file, position), with that
/// document's position; `None` when no usable document is at or before it.
pub fn tables_at(
    documents: &[Vec<u8>],
    at: (&str, u64),
    captured: impl Fn(&str, &str) -> bool,
) -> Option<(Tables, (String, u64))> {
    let mut tables = Tables::new();
    let mut last = None;
    for raw in documents {
        let Ok(document) = serde_json::from_slice::<Json>(raw) else {
            tracing::warn!("a schema history record is not JSON; it is skipped");
            continue;
        };
        let position = &document["position"];
        let (Some(file), Some(pos)) = (position["file"].as_str(), position["pos"].as_u64()) else {
            continue;
        };
        if (file, pos) > at {
            continue;
        }
        let Some(changes) = document["tableChanges"].as_array() else {
            tracing::warn!(
                ddl = document["ddl"].as_str().unwrap_or_default(),
                "a schema history record has no tableChanges (an older Debezium kept only DDL text): the history is not used"
            );
            return None;
        };
        for change in changes {
            if !apply(&mut tables, change, &captured) {
                tracing::warn!(
                    change = %change,
                    "a schema history record holds a table Debezium's reader could not parse either (sluice before its history was in Debezium's format?): the history is not used"
                );
                return None;
            }
        }
        last = Some((file.to_owned(), pos));
    }
    last.map(|at| (tables, at))
}

/// Applies one table change (`CREATE`, `ALTER` or `DROP`) to `tables`;
/// false when it cannot be read (then nothing of the history is trusted).
fn apply(tables: &mut Tables, change: &Json, captured: &impl Fn(&str, &str) -> bool) -> bool {
    let Some((database, name)) = change["id"].as_str().and_then(parse_id) else {
        return false;
    };
    if !captured(&database, &name) {
        return true;
    }
    let id = table_id(&database, &name);
    match change["type"].as_str() {
        Some("DROP") => {
            tables.remove(&id);
            true
        }
        Some("CREATE" | "ALTER") => match table(&database, &name, &change["table"]) {
            Some(table) => {
                tables.insert(id, table);
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// `"db"."table"` (Debezium's quoted form) or `db.table`.
fn parse_id(id: &str) -> Option<(String, String)> {
    if let Some(quoted) = id.strip_prefix('"') {
        let (database, rest) = quoted.split_once("\".\"")?;
        return Some((database.to_owned(), rest.strip_suffix('"')?.to_owned()));
    }
    let (database, name) = id.split_once('.')?;
    Some((database.to_owned(), name.to_owned()))
}

/// A table document: its columns in position order and its key.
fn table(database: &str, name: &str, document: &Json) -> Option<TableDef> {
    let mut columns: Vec<(i64, ColumnDef)> = document["columns"]
        .as_array()?
        .iter()
        .map(|c| Some((c["position"].as_i64()?, column(c)?)))
        .collect::<Option<_>>()?;
    columns.sort_by_key(|(position, _)| *position);
    Some(TableDef {
        database: database.to_owned(),
        name: name.to_owned(),
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        primary_key: document["primaryKeyColumnNames"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A column document as `information_schema` would show the column:
/// `DATA_TYPE` from the type name's first word, `COLUMN_TYPE` with the
/// length, scale or enum values and the modifiers (`unsigned`).
fn column(document: &Json) -> Option<ColumnDef> {
    let type_name = document["typeName"].as_str()?.to_ascii_lowercase();
    let mut words = type_name.split_whitespace();
    let data_type = words.next()?.to_owned();
    let values: Vec<String> = document["enumValues"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Json::as_str)
                .map(|s| format!("'{}'", s.replace('\'', "''")))
                .collect()
        })
        .unwrap_or_default();
    let args = if !values.is_empty() {
        Some(values.join(","))
    } else {
        match (document["length"].as_i64(), document["scale"].as_i64()) {
            (Some(length), Some(scale)) => Some(format!("{length},{scale}")),
            (Some(length), None) => Some(length.to_string()),
            _ => None,
        }
    };
    let mut column_type = data_type.clone();
    if let Some(args) = args {
        column_type.push_str(&format!("({args})"));
    }
    for modifier in words {
        column_type.push(' ');
        column_type.push_str(modifier);
    }
    Some(ColumnDef {
        name: document["name"].as_str()?.to_owned(),
        data_type,
        column_type,
        nullable: document["optional"].as_bool().unwrap_or(true),
        default: document["defaultValueExpression"]
            .as_str()
            .map(str::to_owned),
        charset: document["charsetName"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column_doc(name: &str, type_name: &str, position: i64, extra: Json) -> Json {
        let mut doc = json!({"name": name, "jdbcType": 4, "typeName": type_name,
            "typeExpression": type_name, "position": position, "optional": true});
        for (k, v) in extra.as_object().expect("object") {
            doc[k] = v.clone();
        }
        doc
    }

    fn document(file: &str, pos: u64, changes: Json) -> Vec<u8> {
        json!({"source": {"server": "s"}, "position": {"file": file, "pos": pos},
               "databaseName": "db", "ddl": "...", "tableChanges": changes})
        .to_string()
        .into_bytes()
    }

    fn create(table: &str, columns: Vec<Json>) -> Json {
        json!({"type": "CREATE", "id": format!("\"db\".\"{table}\""),
               "table": {"primaryKeyColumnNames": ["id"], "columns": columns}})
    }

    #[test]
    fn the_tables_are_those_of_the_last_document_at_or_before_the_position() {
        let documents = vec![
            document(
                "binlog.000001",
                100,
                json!([create(
                    "t",
                    vec![
                        column_doc("id", "INT", 1, json!({"length": 11, "optional": false})),
                        column_doc("qty", "INT UNSIGNED", 2, json!({"length": 10})),
                    ]
                )]),
            ),
            document(
                "binlog.000001",
                200,
                json!([create(
                    "other",
                    vec![column_doc("id", "INT", 1, json!({})),]
                )]),
            ),
            // After the position: a change the stream reads again.
            document(
                "binlog.000002",
                50,
                json!([{"type": "DROP", "id": "\"db\".\"t\""}]),
            ),
        ];
        let (tables, at) =
            tables_at(&documents, ("binlog.000001", 300), |_, t| t != "other").expect("tables");
        assert_eq!(at, ("binlog.000001".to_owned(), 200));
        assert_eq!(tables.keys().collect::<Vec<_>>(), vec!["db.t"]);
        let t = &tables["db.t"];
        assert_eq!(t.primary_key, vec!["id"]);
        let types: Vec<(&str, &str, &str, bool)> = t
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.data_type.as_str(),
                    c.column_type.as_str(),
                    c.nullable,
                )
            })
            .collect();
        assert_eq!(
            types,
            vec![
                ("id", "int", "int(11)", false),
                ("qty", "int", "int(10) unsigned", true)
            ]
        );
        let (tables, _) =
            tables_at(&documents, ("binlog.000002", 50), |_, _| true).expect("tables");
        assert!(!tables.contains_key("db.t"), "dropped at the position");
    }

    #[test]
    fn columns_keep_scale_enum_values_charset_and_position_order() {
        let documents = vec![document(
            "b.000001",
            4,
            json!([create(
                "t",
                vec![
                    column_doc(
                        "kind",
                        "ENUM",
                        3,
                        json!({"enumValues": ["a", "it's"], "charsetName": "utf8mb4"})
                    ),
                    column_doc(
                        "price",
                        "DECIMAL",
                        2,
                        json!({"length": 10, "scale": 2, "defaultValueExpression": "1.50"})
                    ),
                    column_doc("id", "BIGINT", 1, json!({})),
                ]
            )]),
        )];
        let (tables, _) = tables_at(&documents, ("b.000001", 4), |_, _| true).expect("tables");
        let columns = &tables["db.t"].columns;
        assert_eq!(
            columns
                .iter()
                .map(|c| c.column_type.as_str())
                .collect::<Vec<_>>(),
            vec!["bigint", "decimal(10,2)", "enum('a','it''s')"]
        );
        assert_eq!(columns[2].charset.as_deref(), Some("utf8mb4"));
        assert_eq!(columns[1].default.as_deref(), Some("1.50"));
    }

    #[test]
    fn a_table_in_another_shape_makes_the_history_unused() {
        // As sluice wrote its history before it used Debezium's documents.
        let documents = vec![document(
            "b.000001",
            4,
            json!([{"type": "CREATE", "id": "db.t",
            "table": {"database": "db", "name": "t", "primary_key": ["id"],
                      "columns": [{"name": "id", "data_type": "int", "column_type": "int(11)"}]}}]),
        )];
        assert!(tables_at(&documents, ("b.000001", 9), |_, _| true).is_none());
    }

    #[test]
    fn a_history_without_table_changes_or_before_the_first_document_is_not_used() {
        let old =
            json!({"position": {"file": "b.000001", "pos": 4}, "ddl": "CREATE TABLE t (id INT)"})
                .to_string()
                .into_bytes();
        assert!(tables_at(&[old], ("b.000001", 9), |_, _| true).is_none());
        let documents = vec![document("b.000002", 4, json!([]))];
        assert!(tables_at(&documents, ("b.000001", 9), |_, _| true).is_none());
    }
}
