"""The binding covers the C API: every function of include/wasithreads.h is bound (with
its number of parameters, and a result exactly when it has one) and used by the
package, except the ones the README's "Left out" table names with a reason. A function
added to the header fails this test until the binding uses it or the README says why not."""

import re
from pathlib import Path

import pytest

from wasithreads import _ffi

BINDING = Path(__file__).resolve().parents[1]
HEADER = BINDING.parents[1] / "include" / "wasithreads.h"
README = BINDING / "README.md"
PACKAGE = Path(_ffi.__file__).resolve().parent

pytestmark = pytest.mark.skipif(not HEADER.is_file(), reason="not run from a checkout (no include/wasithreads.h)")


def header_functions():
    """name -> (returns a value, number of parameters) of each function the header declares."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    body = text[text.index('extern "C" {') : text.index('}  // extern "C"')]
    found = {}
    for result, name, params in re.findall(r"^([A-Za-z_][\w \*]*?)\s*\*?\s*\b(wt_\w+)\(([^)]*)\);", body, re.M | re.S):
        params = " ".join(params.split())
        found[name] = (result.strip() != "void" or "*" in result, 0 if params == "void" else params.count(",") + 1)
    return found


def left_out():
    """The functions in the README's "Left out" table."""
    text = README.read_text()
    section = text[text.index("### Left out") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    return set(re.findall(r"^\| `(wt_\w+)`", section, re.M))


def test_the_header_is_read():
    functions = header_functions()
    assert len(functions) > 50
    assert functions["wt_version"] == (True, 0)
    assert functions["wt_run_free"] == (False, 1)
    assert functions["wt_run_config_set_output_callback"] == (True, 4)


def test_every_c_function_is_bound_or_left_out_with_a_reason():
    header = header_functions()
    bound = set(_ffi.PROTOTYPES)
    omitted = left_out()
    assert not bound - set(header), "bound but not in the header"
    assert not omitted - set(header), "left out in the README but not in the header"
    assert not omitted & bound, "both bound and left out"
    missing = set(header) - bound - omitted
    assert not missing, (
        f"C functions neither bound in _ffi.PROTOTYPES nor in the README's 'Left out' table: {sorted(missing)}"
    )


def test_prototypes_match_the_header():
    header = header_functions()
    for name, (restype, argtypes) in _ffi.PROTOTYPES.items():
        returns, params = header[name]
        assert (restype is not None, len(argtypes)) == (returns, params), name


def test_every_bound_function_is_used():
    sources = "\n".join(p.read_text() for p in PACKAGE.glob("*.py"))
    unused = [name for name in _ffi.PROTOTYPES if not re.search(rf"\blib\.{name}\b", sources)]
    assert not unused, f"bound but never called: {unused}"
