//! The format of a serialized module: a header, the offset map, Wasmtime's serialized
//! module. Wasmtime keeps no custom sections, so the map that turns backtraces back into
//! the user's offsets travels beside its bytes, and so does the host memory one instance
//! takes (`cost.rs`: it is counted from the module's sections, which Wasmtime does not
//! keep either).
//!
//! `MAGIC` (16 bytes) | instance bytes (u64 LE) | map length (u32 LE) | map | Wasmtime's
//! bytes.

use anyhow::{bail, Context as _, Result};

use crate::trace::OffsetMap;

/// Names the format and its version; a change of layout changes it.
const MAGIC: &[u8; 16] = b"wasithreads-mod3";

/// Serialized module bytes: the map, the instance bytes and Wasmtime's `compiled` bytes.
pub(super) fn wrap(map: &OffsetMap, instance_bytes: u64, compiled: &[u8]) -> Vec<u8> {
    let map = map.to_bytes();
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + map.len() + compiled.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&instance_bytes.to_le_bytes());
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    out.extend_from_slice(&map);
    out.extend_from_slice(compiled);
    out
}

/// Splits bytes made by [`wrap`] into the map, the instance bytes and Wasmtime's bytes.
pub(super) fn unwrap(bytes: &[u8]) -> Result<(OffsetMap, u64, &[u8])> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        bail!(
            "not a module serialized by this version of wasithreads ({} bytes that do not start with its header)",
            bytes.len()
        );
    };
    let Some((instance_bytes, rest)) = rest.split_first_chunk::<8>() else { bail!("serialized module is truncated") };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else { bail!("serialized module is truncated") };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        bail!("serialized module is truncated ({} bytes of offset map expected, {} present)", len, rest.len());
    }
    let (map, compiled) = rest.split_at(len);
    let map = OffsetMap::from_bytes(map).context("reading the serialized module's offset map")?;
    Ok((map, u64::from_le_bytes(*instance_bytes), compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps_and_refuses_what_it_did_not_write() {
        let map = OffsetMap::new(1, 2);
        let bytes = wrap(&map, 4096, b"\x7fELF...");
        let (back, instance_bytes, compiled) = unwrap(&bytes).unwrap();
        assert_eq!((back, instance_bytes), (map, 4096));
        assert_eq!(compiled, b"\x7fELF...");
        assert!(format!("{:#}", unwrap(b"\x7fELF").unwrap_err()).contains("not a module serialized"));
        assert!(unwrap(&bytes[..MAGIC.len() + 2]).is_err());
        assert!(unwrap(&bytes[..MAGIC.len() + 9]).is_err());
        assert!(unwrap(&bytes[..MAGIC.len() + 13]).is_err());
    }
}
