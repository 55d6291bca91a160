"""Loading, exit codes, traps, stdio, arguments, environment and directories."""

import io
import os
import subprocess
import sys

import pytest

import guests
import wasithreads as wt


def test_version_and_library():
    assert wt.version().count(".") == 2
    assert os.path.isfile(wt.library_path())
    assert wt.__version__


def test_threads_print_and_main_exits_with_code(load, collect):
    exit = load(guests.printers(4, exit_code=3)).run(stdout=collect.out, on_thread_exit=collect.thread_exit)
    assert exit == wt.Exit(wt.ExitKind.CODE, 3, 0, None)
    assert not exit.ok
    assert collect.output == {
        0: b"main done\n",
        **{n + 1: f"line from thread {n}\n".encode() for n in range(4)},
    }
    assert sorted(collect.events) == [(0, "exited", 3)] + [(t, "returned", 0) for t in range(1, 5)]


def test_start_returning_is_exit_code_zero(load):
    exit = load(guests.printers(2)).run(stdout=wt.DEVNULL)
    assert exit.kind is wt.ExitKind.CODE and exit.code == 0 and exit.tid == 0 and exit.ok
    assert exit.message is None


def test_proc_exit_in_a_spawned_thread(load, collect):
    exit = load(guests.EXIT_IN_THREAD).run(on_thread_exit=collect.thread_exit)
    assert (exit.kind, exit.code, exit.tid) == (wt.ExitKind.CODE, 33, 2)
    assert sorted(collect.events) == [(0, "terminated", 0), (1, "terminated", 0), (2, "exited", 33)]


def test_trap_in_spawned_thread_names_thread_and_function(load, collect):
    exit = load(guests.TRAP_IN_THREAD).run(on_thread_exit=collect.thread_exit)
    assert exit.kind is wt.ExitKind.TRAP
    assert exit.tid == 1 and exit.code == 0
    assert exit.message.startswith("wasm trap: wasm `unreachable` instruction executed")
    assert "wasm backtrace:" in exit.message and "crash" in exit.message
    assert sorted(collect.events) == [(0, "terminated", 0), (1, "trapped", 0)]


def test_trap_in_main_thread(load):
    exit = load(guests.TRAP_IN_MAIN).run()
    assert (exit.kind, exit.tid) == (wt.ExitKind.TRAP, 0)
    assert "unreachable" in exit.message and "crash" in exit.message


def test_stack_overflow_is_a_trap(load):
    exit = load(guests.RECURSE).run()
    assert exit.kind is wt.ExitKind.TRAP and exit.tid == 0
    assert exit.message.startswith("wasm trap: call stack exhausted")
    assert "down" in exit.message


def test_bad_module_bytes_raise_error(engine):
    with pytest.raises(wt.Error, match="not a WebAssembly module") as info:
        engine.load(b"\xde\xad\xbe\xef")
    assert isinstance(info.value, Exception)
    with pytest.raises(wt.Error, match="not a WebAssembly binary, and not valid WAT text"):
        engine.validate(b"garbage")


def test_thread_spawn_without_shared_memory_is_refused(engine):
    with pytest.raises(wt.Error, match="has no shared memory"):
        engine.load(guests.UNSHARED)
    with pytest.raises(wt.Error, match="has no shared memory"):
        engine.validate(guests.UNSHARED)
    engine.validate(guests.ECHO)  # valid: no exception


def test_run_that_cannot_start_raises(load):
    with pytest.raises(wt.Error, match="no `_start` export"):
        load(guests.NO_START).run()
    with pytest.raises(wt.Error):
        load(guests.ECHO).run(dirs={"/no/such/dir/for/wasithreads": "/"})


def test_load_from_path(engine, tmp_path):
    path = tmp_path / "echo.wat"
    path.write_bytes(guests.ECHO)
    for source in (path, str(path)):
        out = []
        exit = engine.load(source).run(stdin=b"abc", stdout=lambda tid, d: out.append(d), stderr=wt.DEVNULL)  # noqa: B023 - ends before the next iteration
        assert exit.ok and b"".join(out) == b"abc"
    with pytest.raises(wt.Error):
        engine.load(tmp_path / "missing.wasm")
    with pytest.raises(wt.Error, match="pass WAT text as bytes"):
        engine.load("(module)")
    with pytest.raises(TypeError):
        engine.load(42)


