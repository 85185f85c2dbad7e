//! The KyroDB host: the only crate that reads configuration files and the environment, loads
//! libraries, and serves HTTP. `main.rs` is a thin CLI over the modules here.

pub mod api;
pub mod certify;
pub mod config;
pub mod evidence;
pub mod inspect;
pub mod quickstart;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod stores;
