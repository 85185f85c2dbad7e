//! The KyroDB host: the only crate that reads configuration files and the environment, loads
//! libraries, and (later) serves HTTP. `main.rs` is a thin CLI over the modules here.

pub mod certify;
pub mod inspect;
