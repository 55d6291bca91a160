//! The descriptor table a run starts with: stdin, stdout, stderr at 0, 1, 2, then each
//! preopened directory, in the order the host gave them.

use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use crate::config::RunConfig;
use crate::io::{Descriptor, DirDesc, FdTable};

pub(crate) fn open_fds(config: &RunConfig) -> Result<FdTable> {
    let preopens = config.preopens.len() as u64;
    if u64::from(config.limits.max_fds) < 3 + preopens {
        bail!(
            "the descriptor limit ({}) leaves no room for stdin, stdout, stderr and {preopens} preopened directories",
            config.limits.max_fds
        );
    }
    let table = FdTable::new(config.limits.max_fds);
    let full = "the descriptor table is full";
    table.insert(Descriptor::Stdin).ok().context(full)?;
    table.insert(Descriptor::Output(1)).ok().context(full)?;
    table.insert(Descriptor::Output(2)).ok().context(full)?;
    for p in &config.preopens {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p.host)
            .with_context(|| format!("opening directory {} for the guest", p.host.display()))?;
        table.insert(Descriptor::Dir(DirDesc::new(dir, Some(p.guest.clone()), p.read_only))).ok().context(full)?;
    }
    Ok(table)
}