def test_serialize_deserialize(engine, load):
    data = load(guests.printers(2, exit_code=5)).serialize()
    assert isinstance(data, bytes) and len(data) > 0
    module = engine.deserialize(data)
    out = []
    assert module.run(stdout=lambda tid, d: out.append(d)).code == 5
    assert sorted(out) == [b"line from thread 0\n", b"line from thread 1\n", b"main done\n"]
    with pytest.raises(wt.Error):
        engine.deserialize(b"not a serialized module")


def test_args_and_env(load):
    out = []
    exit = load(guests.ARGS_ENV).run(args=["prog", "x", "ü"], env={"K": "V", "EMPTY": ""},
                                     stdout=lambda tid, d: out.append(d))
    assert exit.ok
    assert out == ["prog\0x\0ü\0".encode(), b"K=V\0EMPTY=\0"]
    out.clear()
    load(guests.ARGS_ENV).run(env=[("A", "1"), ("B", "2")], stdout=lambda tid, d: out.append(d))
    assert out == [b"wasm\0", b"A=1\0B=2\0"]  # default argv is {"wasm"}
    with pytest.raises(ValueError):
        load(guests.ARGS_ENV).run(args=["a\0b"])
    with pytest.raises(TypeError):
        load(guests.ARGS_ENV).run(args="prog")
    with pytest.raises(wt.Error):
        load(guests.ARGS_ENV).run(env={"A=B": "1"})


def test_inherit_env(load, monkeypatch):
    monkeypatch.setenv("WASITHREADS_TEST_VAR", "inherited")
    out = []
    load(guests.ARGS_ENV).run(inherit_env=True, env={"MINE": "1"}, stdout=lambda tid, d: out.append(d))
    env = out[1].split(b"\0")
    assert b"WASITHREADS_TEST_VAR=inherited" in env
    assert env[-2] == b"MINE=1"  # pushed variables come after the inherited ones


def test_stdin_bytes_file_fd_and_reader(load, tmp_path):
    module = load(guests.ECHO)
    text = b"the quick brown fox jumps over the lazy dog\n"

    def echo(stdin):
        out, err = [], []
        exit = module.run(stdin=stdin, stdout=lambda tid, d: out.append(d), stderr=lambda tid, d: err.append(d))
        assert exit.ok and err == [b"<eof>"]
        return out

    out = echo(text)
    assert b"".join(out) == text
    assert out[0] == text[:7]  # one callback per fd_write: the guest reads 7 bytes at a time
    path = tmp_path / "in.txt"
    path.write_bytes(text)
    assert b"".join(echo(path)) == text
    assert b"".join(echo(str(path))) == text
    with open(path, "rb") as f:
        assert b"".join(echo(f)) == text
    r, w = os.pipe()
    os.write(w, text)
    os.close(w)
    try:
        assert b"".join(echo(r)) == text
    finally:
        os.close(r)
    assert b"".join(echo(io.BytesIO(text))) == text
    assert echo(wt.DEVNULL) == []
    assert echo(subprocess.DEVNULL) == []
    assert echo(b"") == []


def test_stdout_to_file_object_path_and_writer(load, tmp_path):
    module = load(guests.ECHO)
    target = tmp_path / "out.bin"
    with open(target, "wb") as f:
        f.write(b"python first\n")  # buffered in Python: flushed before the guest writes
        assert module.run(stdin=b"guest data", stdout=f, stderr=f).ok
    assert target.read_bytes() == b"python first\nguest data<eof>"
    path = tmp_path / "by-path.txt"
    assert module.run(stdin=b"to a path", stdout=path, stderr=wt.DEVNULL).ok
    assert path.read_bytes() == b"to a path"
    buf = io.BytesIO()
    assert module.run(stdin=b"into BytesIO", stdout=buf, stderr=wt.DEVNULL).ok
    assert buf.getvalue() == b"into BytesIO"
    text = io.StringIO()
    assert module.run(stdin="ünïcode".encode(), stdout=text, stderr=wt.DEVNULL).ok
    assert text.getvalue() == "ünïcode"
    with pytest.raises(TypeError):
        module.run(stdout=3.5)


