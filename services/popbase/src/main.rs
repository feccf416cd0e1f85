//! `popbase`: one binary for every role.
//!
//! ```text
//! popbase serve --role all|household|residence|feeds|gateway
//! popbase gen --city 3703 --persons 100000 --seed 1
//! popbase demo
//! popbase backup --target http://household:50061 --label nightly-2026-11-22
//! popbase stats --target http://household:50061
//! popbase token --department education
//! popbase audit verify --store ./copy/ledger --head audit-head.log
//! popbase pki --dir certs --identity household --host household --host 127.0.0.1
//! popbase export --gateway http://127.0.0.1:50051 --token T --dataset persons --out persons.parquet
//! popbase subscribe --gateway http://127.0.0.1:50051 --token T --purpose P --kinds death --division 370302
//! ```
//!
//! Configuration: defaults < `--config FILE` < `POPBASE_*` environment < flags.

mod audit_cli;
mod cli;
mod console_role;
mod demo;
mod export_cli;
mod feed_file;
mod feed_load;
mod gateway_client;
mod generate;
mod ops_client;
mod pki_cli;
mod restore_cli;
mod say;
mod serve;
mod subscribe_cli;

use clap::Parser;

/// mimalloc instead of glibc malloc: a gateway answer allocates and frees
/// many small buffers across threads (protobuf messages, HTTP/2 frames,
/// audit records), which glibc's arenas served slowly (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// RocksDB allocates through glibc's malloc, which by default hands freed
/// memory back to the kernel (a block read's 4 MiB of batch buffers went
/// through mmap and munmap on every `MultiGet`) and then faults the same
/// pages in again, zeroed: a quarter of a whole-city list's CPU on its
/// first call (docs/benchmarks.md, session 19). Keep up to 512 MiB freed
/// and grow the heap 64 MiB at a time instead; the process's resident size
/// is that much stickier, which the memory limits in k8s allow for.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let cli = cli::Cli::parse();
    // The format is known before the config is read, so even an error
    // reading it is a JSON line under --log-format json.
    let json_env = std::env::var("POPBASE_TELEMETRY_LOG_FORMAT").is_ok_and(|f| f == "json");
    say::use_json(cli.log_format.as_deref().map_or(json_env, |f| f == "json"));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            say::error(&format!("popbase: cannot start the runtime: {err}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            say::error(&format!("popbase: {err:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
