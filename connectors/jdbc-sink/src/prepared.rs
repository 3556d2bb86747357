//! A batch planned before it meets the target: the runtime has the next
//! batch planned (read into changes, collapsed into steps) while the task
//! applies the current one, so the target waits for the task only for
//! the writing. Interpreting and planning took about 2 ms of each batch of
//! 5,000 rows, during which the target sat idle (`scripts/bench-sink`).

use sluice_connector_api::{BatchPreparer, PreparedBatch, SinkRecord};

use crate::change::{interpret_with, Layouts};
use crate::config::SinkConfig;
use crate::plan::{plan, Step};

/// The steps of each target transaction a batch takes (one per
/// `batch.size` records), or why a record could not be read.
pub type Plans<'r> = Result<Vec<Vec<Step<'r>>>, String>;

/// Reads `records` into the steps of their target transactions, one per
/// `batch.size` of them.
pub fn plans<'r>(config: &SinkConfig, records: &'r [SinkRecord]) -> Plans<'r> {
    let mut layouts = Layouts::default();
    records
        .chunks(config.batch_size)
        .map(|chunk| {
            // Sized up front: collecting a `Result` gives no size hint,
            // so the vector grew and copied itself a dozen times a batch.
            let mut changes = Vec::with_capacity(chunk.len());
            for record in chunk {
                changes.push(interpret_with(config, &mut layouts, record)?);
            }
            Ok(plan(changes))
        })
        .collect()
}

self_cell::self_cell!(
    /// Records with the plans made of them, which borrow from them.
    pub struct PlannedBatch {
        owner: Vec<SinkRecord>,
        #[covariant]
        dependent: Plans,
    }
);

impl PlannedBatch {
    /// The plans, made under `config`.
    pub fn plans(&self) -> &Plans<'_> {
        self.borrow_dependent()
    }
}

impl PreparedBatch for PlannedBatch {
    fn records(&self) -> &[SinkRecord] {
        self.borrow_owner()
    }

    fn into_records(self: Box<Self>) -> Vec<SinkRecord> {
        self.into_owner()
    }
}

/// Plans batches under the task's config.
pub struct Planner(pub SinkConfig);

impl BatchPreparer for Planner {
    fn prepare(&self, records: Vec<SinkRecord>) -> Box<dyn PreparedBatch> {
        Box::new(PlannedBatch::new(records, |records| {
            plans(&self.0, records)
        }))
    }
}

#[cfg(test)]
mod tests {
    use sluice_connector_api::Value;

    use super::*;
    use crate::change::tests::{config, envelope, item, record};

    fn offsets(records: &[SinkRecord]) -> Vec<i64> {
        records.iter().map(|r| r.kafka_offset).collect()
    }

    fn batch(values: &[(&str, i32, &str)]) -> Vec<SinkRecord> {
        values
            .iter()
            .enumerate()
            .map(|(at, (op, id, name))| {
                let (before, after) = match *op {
                    "d" => (item(*id, name), Value::Null),
                    _ => (Value::Null, item(*id, name)),
                };
                let mut r = record(Some(envelope(op, before, after)), *id);
                r.kafka_offset = at as i64;
                r
            })
            .collect()
    }

    fn writes(steps: &[Step<'_>]) -> Vec<(usize, usize)> {
        steps
            .iter()
            .map(|step| match step {
                Step::Write(w) => (w.rows.len(), w.deletes.len()),
                Step::Truncate(_) => (0, 0),
            })
            .collect()
    }

    #[test]
    fn a_planned_batch_holds_its_records_and_the_plan_put_makes() {
        let c = config(&[
            ("insert.mode", "upsert"),
            ("primary.key.mode", "record_key"),
            ("delete.enabled", "true"),
        ]);
        let records = batch(&[("c", 7, "a"), ("u", 7, "b"), ("c", 8, "c"), ("d", 9, "d")]);
        let direct = plans(&c, &records).expect("readable records");
        let prepared = Planner(c.clone()).prepare(records.clone());
        let as_any: &dyn std::any::Any = prepared.as_ref();
        let planned = as_any
            .downcast_ref::<PlannedBatch>()
            .expect("the task finds its own preparation");
        let ahead = planned.plans().as_ref().expect("readable records");
        assert_eq!(
            ahead.len(),
            1,
            "one transaction for a batch within batch.size"
        );
        assert_eq!(writes(&ahead[0]), writes(&direct[0]));
        assert_eq!(
            writes(&ahead[0]),
            [(2, 1)],
            "key 7 collapsed to its last row"
        );
        assert_eq!(offsets(prepared.records()), offsets(&records));
        assert_eq!(offsets(&prepared.into_records()), [0, 1, 2, 3]);
    }

    #[test]
    fn batch_size_splits_a_batch_into_transactions() {
        let c = config(&[("batch.size", "2")]);
        let records = batch(&[("c", 1, "a"), ("c", 2, "b"), ("c", 3, "c")]);
        let planned = plans(&c, &records).expect("readable records");
        assert_eq!(planned.len(), 2);
        assert_eq!(writes(&planned[0]), [(2, 0)]);
        assert_eq!(writes(&planned[1]), [(1, 0)]);
    }

    #[test]
    fn an_unreadable_record_fails_the_plan_and_keeps_every_record() {
        let c = config(&[]);
        let mut records = batch(&[("c", 1, "a"), ("c", 2, "b")]);
        records[1].value_schema = None;
        let prepared = Planner(c).prepare(records);
        let as_any: &dyn std::any::Any = prepared.as_ref();
        let planned = as_any.downcast_ref::<PlannedBatch>().expect("planned");
        let error = planned
            .plans()
            .as_ref()
            .expect_err("a record without a schema");
        assert!(error.contains("no schema"), "{error}");
        assert_eq!(offsets(prepared.records()), [0, 1], "nothing is dropped");
    }
}
