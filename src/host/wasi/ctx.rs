//! Building the one WASI context of a run from its [`RunConfig`].

use anyhow::Result;
use wasmtime::error::Context as _;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::config::RunConfig;
use crate::io::{Input, Output};

pub(crate) fn build_ctx(config: &RunConfig) -> Result<WasiP1Ctx> {
    let mut b = WasiCtxBuilder::new();
    if config.args.is_empty() {
        b.arg("wasm");
    } else {
        b.args(&config.args);
    }
    if config.inherit_env {
        b.inherit_env();
    }
    b.envs(&config.env);
    // Reads of fd 0 and writes to fds 1 and 2 are served by `wasi/stdio.rs`; the context's
    // streams only answer the other questions (fdstat, isatty) about them.
    match config.stdin {
        Input::Inherit => b.inherit_stdin(),
        _ => b.stdin(std::io::empty()),
    };
    match config.stdout {
        Output::Inherit => b.inherit_stdout(),
        _ => b.stdout(std::io::empty()),
    };
    match config.stderr {
        Output::Inherit => b.inherit_stderr(),
        _ => b.stderr(std::io::empty()),
    };
    for p in &config.preopens {
        let perms = if p.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        b.preopened_dir(&p.host, &p.guest, perms)
            .with_context(|| format!("opening directory {} for the guest", p.host.display()))?;
    }
    Ok(b.build_p1())
}
