"""A tiny WebAssembly binary assembler for tests that need to know code offsets.

The library compiles WAT text directly, but a test that checks the module offsets in a
backtrace needs the exact bytes the library loaded and where each instruction is in them.
`assemble` lays out a module from functions written as lists of encoded instructions and
returns the bytes together with the offset of every instruction (from the start of the
module, as `wasm-objdump -d` prints them). Only what the tests use is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

I32, I64 = 0x7F, 0x7E


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def name(s: str) -> bytes:
    data = s.encode()
    return uleb(len(data)) + data


def vec(items: Sequence[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def memarg(align: int, offset: int = 0) -> bytes:
    return uleb(align) + uleb(offset)


# Instructions (each one encoded instruction, immediates included).
def i32_const(n: int) -> bytes: return b"\x41" + sleb(n)
def i64_const(n: int) -> bytes: return b"\x42" + sleb(n)
def local_get(i: int) -> bytes: return b"\x20" + uleb(i)
def local_set(i: int) -> bytes: return b"\x21" + uleb(i)
def call(f: int) -> bytes: return b"\x10" + uleb(f)
def br(label: int) -> bytes: return b"\x0c" + uleb(label)
def br_if(label: int) -> bytes: return b"\x0d" + uleb(label)
def br_table(labels: Sequence[int], default: int) -> bytes:
    return b"\x0e" + vec([uleb(x) for x in labels]) + uleb(default)
def i32_store(offset: int = 0) -> bytes: return b"\x36" + memarg(2, offset)
def i64_store(offset: int = 0) -> bytes: return b"\x37" + memarg(3, offset)
def i32_store8(offset: int = 0) -> bytes: return b"\x3a" + memarg(0, offset)
def i32_store16(offset: int = 0) -> bytes: return b"\x3b" + memarg(1, offset)
def i32_atomic_load(offset: int = 0) -> bytes: return b"\xfe\x10" + memarg(2, offset)
def i32_atomic_rmw_add(offset: int = 0) -> bytes: return b"\xfe\x1e" + memarg(2, offset)
def memory_atomic_wait32(offset: int = 0) -> bytes: return b"\xfe\x01" + memarg(2, offset)


BLOCK, LOOP, END, RETURN, DROP = b"\x02\x40", b"\x03\x40", b"\x0b", b"\x0f", b"\x1a"
I32_ADD, I32_LT_U, I32_NE, I32_REM_U = b"\x6a", b"\x49", b"\x47", b"\x70"


@dataclass
class Func:
    name: str
    params: tuple[int, ...]
    results: tuple[int, ...]
    body: list[bytes]  # instructions, without the final `end`
    locals: tuple[int, ...] = ()
    export: str = ""


@dataclass
class Assembled:
    wasm: bytes
    index: dict[str, int]  # function name -> function index (imports first)
    code: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)  # name -> [(offset, instruction)]

    def offset(self, func: str, instr: bytes, n: int = 0) -> int:
        """The module offset of the `n`th occurrence of `instr` in `func`'s body, checked
        against the bytes themselves."""
        found = [off for off, ins in self.code[func] if ins == instr]
        off = found[n]
        assert self.wasm[off:off + len(instr)] == instr
        return off

    def offsets(self, func: str) -> list[int]:
        return [off for off, _ in self.code[func]]


def assemble(imports: Sequence[tuple[str, str, tuple[int, ...], tuple[int, ...]]], funcs: Sequence[Func],
             shared_memory_pages: int = 1) -> Assembled:
    """A module importing the functions `imports` ((module, name, params, results)) and
    a shared memory ("env" "memory", `shared_memory_pages` pages, also exported as
    "memory"), defining `funcs`, with a name section naming them."""
    types: list[bytes] = []

    def type_index(params: tuple[int, ...], results: tuple[int, ...]) -> int:
        t = b"\x60" + vec([bytes([p]) for p in params]) + vec([bytes([r]) for r in results])
        if t not in types:
            types.append(t)
        return types.index(t)

    import_entries = [name(m) + name(n) + b"\x00" + uleb(type_index(p, r)) for m, n, p, r in imports]
    pages = uleb(shared_memory_pages)
    import_entries.append(name("env") + name("memory") + b"\x02" + b"\x03" + pages + pages)
    func_types = [uleb(type_index(f.params, f.results)) for f in funcs]
    index = {f.name: len(imports) + i for i, f in enumerate(funcs)}
    exports = [name(f.export) + b"\x00" + uleb(index[f.name]) for f in funcs if f.export]
    exports.append(name("memory") + b"\x02" + uleb(0))

    def section(sid: int, content: bytes) -> bytes:
        return bytes([sid]) + uleb(len(content)) + content

    head = b"\x00asm\x01\x00\x00\x00"
    head += section(1, vec(types)) + section(2, vec(import_entries)) + section(3, vec(func_types))
    head += section(7, vec(exports))

    # The code section: its header is written once its size is known, so lay the bodies
    # out first with offsets relative to the section's content, then shift them.
    bodies: list[bytes] = []
    rel: dict[str, list[tuple[int, bytes]]] = {}
    at = len(uleb(len(funcs)))  # the count of bodies comes first
    for f in funcs:
        local_decls = vec([uleb(1) + bytes([t]) for t in f.locals])
        code = local_decls + b"".join(f.body) + END
        size = uleb(len(code))
        pos = at + len(size) + len(local_decls)
        rel[f.name] = []
        for ins in f.body:
            rel[f.name].append((pos, ins))
            pos += len(ins)
        bodies.append(size + code)
        at += len(size) + len(code)
    content = uleb(len(funcs)) + b"".join(bodies)
    code_start = len(head) + 1 + len(uleb(len(content)))
    wasm = head + section(10, content)
    names = vec([uleb(index[f.name]) + name(f.name) for f in funcs])
    wasm += section(0, name("name") + b"\x01" + uleb(len(names)) + names)
    code = {k: [(code_start + off, ins) for off, ins in v] for k, v in rel.items()}
    return Assembled(wasm, index, code)
