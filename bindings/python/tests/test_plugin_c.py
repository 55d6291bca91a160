"""The real C plugin (tests/guests/plugin-c/plugin.c: clang + wasi-libc, a threaded
reactor; its banner lists every export and import) driven from Python: host functions
called from guest pthreads, memory round trips, Python threads calling at once, the
instance's end, cancel, close stopping the plugin's own threads."""

import select
import struct
import threading

import pytest

import wasithreads as wt
import workers
from workers import WAIT


class Host:
    """The plugin's imports (env.host_log, env.host_add, env.host_block), recording calls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.logs = []  # (tid, text)
        self.adds = []  # (tid, a, b)
        self.blocked = threading.Semaphore(0)

    def host_log(self, caller: wt.Caller, ptr: int, length: int) -> None:
        text = caller.memory[ptr : ptr + length].tobytes().decode()
        with self.lock:
            self.logs.append((caller.tid, text))

    def host_add(self, caller: wt.Caller, a: wt.i64, b: wt.i64) -> wt.i64:
        with self.lock:
            self.adds.append((caller.tid, a, b))
        return a + b

    def host_block(self, caller: wt.Caller) -> None:
        fd = caller.end_fd
        self.blocked.release()
        while not select.select([fd], [], [], 10)[0]:  # readable once the instance ends
            pass
        raise InterruptedError("the instance is ending")  # stops it; not reported as an error

    def imports(self):
        return {"env": {"host_log": self.host_log, "host_add": self.host_add, "host_block": self.host_block}}


@pytest.fixture
def host():
    return Host()


def test_host_functions_called_from_guest_pthreads(c_plugin, host):
    with c_plugin.instantiate(imports=host.imports()) as inst:
        assert inst.call_mode is wt.CallMode.PARALLEL
        assert inst.exports.call_host_from_threads.params == ("i32",)
        assert inst.exports.call_host_from_threads(8) == 8  # every thread got the right sum
        assert inst.exports.log_message(42) == 0  # the call's own guest thread logs too
        assert inst.exports.call_host_add(2**40, -3) == 2**40 - 3
        assert inst.exports.host_add_loop(100) == sum(range(1, 101))
    threads = {tid: text for tid, text in host.logs if text.startswith("thread ")}
    assert sorted(threads.values()) == [f"thread {i}" for i in range(8)]
    assert len(threads) == 8 and 0 not in threads  # 8 pthreads of their own
    assert "plugin says 42" in [text for _, text in host.logs]
    by_thread = {tid: (a, b) for tid, a, b in host.adds if b == 1000 * a and tid in threads}
    assert sorted(a for a, _ in by_thread.values()) == list(range(8))


def test_memory_round_trip_through_parallel_sum(c_plugin, host):
    with c_plugin.instantiate(imports=host.imports()) as inst:
        n = 100_000
        values = [(i * 2654435761) & 0xFFFFFFFF for i in range(n)]
        data = struct.pack(f"<{n}I", *values)
        ptr = inst.exports.malloc(len(data)) & 0xFFFFFFFF
        assert ptr
        inst.memory.write(ptr, data)
        assert inst.exports.parallel_sum(ptr, n, 4) == sum(values)
        assert inst.memory.read(ptr, len(data)) == data  # unchanged by the guest
        # The same through a view, and a result written by the guest, read back.
        view = inst.memory.view()
        view[ptr : ptr + 8] = struct.pack("<Q", 2**63 + 5)
        out = inst.exports.malloc(8) & 0xFFFFFFFF
        assert inst.exports.parallel_sum64(ptr, 1, 1, out) == 0
        assert struct.unpack("<Q", inst.memory.read(out, 8))[0] == 2**63 + 5
        assert struct.unpack_from("<Q", view, out)[0] == 2**63 + 5
        inst.exports.free(ptr)
        inst.exports.free(out)
        del view


def test_eight_python_threads_call_concurrently(c_plugin, host):
    errors = []
    with c_plugin.instantiate(imports=host.imports()) as inst:
        x = inst.exports
        expected_stack = sum(range(256))
        start = threading.Barrier(8)
        ids = {}

        def work(n):
            try:
                start.wait(WAIT)
                ids[n] = x.self_id()
                for i in range(1, 1001):
                    assert x.add(n, i) == n + i
                    assert x.tls_counter_bump() == i  # this thread's own _Thread_local
                    if i % 100 == 0:
                        assert x.stack_sum(n + 1) == (n + 1) * expected_stack  # its own stack
                        assert x.alloc_check(64 + n) == 64 + n
                        assert x.mutex_add(2, 10) == 0  # error-checking mutex: a unique pthread_self
                        assert x.call_host_add(n, i) == n + i
                assert x.self_id() == ids[n]
                start.wait(WAIT)  # every thread still alive: no guest thread reused
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        workers.run(work, 8)
        assert not errors
        assert len(set(ids.values())) == 8
        assert x.mutex_counter(2) == 8 * 10 * 10


def test_a_trap_ends_the_instance_and_every_later_call(c_plugin, host):
    inst = c_plugin.instantiate(imports=host.imports())
    assert inst.exports.crash(0) == 0
    with pytest.raises(wt.InstanceEnded) as info:
        inst.exports.crash(2)  # a pthread the call created traps while the call joins it
    first = info.value.exit
    assert first.kind is wt.ExitKind.TRAP and "wasm backtrace" in first.message
    outcomes = []

    def call(n):
        try:
            inst.exports.add(n, 1) if n < 8 else inst.exports.spin(10)
            outcomes.append("returned")
        except wt.InstanceEnded as e:
            outcomes.append(e.exit)

    workers.run(call, 8)
    call(8)
    assert outcomes == [first] * 9
    assert inst.close() == first


def test_cancel_with_eight_calls_in_flight(c_plugin, host):
    inst = c_plugin.instantiate(imports=host.imports())
    ready = threading.Barrier(9)
    outcomes = []

    def spin(_):
        inst.exports.add(0, 0)  # its guest thread is made
        ready.wait(WAIT)
        try:
            inst.exports.spin(2**31 - 1)  # seconds of work
            outcomes.append("returned")
        except wt.InstanceEnded as e:
            outcomes.append(e.exit)

    threads = workers.start(spin, 8)
    ready.wait(WAIT)
    inst.cancel()
    workers.join(threads)
    assert outcomes == [wt.Exit(wt.ExitKind.CANCELLED, 0, -1)] * 8
    assert inst.close().kind is wt.ExitKind.CANCELLED


def test_a_blocking_host_function_is_stopped_by_cancel(c_plugin, host):
    with c_plugin.instantiate(imports=host.imports()) as inst:
        outcomes = []

        def call(n):
            try:
                outcomes.append(inst.exports.block() if n == 0 else inst.exports.block_in_threads(3))
            except wt.InstanceEnded as e:
                outcomes.append(e.exit.kind)

        threads = workers.start(call, 2)
        for _ in range(4):  # the call's own thread and 3 pthreads are in host_block
            assert host.blocked.acquire(timeout=WAIT)
        inst.cancel()
        workers.join(threads)
        assert outcomes == [wt.ExitKind.CANCELLED] * 2
    assert inst.close().kind is wt.ExitKind.CANCELLED  # the host functions' exceptions are not errors


def test_close_stops_the_plugins_background_threads(c_plugin, host):
    exits = []
    lock = threading.Lock()

    def on_exit(tid, kind, code):
        with lock:
            exits.append((tid, kind))

    inst = c_plugin.instantiate(imports=host.imports(), on_thread_exit=on_exit)
    assert inst.exports.start_workers(3) == 0
    seen = inst.exports.worker_count()
    for _ in range(100_000):  # they keep counting between calls
        if inst.exports.worker_count() > seen + 3:
            break
    else:
        pytest.fail("the workers did not count")
    assert exits == []  # nothing stopped them
    exit = inst.close()
    assert exit.kind is wt.ExitKind.CANCELLED
    assert sorted(kind for _, kind in exits) == ["terminated"] * 3  # the 3 workers, stopped by close
    # Where each was, for those stopped in wasm: a worker that had not yet run any wasm
    # (still starting, on a loaded machine) ends "terminated" with no backtrace.
    assert exit.stopped_at and set(exit.stopped_at) <= {tid for tid, _ in exits}
    assert all(bt.startswith("wasm backtrace:") for bt in exit.stopped_at.values())
    with pytest.raises(wt.InstanceEnded):
        inst.exports.worker_count()


def test_close_raises_a_callbacks_exception_nobody_saw(c_plugin, host):
    def on_exit(tid, kind, code):
        raise KeyError(tid)

    inst = c_plugin.instantiate(imports=host.imports(), on_thread_exit=on_exit)
    assert inst.exports.start_workers(2) == 0
    with pytest.raises(wt.InstanceCallbackError) as info:
        inst.close()  # stops the workers, whose exit callback raises
    assert isinstance(info.value.__cause__, KeyError)
    assert len(info.value.errors) == 2
    assert inst.close().kind is wt.ExitKind.CANCELLED  # reported once


def test_stdout_of_an_instance(c_plugin, host):
    with c_plugin.instantiate(imports=host.imports(), stdout=wt.PIPE) as inst:
        assert inst.exports.print_line(5) == len("plugin line 5\n")
        assert inst.exports.print_line(6) == len("plugin line 6\n")
    assert inst.close().stdout == b"plugin line 5\nplugin line 6\n"
