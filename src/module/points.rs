//! Which functions get an interruption point at their entry (`rewrite.rs` puts one at
//! the head of every loop, always).
//!
//! A thread that never meets an interruption point cannot be stopped, so every way of
//! running long must pass one. Within a function without loops every instruction runs
//! at most once per call; running long then needs calls: a cycle of the call graph
//! (recursion, tail calls included), or many calls of functions that themselves run long
//! without a point. So a function's entry gets a point when
//!
//! - it is on a cycle of direct calls (every pass around the cycle meets one), or
//! - it calls indirectly (the callee is unknown, so a cycle may pass through it), or
//! - a caller of it would otherwise run more than [`LIMIT`] bytes of code in the functions
//!   it calls without a point (counted per call site, through their own calls): then its
//!   heaviest callees get one until the rest fits (so the bound is the caller's own size
//!   plus `LIMIT`, never the exponential of a call tree).
//!
//! Other functions (leaves, and small helpers of them: most of the hot small functions of
//! real programs) run to their return without one. Between two points a thread runs at
//! most its frames' own code plus `LIMIT` bytes per frame it returns through, and frames
//! outside cycles appear once each on a stack. Entry points can cost more than their load
//! (with the imported interrupt page, its base pointer stays live across the function;
//! Wasmtime issue #1749 has the figures), so fewer of them make CPU-bound guests faster.

/// What one defined function does that matters here.
#[derive(Clone, Debug, Default)]
pub(super) struct Calls {
    /// Its code size in bytes.
    pub(super) size: u32,
    /// The defined functions it calls directly (by defined index), once per call site.
    pub(super) direct: Vec<u32>,
    /// It calls through a table or a reference.
    pub(super) indirect: bool,
}

/// The most bytes of code a function's calls may run, through functions without an entry
/// point, before they meet a point.
const LIMIT: u64 = 16384;

/// For each defined function: whether its entry gets an interruption point.
pub(super) fn entry_points(funcs: &[Calls]) -> Vec<bool> {
    let mut needs: Vec<bool> = funcs.iter().map(|f| f.indirect).collect();
    let mut work = vec![0u64; funcs.len()];
    for scc in sccs(funcs) {
        let cyclic = scc.len() > 1 || funcs[scc[0] as usize].direct.contains(&scc[0]);
        if cyclic {
            for &f in &scc {
                needs[f as usize] = true;
            }
        }
        // Callees outside the component come earlier (components come callees first);
        // inside a cyclic one every member has a point.
        for &f in &scc {
            let f = f as usize;
            // What the calls of `f` run without meeting a point, per callee (all its
            // call sites together): sorted by callee and merged, so a function with many
            // call sites costs n log n, not n times its distinct callees.
            let mut callees: Vec<(u64, u32)> =
                funcs[f].direct.iter().filter(|g| !needs[**g as usize]).map(|&g| (work[g as usize], g)).collect();
            callees.sort_unstable_by_key(|&(_, g)| g);
            callees.dedup_by(|later, kept| {
                let same = later.1 == kept.1;
                if same {
                    kept.0 = kept.0.saturating_add(later.0);
                }
                same
            });
            let mut sum = callees.iter().fold(0u64, |a, (w, _)| a.saturating_add(*w));
            if sum > LIMIT {
                // The heaviest callees get a point until the rest fits.
                callees.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
                for (w, g) in callees {
                    if sum <= LIMIT {
                        break;
                    }
                    needs[g as usize] = true;
                    sum = sum.saturating_sub(w);
                }
            }
            work[f] = u64::from(funcs[f].size).saturating_add(sum);
        }
    }
    needs
}

