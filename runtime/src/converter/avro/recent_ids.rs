//! The schema ids a thread found last, in front of a converter's shared
//! cache: a record's key and value each ask for theirs, and the shared
//! cache's lock, hash and topic search cost ~118 instructions a lookup
//! (callgrind, `scripts/bench-mysql` snapshot) against a few dozen here.
//!
//! An entry holds its schema, so the address it is found by cannot be
//! reused by another schema while it is kept, and names its converter by
//! a number never given twice (an address could be a later converter's).
//! A registry's id for a subject's schema never changes, so an entry is
//! never stale; it only drops out when newer ones take its place.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sluice_connector_api::Schema;

/// Entries a thread keeps: the key and value schemas of two tables
/// whose records take turns.
const KEPT: usize = 4;

/// The next converter's number.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A number for a new converter, never given to another.
pub fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

struct Entry {
    owner: u64,
    schema: Arc<Schema>,
    topic: Box<str>,
    id: i32,
}

#[derive(Default)]
struct Recent {
    entries: [Option<Entry>; KEPT],
    /// The entry the next one replaces, oldest first.
    next: usize,
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::default();
}

/// The id `owner` found for `schema` on `topic`, if this thread kept it.
pub fn find(owner: u64, topic: &str, schema: &Arc<Schema>) -> Option<i32> {
    RECENT.with(|recent| {
        let recent = recent.try_borrow().ok()?;
        recent.entries.iter().flatten().find_map(|e| {
            (e.owner == owner && Arc::ptr_eq(&e.schema, schema) && *e.topic == *topic)
                .then_some(e.id)
        })
    })
}

/// Keeps the id `owner` found for `schema` on `topic`, in place of this
/// thread's oldest entry.
pub fn keep(owner: u64, topic: &str, schema: &Arc<Schema>, id: i32) {
    RECENT.with(|recent| {
        let Ok(mut recent) = recent.try_borrow_mut() else {
            return;
        };
        let at = recent.next;
        recent.entries[at] = Some(Entry {
            owner,
            schema: Arc::clone(schema),
            topic: topic.into(),
            id,
        });
        recent.next = (at + 1) % KEPT;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_found_only_by_its_converter_schema_and_topic() {
        let (a, b) = (new_owner(), new_owner());
        let schema = Arc::new(Schema::int64());
        let equal = Arc::new(Schema::int64());
        keep(a, "t", &schema, 7);
        assert_eq!(find(a, "t", &schema), Some(7));
        assert_eq!(find(b, "t", &schema), None, "another converter");
        assert_eq!(find(a, "u", &schema), None, "another topic");
        assert_eq!(find(a, "t", &equal), None, "an equal schema elsewhere");
    }

    #[test]
    fn the_oldest_entry_gives_way() {
        let owner = new_owner();
        let schemas: Vec<Arc<Schema>> = (0..=KEPT).map(|_| Arc::new(Schema::string())).collect();
        for (id, schema) in schemas.iter().enumerate() {
            keep(owner, "t", schema, id as i32);
        }
        assert_eq!(find(owner, "t", &schemas[0]), None, "the oldest gave way");
        for (id, schema) in schemas.iter().enumerate().skip(1) {
            assert_eq!(find(owner, "t", schema), Some(id as i32));
        }
    }
}
