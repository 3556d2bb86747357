//! Prints what a datagen topic holds: records, distinct sequence numbers,
//! and the first gaps. A debugging aid for the durability tests.
use std::collections::BTreeSet;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bootstrap, topic) = (&args[1], &args[2]);
    let recs =
        sluice_tests::kafka::read_topic(bootstrap, topic, Duration::from_secs(15), |_| false);
    let seqs = sluice_tests::kafka::datagen_seqs(&recs);
    let distinct: BTreeSet<i64> = seqs.iter().copied().collect();
    let max = distinct.iter().next_back().copied().unwrap_or(-1);
    let gaps: Vec<i64> = (0..=max)
        .filter(|s| !distinct.contains(s))
        .take(10)
        .collect();
    let last_offset = recs.iter().map(|r| r.offset).max();
    println!(
        "{} records, {} distinct, max seq {max}, last offset {last_offset:?}, first gaps {gaps:?}",
        recs.len(),
        distinct.len()
    );
}