/// The strongly connected components of the direct-call graph (Tarjan's algorithm,
/// without recursion: modules have hundreds of thousands of functions), each component
/// after every component it calls into.
fn sccs(funcs: &[Calls]) -> Vec<Vec<u32>> {
    const NONE: u32 = u32::MAX;
    let n = funcs.len();
    let (mut index, mut low, mut on_stack) = (vec![NONE; n], vec![0u32; n], vec![false; n]);
    let (mut stack, mut out, mut next) = (Vec::new(), Vec::new(), 0u32);
    // (function, how many of its callees have been looked at)
    let mut frames: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != NONE {
            continue;
        }
        frames.push((root, 0));
        while let Some(&mut (v, ref mut i)) = frames.last_mut() {
            let vu = v as usize;
            if *i == 0 && index[vu] == NONE {
                index[vu] = next;
                low[vu] = next;
                next += 1;
                stack.push(v);
                on_stack[vu] = true;
            }
            if let Some(&w) = funcs[vu].direct.get(*i) {
                *i += 1;
                let wu = w as usize;
                if index[wu] == NONE {
                    frames.push((w, 0));
                } else if on_stack[wu] {
                    low[vu] = low[vu].min(index[wu]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent as usize] = low[parent as usize].min(low[vu]);
            }
            if low[vu] == index[vu] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(scc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(size: u32, direct: &[u32], indirect: bool) -> Calls {
        Calls { size, direct: direct.to_vec(), indirect }
    }

    #[test]
    fn leaves_and_small_helpers_get_none_cycles_and_indirect_callers_do() {
        let funcs = [
            f(10, &[], false),     // 0: leaf
            f(10, &[0, 0], false), // 1: small helper of a leaf
            f(10, &[2], false),    // 2: calls itself
            f(10, &[4], false),    // 3 and 4: call each other
            f(10, &[3], false),
            f(10, &[0], true), // 5: calls indirectly
        ];
        assert_eq!(entry_points(&funcs), [false, false, true, true, true, true]);
    }

    #[test]
    fn a_call_tree_that_would_run_long_gets_points() {
        // Function i calls i + 1 twice: 2^40 calls from function 0 without any loop.
        let mut funcs: Vec<Calls> = (0..40).map(|i| f(100, &[i + 1, i + 1], false)).collect();
        funcs.push(f(100, &[], false));
        let needs = entry_points(&funcs);
        assert!(needs.iter().any(|n| *n), "some entries get points");
        // Between points no call runs more than the limit (per frame): check by walking
        // the tree from each function and stopping at points.
        fn run(funcs: &[Calls], needs: &[bool], f: usize) -> u64 {
            funcs[f]
                .direct
                .iter()
                .map(|&g| if needs[g as usize] { 0 } else { run(funcs, needs, g as usize) })
                .sum::<u64>()
                + u64::from(funcs[f].size)
        }
        for i in 0..funcs.len() {
            assert!(run(&funcs, &needs, i) <= u64::from(funcs[i].size) + LIMIT, "function {i}");
        }
    }

    #[test]
    fn many_call_sites_of_many_callees_are_merged_per_callee() {
        // One function with 400 000 call sites of 200 000 distinct leaves (a quadratic
        // merge would take minutes): its heaviest callees get points, the rest fits.
        let mut funcs: Vec<Calls> = (0..200_000).map(|_| f(8, &[], false)).collect();
        funcs.push(Calls { size: 10, direct: (0..400_000u32).map(|i| i % 200_000).collect(), indirect: false });
        let needs = entry_points(&funcs);
        let unpointed = needs[..200_000].iter().filter(|n| !**n).count() as u64;
        assert!(unpointed > 0 && unpointed * 16 <= LIMIT, "{unpointed} leaves without a point");
        assert!(!needs[200_000]);
    }

    #[test]
    fn components_come_callees_first_and_deep_chains_do_not_overflow() {
        let funcs: Vec<Calls> = (0..200_000u32)
            .map(|i| Calls {
                size: 1,
                direct: (i + 1 < 200_000).then_some(i + 1).into_iter().collect(),
                indirect: false,
            })
            .collect();
        let sccs = sccs(&funcs);
        assert_eq!(sccs.len(), 200_000);
        assert_eq!(sccs[0], [199_999], "the deepest callee first");
        let needs = entry_points(&funcs);
        assert!(needs.iter().filter(|n| **n).count() >= 200_000 / LIMIT as usize / 2);
    }
}
