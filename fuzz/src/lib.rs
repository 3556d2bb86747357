//! What the fuzz targets share.

use std::panic;

/// Lets panics raised inside the named crates (`"/mysql_common-"`: a part of
/// the source path) unwind to the target's `catch_unwind`, where sluice
/// catches them too; every other panic still aborts, as libFuzzer's own
/// hook (installed before the target's `init`) makes it.
pub fn tolerate_panics_from(crates: &'static [&'static str]) {
    let abort = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let known = info
            .location()
            .is_some_and(|l| crates.iter().any(|c| l.file().contains(c)));
        if !known {
            abort(info);
        }
    }));
}
