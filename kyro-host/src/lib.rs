//! The KyroDB host: the only crate that reads configuration files and the environment, loads
//! libraries, and serves HTTP. `main.rs` is a thin binary over [`cli`].
//!
//! Layers, each with one vocabulary, importing only the ones listed before it (the tidy test
//! enforces this; see ARCHITECTURE.md):
//! `wire` (every byte a client sees) · `config` · `stores` (plugins, certification,
//! registration) · `runtime` (serving) · `evidence` (reports, capture, replay) · `http` (router,
//! extractors, the error mapping) · `cli` (commands; the only layer that prints).

pub mod cli;
pub mod config;
mod evidence;
mod http;
mod runtime;
pub mod stores;
mod wire;
