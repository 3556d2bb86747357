//! The worker's log: text or JSON lines on stderr, filtered by `SLUICE_LOG`
//! (default `info,rdkafka=warn`), with levels changeable while it runs
//! through Connect's `/admin/loggers` endpoints.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The filter in force: the startup directives plus the levels set since.
struct Levels {
    base: String,
    /// Logger (a tracing target, or `root`) → level, as set through the API.
    set: BTreeMap<String, String>,
    handle: reload::Handle<EnvFilter, Registry>,
}

static LEVELS: OnceLock<Mutex<Levels>> = OnceLock::new();

/// Installs the log for `format` (`text` or `json`).
pub fn init(format: &str) {
    let base = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "info,rdkafka=warn".to_owned());
    let filter = EnvFilter::try_new(&base).unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        // Colour only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    if format == "json" {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
    let _ = LEVELS.set(Mutex::new(Levels {
        base,
        set: BTreeMap::new(),
        handle,
    }));
}

/// A Java/Log4j level name as tracing's, if it is one.
fn level_of(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// Sets `logger` (a module path such as `sluice_runtime::herder`, or
/// `root`) to `level`; the loggers changed, as Connect answers.
pub fn set_level(logger: &str, level: &str) -> Result<Vec<String>, String> {
    let level = level_of(level).ok_or_else(|| {
        format!("{level} is not a log level; use TRACE, DEBUG, INFO, WARN, ERROR or OFF")
    })?;
    if logger.is_empty() || logger.contains([',', '=', '[', ' ']) {
        return Err(format!("{logger:?} is not a logger name"));
    }
    let levels = LEVELS
        .get()
        .ok_or_else(|| "this process has no adjustable log".to_owned())?;
    let mut levels = levels.lock().unwrap_or_else(|e| e.into_inner());
    levels.set.insert(logger.to_owned(), level.to_owned());
    let mut directives = vec![levels.base.clone()];
    for (name, level) in &levels.set {
        directives.push(if name == "root" {
            level.clone()
        } else {
            format!("{name}={level}")
        });
    }
    let filter = EnvFilter::try_new(directives.join(","))
        .map_err(|e| format!("cannot apply {logger}={level}: {e}"))?;
    levels
        .handle
        .reload(filter)
        .map_err(|e| format!("cannot apply {logger}={level}: {e}"))?;
    Ok(vec![logger.to_owned()])
}

/// The levels in force: `root` and every logger set through the API.
pub fn levels() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(levels) = LEVELS.get() else {
        return out;
    };
    let levels = levels.lock().unwrap_or_else(|e| e.into_inner());
    let root = levels
        .base
        .split(',')
        .find(|d| !d.contains('='))
        .unwrap_or("info")
        .to_owned();
    out.insert("root".to_owned(), root.to_ascii_uppercase());
    for (name, level) in &levels.set {
        out.insert(name.clone(), level.to_ascii_uppercase());
    }
    out
}
