//! `regime-server`: the `regime` binary's library — file I/O, the batch commands
//! (`detect`, `evaluate`, `generate`, `export`), and the HTTP service (`regime serve`):
//! config, engine, store, routes, feeds, logs.

/// `eprintln!` through [`commands::say`]: a stderr that has gone (`2>&1 | head`) loses the
/// line, not the run.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::commands::say(format_args!($($arg)*))
    };
}

pub mod backup;
pub mod commands;
pub mod compute;
pub mod config;
pub mod conn;
pub mod deployments;
pub mod engine;
pub mod error;
pub mod feeds;
pub mod io;
pub mod journal;
pub mod logs;
pub mod resume;
pub mod routes;
pub mod serve;
pub mod spool;
pub mod state;
pub mod store;
pub mod streams;
