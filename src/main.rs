//! The `bulkhead` binary: parses the command line and hands over to the
//! library, serving the reference application.

/// mimalloc: the request path allocates many small, short-lived objects on
/// two or more threads, which glibc's malloc serves with lock-protected
/// arenas and periodic consolidation. Declared here, not in the library, so a
/// program built on bulkhead chooses its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bulkhead::cli::main()
}