def test_pipe_collects_exact_bytes(load):
    module = load(guests.ECHO)
    data = bytes(range(256)) * 800  # 200 KiB in 7-byte writes: more than a pipe holds
    exit = module.run(stdin=data, stdout=wt.PIPE, stderr=wt.PIPE)
    assert exit.ok
    assert exit.stdout == data
    assert exit.stderr == b"<eof>"
    assert exit == wt.Exit(wt.ExitKind.CODE, 0, 0)  # the output is not part of ==
    only_err = module.run(stdin=b"x", stdout=wt.DEVNULL, stderr=subprocess.PIPE)
    assert (only_err.stdout, only_err.stderr) == (None, b"<eof>")
    assert module.run(stdin=b"", stdout=wt.PIPE, stderr=wt.DEVNULL).stdout == b""
    assert module.run(stdin=b"x", stdout=wt.DEVNULL).stdout is None
    with pytest.raises(ValueError, match="stdout must be DEVNULL, PIPE or a file descriptor"):
        module.run(stdout=subprocess.STDOUT)
    with pytest.raises(ValueError, match="for input, pass bytes"):
        module.run(stdin=wt.PIPE)


def test_pipe_keeps_each_write_whole_across_threads(load):
    exit = load(guests.printers(8, exit_code=5)).run(stdout=wt.PIPE)
    assert exit.code == 5
    lines = exit.stdout.splitlines(keepends=True)
    assert sorted(lines[:-1]) == [f"line from thread {n}\n".encode() for n in range(8)]
    assert lines[-1] == b"main done\n"


def test_stdout_to_fd_in_subprocess_inherits_by_default(tmp_path):
    # Inherit (the default) writes to the process's own fd 1: check it in a child process.
    script = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import guests, wasithreads as wt\n"
        "e = wt.Engine(); m = e.load(guests.printers(3))\n"
        "print('exit', m.run().code, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, env=os.environ).stdout
    lines = out.decode().splitlines()
    assert sorted(lines[:-2]) == [f"line from thread {n}" for n in range(3)]
    assert lines[-2:] == ["main done", "exit 0"]


def test_preopened_dirs(load, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    assert load(guests.WRITE_FILE).run(dirs={rw: "/"}).ok
    assert (rw / "out.txt").read_bytes() == b"written by wasm\n"
    exit = load(guests.WRITE_FILE).run(readonly_dirs={str(ro): "/data"})
    assert exit.kind is wt.ExitKind.CODE and exit.code != 0  # path_open's WASI errno
    assert not (ro / "out.txt").exists()
    # No directory at all: fd 3 does not exist (WASI EBADF = 8).
    assert load(guests.WRITE_FILE).run().code == 8


def test_engine_options(tmp_path):
    with wt.Engine(opt_level=0, max_wasm_stack=256 * 1024, interrupt_tick_us=500) as e:
        assert e.load(guests.printers(1)).run(stdout=wt.DEVNULL).ok
        assert e.load(guests.RECURSE).run().message.startswith("wasm trap: call stack exhausted")
    with pytest.raises(wt.Error):
        wt.Engine(opt_level=7)
    with pytest.raises(wt.Error):
        wt.Engine(max_wasm_stack=0)
    with pytest.raises(ValueError):
        wt.Engine(opt_level=300)
    with pytest.raises(TypeError):
        wt.Engine(opt_level="fast")


def test_load_limits():
    with wt.Engine(max_module_bytes=8) as e, pytest.raises(wt.LimitError, match="more than the 8 bytes"):
        e.load(guests.printers(1))
    with wt.Engine(max_functions=0) as e, pytest.raises(wt.LimitError, match="functions, more than the 0"):
        e.load(guests.printers(1))
    with wt.Engine(max_module_bytes=1 << 20, max_functions=100) as e:
        assert e.load(guests.printers(1)).run(stdout=wt.DEVNULL).ok
    with pytest.raises(ValueError):
        wt.Engine(max_functions=-1)


def test_max_memory_below_minimum_fails_to_start(load):
    with pytest.raises(wt.Error):
        load(guests.printers(1)).run(max_memory=1024)  # below the module's one page


def test_closed_handles_raise(engine):
    module = engine.load(guests.printers(1))
    module.close()
    module.close()  # idempotent
    assert module.closed
    with pytest.raises(wt.Error, match="closed"):
        module.run()
    e = wt.Engine()
    m = e.load(guests.printers(1))
    e.close()
    with pytest.raises(wt.Error, match="engine is closed"):
        e.load(guests.ECHO)
    with pytest.raises(wt.Error, match="engine is closed"):
        m.run()
    m.close()
