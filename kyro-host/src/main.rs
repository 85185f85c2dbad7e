//! The `kyro` binary: the allocator and the command line (`kyro_host::cli`).

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: a request allocates and frees hundreds of small
/// strings and maps across threads, and glibc spent about 12% of a reuse hit's CPU in
/// `malloc`, `free` and bin consolidation (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kyro_host::cli::main()
}
