//! The format of a serialized module: a header, the offset map, Wasmtime's serialized
//! module. Wasmtime keeps no custom sections, so the map that turns backtraces back into
//! the user's offsets travels beside its bytes.
//!
//! `MAGIC` (16 bytes) | map length (u32 LE) | map | Wasmtime's bytes.

use anyhow::{bail, Context as _, Result};

use crate::trace::OffsetMap;

/// Names the format and its version; a change of layout changes it.
const MAGIC: &[u8; 16] = b"wasithreads-mod2";

/// Serialized module bytes: the map and Wasmtime's `compiled` bytes.
pub(super) fn wrap(map: &OffsetMap, compiled: &[u8]) -> Vec<u8> {
    let map = map.to_bytes();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + map.len() + compiled.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    out.extend_from_slice(&map);
    out.extend_from_slice(compiled);
    out
}

/// Splits bytes made by [`wrap`] into the map and Wasmtime's bytes.
pub(super) fn unwrap(bytes: &[u8]) -> Result<(OffsetMap, &[u8])> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        bail!(
            "not a module serialized by this version of wasithreads ({} bytes that do not start with its header)",
            bytes.len()
        );
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else { bail!("serialized module is truncated") };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        bail!("serialized module is truncated ({} bytes of offset map expected, {} present)", len, rest.len());
    }
    let (map, compiled) = rest.split_at(len);
    Ok((OffsetMap::from_bytes(map).context("reading the serialized module's offset map")?, compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps_and_refuses_what_it_did_not_write() {
        let map = OffsetMap::new(1, 2);
        let bytes = wrap(&map, b"\x7fELF...");
        let (back, compiled) = unwrap(&bytes).unwrap();
        assert_eq!(back, map);
        assert_eq!(compiled, b"\x7fELF...");
        assert!(format!("{:#}", unwrap(b"\x7fELF").unwrap_err()).contains("not a module serialized"));
        assert!(unwrap(&bytes[..MAGIC.len() + 2]).is_err());
        assert!(unwrap(&bytes[..MAGIC.len() + 5]).is_err());
    }
}
