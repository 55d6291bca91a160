"""Errors carry a kind (an exception subclass), and Exit.check()."""

import pytest

import guests
import wasithreads as wt
from wasithreads import _errors


def test_the_kinds_are_errors_and_python_builtins_where_they_fit():
    for kind in (wt.ModuleError, wt.LinkError, wt.LimitError, wt.UsageError, wt.HostIOError, wt.ExitError):
        assert issubclass(kind, wt.Error)
    assert issubclass(wt.UsageError, ValueError)
    assert issubclass(wt.HostIOError, OSError)


@pytest.mark.parametrize(
    ("source", "kind", "text"),
    [
        (b"", wt.ModuleError, "module bytes are empty"),
        (b"\xde\xad\xbe\xef", wt.ModuleError, "not a WebAssembly"),
        (b"(module (func (foo)))", wt.ModuleError, "not valid WAT text"),
        (b"(module (func (result i32) (i64.const 1)))", wt.ModuleError, "invalid WebAssembly module: type mismatch"),
        (b'(module (import "a" "t" (table 1 funcref)))', wt.LinkError, "unsupported import"),
        (guests.UNSHARED, wt.LinkError, "has no shared memory"),
    ],
)
def test_load_and_validate_errors_have_a_kind(engine, source, kind, text):
    with pytest.raises(kind, match=text):
        engine.load(source)
    with pytest.raises(kind, match=text):
        engine.validate(source)


def test_file_errors_are_host_io_errors_with_errno(engine, tmp_path):
    with pytest.raises(wt.HostIOError, match="reading") as info:
        engine.load(tmp_path / "missing.wasm")
    assert info.value.errno == 2
    with pytest.raises(wt.HostIOError) as info:
        engine.validate(tmp_path / "missing.wasm")
    assert info.value.errno == 2
    with pytest.raises(wt.HostIOError) as info:
        engine.load(str(tmp_path))  # a directory
    assert info.value.errno == 21
    path = tmp_path / "guest.wat"
    path.write_bytes(b'(module (import "a" "t" (table 1 funcref)))')
    with pytest.raises(wt.LinkError, match="unsupported import"):  # "loading <path>: unsupported import ..."
        engine.load(path)
    with pytest.raises(wt.LinkError, match="unsupported import"):
        engine.validate(path)


def test_deserialize_errors_are_module_errors(engine, load):
    with pytest.raises(wt.ModuleError, match="not a module serialized"):
        engine.deserialize(b"junk")
    with pytest.raises(wt.ModuleError, match="truncated"):
        engine.deserialize(load(guests.SPIN).serialize()[:100])


def test_errno_comes_from_the_library(engine, tmp_path):
    # No "(os error N)" in the message is needed: the library gives the OS error.
    with pytest.raises(wt.HostIOError) as info:
        engine.load(tmp_path / "missing" / "x.wasm")
    assert info.value.errno == 2
    with pytest.raises(wt.LimitError, match="descriptor limit"):
        engine.load(guests.SPIN).run(max_fds=2)
    with pytest.raises(wt.UsageError, match="names no file"):
        engine.load(guests.SPIN).run(coredump="/")


def test_run_start_errors_have_a_kind(load, tmp_path):
    # A function import is the host's to define with the run, so it fails at the run.
    with pytest.raises(wt.LinkError, match="unknown import `env::log`"):
        load(b'(module (import "env" "log" (func)) (func (export "_start")))').run()
    with pytest.raises(wt.LinkError, match="no `_start` export"):
        load(guests.NO_START).run()
    spin = load(guests.SPIN)
    with pytest.raises(wt.HostIOError, match="opening directory") as info:
        spin.run(dirs={tmp_path / "missing": "/"})
    assert info.value.errno == 2
    with pytest.raises(wt.HostIOError, match="as the guest's stdin"):
        spin.run(stdin=tmp_path / "missing")
    with pytest.raises(wt.HostIOError, match="creating"):
        spin.run(stdout=tmp_path / "missing" / "out")
    with pytest.raises(wt.HostIOError, match="descriptor") as info:
        spin.run(stdout=987)
    assert info.value.errno == 9
    with pytest.raises(wt.UsageError, match="environment key"):
        spin.run(env={"A=B": "x"})
    with pytest.raises(wt.LimitError, match="memory limit"):
        spin.run(max_memory=1)


def test_usage_errors(engine, load):
    with pytest.raises(wt.UsageError, match="opt level"):
        wt.Engine(opt_level=7)
    with pytest.raises(wt.UsageError, match="max wasm stack"):
        wt.Engine(max_wasm_stack=0)
    closed = wt.Engine()
    closed.close()
    with pytest.raises(wt.UsageError, match="the engine is closed"):
        closed.load(guests.SPIN)
    module = engine.load(guests.SPIN)
    module.close()
    with pytest.raises(wt.UsageError, match="the module is closed"):
        module.run()
    with pytest.raises(ValueError, match="closed"):  # UsageError is a ValueError
        module.serialize()


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        (_errors.WT_ERROR_OTHER, wt.Error),
        (_errors.WT_ERROR_BAD_MODULE, wt.ModuleError),
        (_errors.WT_ERROR_LINK, wt.LinkError),
        (_errors.WT_ERROR_LIMIT, wt.LimitError),
        (_errors.WT_ERROR_MISUSE, wt.UsageError),
        (_errors.WT_ERROR_IO, wt.HostIOError),
        (99, wt.Error),  # a kind a later library may add
    ],
)
def test_classify_is_the_c_kind(kind, cls):
    assert _errors.classify(kind) is cls
    assert type(_errors.make_error("m", kind)) is cls


def test_the_class_comes_from_the_kind_not_the_message():
    # A message that reads like one kind, with the C library's kind of another.
    error = _errors.make_error("unknown import `a::b`", _errors.WT_ERROR_IO, 13)
    assert type(error) is wt.HostIOError
    assert error.errno == 13
    assert type(_errors.make_error("reading x: no such file", _errors.WT_ERROR_OTHER, 2)) is wt.Error


def test_exit_check(load):
    ok = load(guests.printers(1)).run(stdout=wt.DEVNULL)
    assert ok.check() is ok
    exit = load(guests.printers(1, exit_code=3)).run(stdout=wt.DEVNULL)
    with pytest.raises(wt.ExitError, match=r"exited with code 3 \(thread 0\)") as info:
        exit.check()
    assert info.value.exit is exit
    with pytest.raises(wt.ExitError, match="trapped in thread 1: wasm trap: wasm `unreachable`"):
        load(guests.TRAP_IN_THREAD).run().check()
    with pytest.raises(wt.ExitError, match="timed out"):
        load(guests.SPIN).run(timeout=0.01).check()
    with pytest.raises(wt.ExitError, match="cancelled") as info:
        wt.Exit(wt.ExitKind.CANCELLED, 0, -1).check()
    assert isinstance(info.value, wt.Error)
