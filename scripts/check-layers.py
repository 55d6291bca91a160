#!/usr/bin/env python3
"""Checks the layer map at the top of src/lib.rs against the sources.

The map lists, for every top-level module of src/, the modules it may use. This script
reads every `crate::x` and `super::x` path in each module's files (comments stripped),
and fails if a module uses one it may not, if the map names a module that does not exist
or misses one that does, or if the allowed uses form a cycle. Run from anywhere:
    python3 scripts/check-layers.py
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def layer_map():
    text = open(os.path.join(ROOT, "lib.rs"), encoding="utf-8").read()
    block = re.search(r"//! ```text\n//! layer.*?\n(.*?)//! ```", text, re.S)
    if not block:
        sys.exit("check-layers: no layer table in src/lib.rs")
    allowed = {}
    # Columns are separated by two or more spaces: layer, module, the modules it may use
    # (one space apart, "-" for none), what it is.
    for line in block.group(1).splitlines():
        cols = re.split(r"\s{2,}", line[3:].strip())
        if len(cols) != 4:
            sys.exit(f"check-layers: cannot read this line of the layer table: {line!r}")
        allowed[cols[1]] = set() if cols[2] == "-" else set(cols[2].split())
    return allowed


def top_modules():
    mods = set()
    for name in os.listdir(ROOT):
        if name.endswith(".rs") and name != "lib.rs":
            mods.add(name[:-3])
        elif os.path.isdir(os.path.join(ROOT, name)):
            mods.add(name)
    return mods


def uses_of(module):
    """The top-level modules that `module`'s files name through crate:: or super:: paths."""
    files = []
    path = os.path.join(ROOT, module)
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
    else:
        files.append(path + ".rs")
    found = {}
    for f in files:
        text = open(f, encoding="utf-8").read()
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        rel = os.path.relpath(f, ROOT)[:-3].split(os.sep)
        if rel[-1] == "mod":
            rel = rel[:-1]
        for m in re.finditer(r"\b((?:crate|super)(?:::super)*)::([A-Za-z_][A-Za-z0-9_]*)", text):
            head, name = m.group(1), m.group(2)
            if head == "crate":
                target = name
            else:
                ups = head.count("super")
                base = rel[:-1] if len(rel) > 0 else []
                base = base[: len(base) - (ups - 1)] if ups > 1 else base
                target = base[0] if base else name
            if target in ROOT_MODULES and target != module:
                found.setdefault(target, set()).add(os.path.relpath(f, os.path.join(ROOT, "..")))
    return found


ROOT_MODULES = top_modules()


def main():
    allowed = layer_map()
    problems = []
    for m in sorted(ROOT_MODULES - allowed.keys()):
        problems.append(f"module `{m}` is missing from the layer table in src/lib.rs")
    for m in sorted(allowed.keys() - ROOT_MODULES):
        problems.append(f"the layer table names `{m}`, which is not a module of src/")
    for m in sorted(ROOT_MODULES & allowed.keys()):
        for target, files in sorted(uses_of(m).items()):
            if target not in allowed[m]:
                problems.append(f"`{m}` uses `{target}` (in {', '.join(sorted(files))}), which the layer table does not allow")
    # The allowed uses themselves must form no cycle.
    state = {}

    def visit(m, path):
        state[m] = "open"
        for t in sorted(allowed.get(m, ())):
            if state.get(t) == "open":
                problems.append("the layer table has a cycle: " + " -> ".join(path + [m, t]))
            elif t not in state:
                visit(t, path + [m])
        state[m] = "done"

    for m in sorted(allowed):
        if m not in state:
            visit(m, [])
    for p in problems:
        print("check-layers:", p, file=sys.stderr)
    print(f"check-layers: {len(ROOT_MODULES)} modules, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
