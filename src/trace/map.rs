//! The offset map: where each instruction of the rewritten module came from in the
//! module the user loaded.
//!
//! The rewrite (`module/rewrite.rs`) adds imports, so every defined function's index
//! grows by the number of added function imports; it inserts interruption points and
//! turns waits and notifies into calls, and re-encodes every instruction canonically (a
//! linker's padded LEBs shrink), so code offsets move. For each original function body
//! the map keeps the points where the distance between new and original offsets changes;
//! between two such points an offset moves by the same amount. Offsets are relative to
//! the start of the function body (its locals), as Wasmtime's `func_offset` is, plus the
//! body's position in the original bytes for module offsets.
//!
//! Each instruction of an interruption point maps to the original instruction it stands
//! for: the function's first instruction at its entry, the `loop` at a loop head. The
//! generated start function that applies data segments maps to nothing.

use anyhow::{bail, Result};

/// Where one frame of the rewritten module is in the original module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Original {
    /// The function index in the original module.
    pub(crate) func_index: u32,
    /// The offset of the instruction from the start of the original module's bytes.
    pub(crate) module_offset: u32,
    /// The offset of the instruction from the start of its function body.
    pub(crate) func_offset: u32,
}

/// What an index of the rewritten module's function space is in the original module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FuncOrigin {
    /// A function of the original module, at this index.
    Original(u32),
    /// A function the rewrite added (an import of wasithreads, the data initialiser).
    Added,
}

/// The map of one original function body. The rewrite builds one per body (in parallel)
/// and adds them in order with [`OffsetMap::push_body`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Body {
    /// The body's start (its locals) in the original module's bytes.
    orig_start: u32,
    /// `(new offset, original offset)` within the body, ascending, at each change of
    /// their difference; the first is at the start of the body's code.
    points: Vec<(u32, u32)>,
}

/// The offset map of one rewritten module (serialized modules carry theirs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetMap {
    /// Function imports of the original module.
    func_imports: u32,
    /// Function imports the rewrite added after them.
    added_imports: u32,
    /// One per defined function of the original module, in order.
    bodies: Vec<Body>,
    /// The index of the module's shared memory in its memory index space, if it has one.
    shared_memory: Option<u32>,
}

impl Body {
    /// A body that begins at `orig_start` in the original bytes.
    pub(crate) fn new(orig_start: u32) -> Body {
        Body { orig_start, points: Vec::new() }
    }

    /// Records that the rewritten code at `new` (relative to this body) stands for the
    /// original instruction at `orig` (relative to its body).
    pub(crate) fn at(&mut self, new: u32, orig: u32) {
        if let Some(&(n, o)) = self.points.last() {
            if i64::from(new) - i64::from(n) == i64::from(orig) - i64::from(o) {
                return;
            }
        }
        self.points.push((new, orig));
    }
}

impl OffsetMap {
    pub(crate) fn new(func_imports: u32, added_imports: u32) -> OffsetMap {
        OffsetMap { func_imports, added_imports, bodies: Vec::new(), shared_memory: None }
    }

    pub(crate) fn set_shared_memory(&mut self, index: Option<u32>) {
        self.shared_memory = index;
    }

    /// The index of the module's shared memory in its memory index space, if it has one.
    pub(crate) fn shared_memory(&self) -> Option<u32> {
        self.shared_memory
    }

    /// Adds the map of the next original function body.
    pub(crate) fn push_body(&mut self, body: Body) {
        self.bodies.push(body);
    }

    /// What function `index` of the rewritten module is in the original.
    pub(crate) fn func(&self, index: u32) -> FuncOrigin {
        if index < self.func_imports {
            return FuncOrigin::Original(index);
        }
        let defined = index - self.func_imports;
        if defined < self.added_imports {
            return FuncOrigin::Added;
        }
        let defined = defined - self.added_imports;
        if (defined as usize) < self.bodies.len() {
            FuncOrigin::Original(self.func_imports + defined)
        } else {
            FuncOrigin::Added
        }
    }

