//! `regime-server`: the `regime` binary's library — file I/O and the batch commands
//! (`detect`, `evaluate`, `generate`). The HTTP service (`regime serve`) comes with its issue.

pub mod commands;
pub mod io;
