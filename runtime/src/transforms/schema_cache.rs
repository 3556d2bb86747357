//! Transforms that change a schema derive the same new schema for every
//! record of a table. Converters cache registry ids by schema identity, so
//! the derived schema must be the same `Arc` each time: this cache keeps
//! one per input schema.

use std::sync::{Arc, Mutex};

use sluice_connector_api::Schema;

/// How many input schemas are remembered; more (a very wide database)
/// evicts the oldest and only costs a rebuild.
const CAPACITY: usize = 256;

/// Derived schemas by input schema identity.
#[derive(Default)]
pub struct SchemaCache {
    entries: Mutex<Vec<(Arc<Schema>, Arc<Schema>)>>,
}

impl SchemaCache {
    /// The schema derived from `input`, built by `derive` the first time.
    /// The input is held so its address cannot be reused by another schema.
    pub fn get_or<E>(
        &self,
        input: &Arc<Schema>,
        derive: impl FnOnce(&Schema) -> Result<Schema, E>,
    ) -> Result<Arc<Schema>, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, derived)) = entries.iter().find(|(i, _)| Arc::ptr_eq(i, input)) {
            return Ok(Arc::clone(derived));
        }
        let derived = Arc::new(derive(input)?);
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push((Arc::clone(input), Arc::clone(&derived)));
        Ok(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_input_gives_the_same_derived_schema() {
        let cache = SchemaCache::default();
        let input = Arc::new(Schema::int32());
        let a = cache
            .get_or(&input, |_| Ok::<_, ()>(Schema::int64()))
            .unwrap();
        let b = cache
            .get_or(&input, |_| Ok::<_, ()>(Schema::string()))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = Arc::new(Schema::int32());
        let c = cache
            .get_or(&other, |_| Ok::<_, ()>(Schema::string()))
            .unwrap();
        assert_eq!(*c, Schema::string());
    }
}