    /// Where the instruction at `func_offset` in function `index` of the rewritten
    /// module is in the original module; `None` for a function the rewrite added.
    pub(crate) fn original(&self, index: u32, func_offset: u32) -> Option<Original> {
        let FuncOrigin::Original(func_index) = self.func(index) else { return None };
        let body = self.bodies.get(func_index.checked_sub(self.func_imports)? as usize)?;
        let i = body.points.partition_point(|&(n, _)| n <= func_offset);
        // Before the first point is only the body's locals, where no frame can be.
        let &(n, o) = body.points.get(i.saturating_sub(1))?;
        let orig = o.saturating_add(func_offset.saturating_sub(n));
        Some(Original { func_index, module_offset: body.orig_start.saturating_add(orig), func_offset: orig })
    }

    /// The map as bytes, for a serialized module.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |v: u32| out.extend_from_slice(&v.to_le_bytes());
        put(self.func_imports);
        put(self.added_imports);
        put(self.shared_memory.unwrap_or(u32::MAX));
        put(self.bodies.len() as u32);
        for b in &self.bodies {
            put(b.orig_start);
            put(b.points.len() as u32);
            for &(n, o) in &b.points {
                put(n);
                put(o);
            }
        }
        out
    }

    /// Reads bytes made by [`OffsetMap::to_bytes`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<OffsetMap> {
        let mut words = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if !bytes.len().is_multiple_of(4) {
            bail!("offset map of {} bytes is not a whole number of words", bytes.len());
        }
        let mut next = || words.next().ok_or_else(|| anyhow::anyhow!("offset map is truncated"));
        let func_imports = next()?;
        let added_imports = next()?;
        let shared_memory = Some(next()?).filter(|&i| i != u32::MAX);
        let count = next()?;
        let mut bodies = Vec::new();
        for _ in 0..count {
            let orig_start = next()?;
            let points = (0..next()?).map(|_| Ok((next()?, next()?))).collect::<Result<Vec<_>>>()?;
            if points.is_empty() || points.windows(2).any(|w| w[0].0 >= w[1].0) {
                bail!("offset map has a malformed function body");
            }
            bodies.push(Body { orig_start, points });
        }
        if next().is_ok() {
            bail!("offset map has trailing bytes");
        }
        Ok(OffsetMap { func_imports, added_imports, bodies, shared_memory })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OffsetMap {
        // Two imports, three added; one body at 0x40 whose code starts at 2 (after its
        // locals), with a 6-byte interruption point first and a 5-byte call shrunk to 2
        // bytes at original offset 10.
        let mut m = OffsetMap::new(2, 3);
        m.set_shared_memory(Some(1));
        let mut b = Body::new(0x40);
        b.at(2, 2); // interruption point → first instruction
        b.at(8, 2); // first instruction
        b.at(14, 8); // same distance: not recorded
        b.at(16, 10); // the call
        b.at(18, 15); // after the call: distance changes again
        m.push_body(b);
        m
    }

    #[test]
    fn maps_function_indices_and_offsets_back() {
        let m = sample();
        assert_eq!(m.func(1), FuncOrigin::Original(1));
        assert_eq!(m.func(2), FuncOrigin::Added);
        assert_eq!(m.func(4), FuncOrigin::Added);
        assert_eq!(m.func(5), FuncOrigin::Original(2));
        assert_eq!(m.func(6), FuncOrigin::Added, "the generated start function");
        assert_eq!(m.original(5, 2), Some(Original { func_index: 2, module_offset: 0x42, func_offset: 2 }));
        assert_eq!(m.original(5, 14).unwrap().func_offset, 8);
        assert_eq!(m.original(5, 16).unwrap().func_offset, 10);
        assert_eq!(m.original(5, 20).unwrap().func_offset, 17);
        assert_eq!(m.original(3, 0), None);
        assert_eq!(m.original(1, 0), None, "an imported function has no body");
        assert_eq!(m.original(5, u32::MAX).unwrap().module_offset, u32::MAX, "saturates");
    }

    #[test]
    fn round_trips_through_bytes_and_refuses_garbage() {
        let m = sample();
        assert_eq!(OffsetMap::from_bytes(&m.to_bytes()).unwrap(), m);
        let bytes = m.to_bytes();
        assert!(OffsetMap::from_bytes(&bytes[..bytes.len() - 4]).is_err());
        assert!(OffsetMap::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(OffsetMap::from_bytes(&[bytes.clone(), vec![0; 4]].concat()).is_err());
        assert!(OffsetMap::from_bytes(&[0xff; 16]).is_err());
    }
}
