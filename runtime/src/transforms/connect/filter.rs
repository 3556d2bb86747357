//! `Filter`: drops every record it applies to. On its own it drops all;
//! with a predicate (and `negate`) it drops the records that match.

use crate::transforms::{Failure, Record, Transform};

/// The transform.
pub struct Filter;

impl Transform for Filter {
    fn apply(&self, _record: Record) -> Result<Option<Record>, Failure> {
        Ok(None)
    }
}
