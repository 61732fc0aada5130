//! `cargo run --release --example notes -- dev`: a notes product on
//! bulkhead, with every `bulkhead` command (`serve`, `tenant`, `migrate`,
//! `server`, `token`…) and its own routes and tenant table.

mod notes;

/// The binary chooses its allocator; the library declares none.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bulkhead::cli::run_with(notes::product())
}
