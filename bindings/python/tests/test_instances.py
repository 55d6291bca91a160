"""Instances and host functions with the hand-written plugin (tests/guests/wat/plugin.wat):
typed calls and their checks, host functions and what they may raise or return, the
instance's end, cancel, memory, asyncio; host functions in command runs."""

import asyncio
import functools
import gc
import select
import signal
import sys
import threading

import pytest

import guests
import wasithreads as wt
import workers
from workers import WAIT


def twice(x: int) -> int:
    return 2 * x


def no_block() -> None:
    raise AssertionError("env.block called")


def imports(**funcs):
    return {"env": {"twice": twice, "block": no_block, **funcs}}


def test_exports_are_typed_and_listed(wat_plugin):
    with wat_plugin.instantiate(imports=imports()) as inst:
        assert inst.call_mode is wt.CallMode.PARALLEL
        assert inst.call_mode == "parallel"
        names = set(inst.exports)
        assert {"add", "whoami", "twice_plus", "sum", "spin", "boom", "quit", "block", "spawn_twice"} <= names
        assert "memory" not in names  # not a function
        assert "add" in dir(inst.exports)
        add = inst.exports.add
        assert add is inst.exports["add"]
        assert (add.name, add.params, add.results) == ("add", (wt.ValKind.I32, wt.ValKind.I32), (wt.ValKind.I32,))
        assert inst.exports.sum.results == ("i64",)
        assert inst.exports.boom.params == () and inst.exports.boom.results == ()
        assert inst.exports.inited() == 7  # _initialize ran
        assert add(1, 2) == 3
        assert inst.call("add", 40, 2) == 42
        assert add(2**31 - 1, 1) == -(2**31)  # i32 arithmetic wraps; results are signed
        assert add(2**32 - 1, 0) == -1  # unsigned arguments are accepted and wrap
        assert inst.exports.boom.__call__.__doc__
        with pytest.raises(AttributeError, match="no callable export 'nope'"):
            inst.exports.nope  # noqa: B018
        with pytest.raises(KeyError):
            inst.exports["nope"]
        with pytest.raises(KeyError):
            inst.call("nope")


def test_wrong_arguments_raise_type_error_and_the_instance_lives(wat_plugin):
    with wat_plugin.instantiate(imports=imports()) as inst:
        add = inst.exports.add
        with pytest.raises(TypeError, match=r"add\(i32, i32\) -> \(i32\) takes 2 arguments, not 1"):
            add(1)
        with pytest.raises(TypeError, match="takes 2 arguments, not 3"):
            add(1, 2, 3)
        with pytest.raises(TypeError, match=r"argument 1 of add.* must be an int, not str"):
            add("1", 2)
        with pytest.raises(TypeError, match=r"argument 2 of add.* must be an int, not float"):
            add(1, 2.0)
        with pytest.raises(OverflowError, match="argument 2 of add"):
            add(1, 2**32)
        with pytest.raises(OverflowError):
            add(-(2**31) - 1, 0)
        with pytest.raises(OverflowError):
            inst.exports.spin(2**40)
        assert add(1, 2) == 3  # nothing of the above reached the guest
        assert inst.exports.sum(0, 0) == 0


def test_host_function_from_a_call_and_from_a_guest_thread(wat_plugin):
    seen = []
    lock = threading.Lock()

    def twice_(caller: wt.Caller, x: int) -> int:
        with lock:
            seen.append((caller.tid, x, threading.get_ident()))
        return 2 * x

    with wat_plugin.instantiate(imports=imports(twice=twice_)) as inst:
        assert inst.exports.twice_plus(20) == 41
        assert inst.exports.spawn_twice(5) == 10  # env.twice called on a thread the call started
        me = inst.exports.whoami()
    (tid1, x1, os1), (tid2, x2, os2) = seen
    assert (tid1, x1, os1) == (me, 20, threading.get_ident())  # on the calling thread's guest thread
    assert x2 == 5 and tid2 not in (0, me)  # a guest pthread of its own
    assert os2 != threading.get_ident()


def test_each_python_thread_has_its_own_guest_thread(wat_plugin):
    with wat_plugin.instantiate(imports=imports()) as inst:
        tids = {}
        alive = threading.Barrier(4)  # no thread exits (freeing its guest thread for reuse) early

        def who(n):
            tids[n] = (inst.exports.whoami(), inst.exports.whoami())
            alive.wait(WAIT)

        workers.run(who, 4)
        assert all(a == b for a, b in tids.values())  # kept between calls
        assert len({a for a, _ in tids.values()}) == 4  # one per host thread
        assert 0 not in {a for a, _ in tids.values()}


def test_eight_python_threads_call_concurrently(wat_plugin):
    errors = []
    with wat_plugin.instantiate(imports=imports()) as inst:
        add, twice_plus, spin = inst.exports.add, inst.exports.twice_plus, inst.exports.spin
        start = threading.Barrier(8)

        def work(n):
            try:
                start.wait(WAIT)
                for i in range(1500):
                    assert add(n, i) == n + i
                    if i % 50 == 0:
                        assert twice_plus(n * 1000 + i) == 2 * (n * 1000 + i) + 1
                        assert spin(i) == spin(i)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        workers.run(work, 8)
        assert not errors
        exit = inst.close()
    assert exit == wt.Exit(wt.ExitKind.CANCELLED, 0, -1)


def test_a_trap_ends_the_instance_for_every_later_call(wat_plugin):
    inst = wat_plugin.instantiate(imports=imports())
    assert inst.exports.add(1, 1) == 2
    with pytest.raises(wt.InstanceEnded) as info:
        inst.exports.boom()
    first = info.value.exit
    assert first.kind is wt.ExitKind.TRAP
    assert "unreachable" in first.message and "wasm backtrace" in first.message
    assert first.tid > 0  # the call's guest thread
    assert "trapped" in str(info.value)
    assert not isinstance(info.value, wt.CallbackError)
    later = []

    def call(n):
        try:
            inst.exports.add(n, 2)
        except wt.InstanceEnded as e:
            later.append(e.exit)

    workers.run(call, 4)
    call(0)
    assert later == [first] * 5
    assert inst.memory.read(600, 4) == (7).to_bytes(4, "little")  # memory outlives the end
    assert inst.close() == first
    assert inst.close() == first  # idempotent
    with pytest.raises(wt.InstanceEnded) as info:
        inst.exports.add(1, 2)  # after close too
    assert info.value.exit == first


def test_proc_exit_in_a_call_ends_the_instance(wat_plugin):
    with wat_plugin.instantiate(imports=imports()) as inst:
        with pytest.raises(wt.InstanceEnded) as info:
            inst.exports.quit(5)
        assert (info.value.exit.kind, info.value.exit.code) == (wt.ExitKind.CODE, 5)
    assert inst.close() == info.value.exit


def test_a_host_function_that_raises_traps_and_is_raised_again(wat_plugin):
    class Bad(Exception):
        pass

    def twice_(x: int) -> int:
        raise Bad(f"no twice for {x}")

    inst = wat_plugin.instantiate(imports=imports(twice=twice_))
    with pytest.raises(wt.InstanceCallbackError) as info:
        inst.exports.twice_plus(3)
    err = info.value
    assert isinstance(err, wt.CallbackError) and isinstance(err, wt.InstanceEnded)
    assert isinstance(err.__cause__, Bad) and str(err.__cause__) == "no twice for 3"
    assert err.errors == [err.__cause__]
    assert err.exit.kind is wt.ExitKind.TRAP
    assert "host function `env::twice` failed: Bad: no twice for 3" in err.exit.message
    assert "wasm backtrace" in err.exit.message
    with pytest.raises(wt.InstanceEnded) as again:  # every later call, the same exit
        inst.exports.add(1, 2)
    assert again.value.exit == err.exit and again.value.__cause__ is err.__cause__
    assert inst.close() == err.exit  # already reported by the calls: close does not raise


@pytest.mark.parametrize(
    ("result", "text"),
    [("x", "must be an int, not str"), (None, "must be an int, not NoneType"), (2**40, "for an i32")],
)
def test_a_host_function_returning_the_wrong_type_traps(wat_plugin, result, text):
    with pytest.raises(TypeError, match="no annotation"):  # a lambda needs wt.Func
        wat_plugin.instantiate(imports=imports(twice=lambda x: result))
    with wat_plugin.instantiate(imports=imports(twice=wt.Func(lambda x: result, [int], [int]))) as inst:
        with pytest.raises(wt.InstanceCallbackError) as info:
            inst.exports.twice_plus(1)
        assert text in info.value.exit.message
        assert isinstance(info.value.__cause__, (TypeError, OverflowError))


def test_signatures_from_annotations_and_explicit():
    def f(caller: wt.Caller, a: int, b: wt.i64, c: wt.f32, d: float) -> tuple[wt.i64, float]:
        return 0, 0.0

    func = wt.Func(f)
    assert func.caller is True
    assert func.params == ("i32", "i64", "f32", "f64")
    assert func.results == ("i64", "f64")

    def g(x: "wt.i64") -> "wt.f32":  # string annotations are resolved
        return 0.0

    assert (wt.Func(g).caller, wt.Func(g).params, wt.Func(g).results) == (False, ("i64",), ("f32",))

    def h(x: int):  # no return annotation: no result
        pass

    assert wt.Func(h).results == ()
    explicit = wt.Func(lambda *a: None, params=[wt.i32, "i64", wt.ValKind.F32, float], results=[int])
    assert (explicit.params, explicit.results, explicit.caller) == (("i32", "i64", "f32", "f64"), ("i32",), False)
    with pytest.raises(TypeError, match="parameter 'x' has no annotation"):
        wt.Func(lambda x: x)
    class Counter:
        def __call__(self, x: wt.i64) -> wt.i64:
            return x

        def method(self, caller: wt.Caller, x: float) -> None: ...

    assert (wt.Func(Counter()).params, wt.Func(Counter()).results) == (("i64",), ("i64",))
    assert (wt.Func(Counter().method).caller, wt.Func(Counter().method).params) == (True, ("f64",))
    partial = wt.Func(functools.partial(f))
    assert (partial.caller, partial.params) == (True, ("i32", "i64", "f32", "f64"))

    def bad(x: str) -> None: ...

    def kw(*, x: int) -> None: ...

    with pytest.raises(TypeError, match="not a WebAssembly value type"):
        wt.Func(bad)
    with pytest.raises(TypeError, match="not positional"):
        wt.Func(kw)
    with pytest.raises(TypeError, match="must be callable"):
        wt.Func(3)


def test_an_import_of_another_type_is_a_link_error(wat_plugin):
    def twice_(x: wt.i64) -> wt.i64:
        return x

    with pytest.raises(wt.LinkError, match="env::twice"):
        wat_plugin.instantiate(imports=imports(twice=twice_))
    with pytest.raises(wt.LinkError, match="env::block"):
        wat_plugin.instantiate(imports={"env": {"twice": twice}})
    with pytest.raises(TypeError):
        wat_plugin.instantiate(imports={"env": twice})


def test_every_value_type_round_trips_through_a_host_function(engine):
    wat = b"""(module
      (import "env" "f" (func $f (param i32 i64 f32 f64) (result i32 i64 f32 f64)))
      (memory 1)
      (func (export "go") (param i32 i64 f32 f64) (result i32 i64 f32 f64)
        (call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"""
    got = []

    def f(a: int, b: wt.i64, c: wt.f32, d: float) -> tuple[int, wt.i64, wt.f32, float]:
        got.append((a, b, c, d))
        return a + 1, b + 1, c * 2, d / 2

    with engine.load(wat) as module, module.instantiate(imports={"env": {"f": f}}) as inst:
        assert inst.call_mode is wt.CallMode.SERIAL  # no shared memory, no pthreads
        assert inst.exports.go(-5, 2**62, 1.5, 0.25) == (-4, 2**62 + 1, 3.0, 0.125)
        assert inst.exports.go(0, -1, 3.4e38, 1e300) == (1, 0, float("inf"), 5e299)
        assert inst.exports.go(1, 2, 1e39, 0) == (2, 3, float("inf"), 0.0)  # f32 arguments round as C casts
    assert got[0] == (-5, 2**62, 1.5, 0.25)


def test_caller_memory_and_caller_outside_its_call(wat_plugin):
    kept = []

    def twice_(caller: wt.Caller, x: int) -> int:
        mem = caller.memory
        assert len(mem) == 2 * 65536
        mem[5000:5003] = b"abc"  # writable, the guest memory itself
        assert caller.is_ending is False
        assert caller.end_fd >= 0
        kept.append(caller)
        return bytes(mem[600:601])[0] * x  # _initialize stored 7 at 600

    with wat_plugin.instantiate(imports=imports(twice=twice_)) as inst:
        assert inst.exports.twice_plus(3) == 22
        assert inst.memory.read(5000, 3) == b"abc"
    with pytest.raises(wt.UsageError, match="only during its host function call"):
        kept[0].tid  # noqa: B018
    assert "call ended" in repr(kept[0])


def test_memory_read_write_view_and_bounds(wat_plugin):
    with wat_plugin.instantiate(imports=imports()) as inst:
        mem = inst.memory
        assert len(mem) == 2 * 65536
        data = bytes(range(256)) * 4
        mem.write(8192, data)
        assert mem.read(8192, len(data)) == data
        assert inst.exports.sum(8192, len(data)) == sum(data)
        mem.write(8192, bytearray(b"\x01\x02"))
        mem.write(8194, memoryview(b"\x03\x04"))
        assert mem.read(8192, 4) == b"\x01\x02\x03\x04"
        view = mem.view()
        assert len(view) == len(mem) and not view.readonly
        view[9000:9004] = b"wxyz"
        assert mem.read(9000, 4) == b"wxyz"
        assert inst.exports.sum(9000, 4) == sum(b"wxyz")
        if sys.version_info >= (3, 12):  # the buffer protocol of Python classes (__buffer__)
            assert memoryview(mem)[600] == 7 and len(memoryview(mem)) == len(mem)
        with pytest.raises(wt.UsageError):
            mem.read(len(mem) - 2, 3)
        with pytest.raises(wt.UsageError):
            mem.write(len(mem) - 1, b"ab")
        assert mem.read(len(mem), 0) == b""
        with pytest.raises(wt.UsageError):
            mem.read(0, 2**62)  # refused before anything is allocated
        with pytest.raises(ValueError):
            mem.read(-1, 1)
        with pytest.raises(TypeError):
            mem.write(0, "text")
    # A view keeps the memory mapped after close; it is released with the last view.
    assert bytes(view[9000:9004]) == b"wxyz"
    with pytest.raises(wt.UsageError, match="closed"):
        mem.read(0, 1)
    del view
    gc.collect()


def test_a_blocking_host_function_is_stopped_by_cancel(wat_plugin):
    entered = threading.Event()
    left = []

    def block(caller: wt.Caller) -> None:
        fd = caller.end_fd
        entered.set()
        while not select.select([fd], [], [], 10)[0]:  # readable once the instance ends
            pass
        left.append(caller.is_ending)
        raise InterruptedError("the instance is ending")  # how a host function stops: not reported

    assert block_then_cancel(wat_plugin, block, entered) == [wt.ExitKind.CANCELLED]
    assert left == [True]


def block_then_cancel(wat_plugin, block, entered):
    """What a call of the export `block` (whose env.block is `block`, which sets `entered`)
    gives when the instance is cancelled while it is in the host function: a list of the
    result or of the InstanceEnded's exit kind."""
    with wat_plugin.instantiate(imports=imports(block=block)) as inst:
        outcome = []

        def call(_):
            try:
                outcome.append(inst.exports.block())
            except wt.InstanceEnded as e:
                outcome.append(e.exit.kind)

        threads = workers.start(call, 1)
        assert entered.wait(WAIT)
        inst.cancel()
        workers.join(threads)
    return outcome


def test_close_from_a_host_function_is_refused(wat_plugin):
    box = {}

    def twice_(x: int) -> int:
        try:
            box["inst"].close()
        except wt.UsageError as e:
            box["error"] = e
        box["inst"].cancel()  # allowed
        return x

    with wat_plugin.instantiate(imports=imports(twice=twice_)) as inst:
        box["inst"] = inst
        ended = []
        try:
            inst.exports.twice_plus(1)  # may return: its wasm has no interruption point left
        except wt.InstanceEnded as e:
            ended.append(e.exit.kind)
        assert ended in ([], [wt.ExitKind.CANCELLED])
        with pytest.raises(wt.InstanceEnded) as info:
            inst.exports.add(1, 2)
        assert info.value.exit.kind is wt.ExitKind.CANCELLED
    assert "would wait for itself" in str(box["error"])


def test_call_timeout_ends_the_instance(wat_plugin):
    with wat_plugin.instantiate(imports=imports(), call_timeout=0.05) as inst:
        assert inst.exports.add(1, 2) == 3
        with pytest.raises(wt.InstanceEnded) as info:
            inst.exports.spin(2**31 - 1)
        assert info.value.exit == wt.Exit(wt.ExitKind.TIMEOUT, 0, -1)


def test_initialize_that_traps_fails_instantiate(engine):
    with engine.load(b'(module (memory 1) (func (export "_initialize") unreachable))') as module:
        with pytest.raises(wt.InstanceEnded, match="unreachable") as info:
            module.instantiate()
        assert info.value.exit is None


def test_a_failed_initialize_does_not_wait_for_its_own_thread(engine):
    diagnostics = []
    module = engine.load(b'(module (memory 1) (func (export "_initialize") unreachable))')
    with pytest.raises(wt.InstanceEnded):
        module.instantiate(teardown_grace=60, on_diagnostic=lambda tid, m: diagnostics.append((tid, m)))
    assert diagnostics == []  # no "thread(s) 0 had not stopped": it is the calling thread


def test_initialize_calling_a_host_function_that_raises(engine):
    wat = b"""(module (import "env" "f" (func $f)) (memory 1)
      (func (export "_initialize") (call $f)))"""

    def f() -> None:
        raise RuntimeError("not now")

    with engine.load(wat) as module:
        with pytest.raises(wt.InstanceCallbackError, match="not now") as info:
            module.instantiate(imports={"env": {"f": f}})
        assert isinstance(info.value.__cause__, RuntimeError)


def test_asyncio_calls_cancel_and_close(wat_plugin):
    async def main():
        async with await wat_plugin.instantiate_async(imports=imports()) as inst:
            results = await asyncio.gather(*(inst.exports.add.call_async(n, 1) for n in range(8)))
            assert results == [n + 1 for n in range(8)]
            assert await inst.call_async("twice_plus", 4) == 9
            with pytest.raises(TypeError):
                await inst.call_async("add", 1)
            task = asyncio.ensure_future(inst.exports.spin.call_async(2**31 - 1))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Cancelling the task cancelled the instance.
            with pytest.raises(wt.InstanceEnded) as info:
                await inst.call_async("add", 1, 2)
            assert info.value.exit.kind is wt.ExitKind.CANCELLED
        return inst

    inst = asyncio.run(main())
    assert inst.closed
    assert inst.close().kind is wt.ExitKind.CANCELLED


def test_asyncio_close_and_shielded_call(wat_plugin):
    async def main():
        inst = await wat_plugin.instantiate_async(imports=imports())
        shielded = asyncio.ensure_future(inst.exports.spin.call_async(3000))
        await asyncio.wait({asyncio.ensure_future(asyncio.shield(shielded))}, timeout=WAIT)
        assert shielded.result() == inst.exports.spin(3000)
        return await inst.close_async()

    assert asyncio.run(main()).kind is wt.ExitKind.CANCELLED


def hits_from_threads() -> bytes:
    """A command whose main thread spawns 8 threads that each call env.hit(n) and store
    the result; main checks each is 2n + 1 and exits with 0, or 1 at the first wrong one."""
    return f"""(module
  (import "env" "hit" (func $hit (param i32) (result i32)))
  {guests._HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32)
    (i32.store (i32.add (i32.const 2048) (i32.mul (local.get $n) (i32.const 4))) (call $hit (local.get $n)))
    (call $count_in))
  (func (export "_start") (local $n i32)
    (loop $s
      (drop (call $spawn (local.get $n)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const 8))))
    (call $wait_count (i32.const 8))
    (local.set $n (i32.const 0))
    (loop $c
      (if (i32.ne (i32.load (i32.add (i32.const 2048) (i32.mul (local.get $n) (i32.const 4))))
                  (i32.add (i32.mul (local.get $n) (i32.const 2)) (i32.const 1)))
        (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $c (i32.lt_u (local.get $n) (i32.const 8))))))
""".encode()


def test_host_functions_in_a_command_run_from_eight_threads(load):
    calls = []
    lock = threading.Lock()

    views = []

    def hit(caller: wt.Caller, n: int) -> int:
        with lock:
            calls.append((caller.tid, n))
            views.append(caller.memory)
        return 2 * n + 1

    module = load(hits_from_threads())
    assert module.run(imports={"env": {"hit": hit}}).ok
    assert sorted(n for _, n in calls) == list(range(8))
    # A view of a run's memory outlives the run (its memory is released after the view).
    assert [int.from_bytes(views[0][2048 + 4 * n : 2052 + 4 * n], "little") for n in range(8)] == [
        2 * n + 1 for n in range(8)
    ]
    views.clear()
    assert sorted(tid for tid, _ in calls) == list(range(1, 9))
    # start() and run_async() take them too.
    with module.start(imports={"env": {"hit": hit}}) as run:
        assert run.wait(WAIT).ok
    assert asyncio.run(module.run_async(imports={"env": {"hit": hit}})).ok


def test_a_raising_host_function_in_a_run_is_a_callback_error(load):
    def hit(n: int) -> int:
        raise ValueError(f"hit {n}")

    with pytest.raises(wt.CallbackError) as info:
        load(hits_from_threads()).run(imports={"env": {"hit": hit}})
    err = info.value
    assert not isinstance(err, wt.InstanceEnded)
    assert isinstance(err.__cause__, ValueError)
    assert err.exit.kind is wt.ExitKind.TRAP
    assert "host function `env::hit` failed: ValueError: hit" in err.exit.message
    assert "the run ended (TRAP)" in str(err)


def test_an_instance_dropped_without_close_is_closed_at_once(wat_plugin):
    inst = wat_plugin.instantiate(imports=imports())
    add, memory = inst.exports.add, inst.memory  # they do not keep it alive
    assert add(1, 2) == 3
    handle = inst._core.h
    del inst  # no reference cycle: closed by the refcount, without waiting for the gc
    assert handle.closed
    with pytest.raises(wt.InstanceEnded) as info:
        add(1, 2)
    assert info.value.exit.kind is wt.ExitKind.CANCELLED
    with pytest.raises(wt.UsageError, match="closed"):
        memory.read(0, 1)


def test_a_call_in_flight_at_cancel_raises_even_if_its_host_function_returns(wat_plugin):
    entered = threading.Event()

    def block(caller: wt.Caller) -> None:
        entered.set()
        while not select.select([caller.end_fd], [], [], 10)[0]:
            pass  # then returns normally, as a host function that ignores is_ending would

    outcome = block_then_cancel(wat_plugin, block, entered)
    assert outcome == [wt.ExitKind.CANCELLED]


def test_cancelling_instantiate_async_closes_the_instance(engine):
    wat = b"""(module (import "env" "wait" (func $wait)) (memory 1)
      (func (export "_initialize") (call $wait)) (func (export "one") (result i32) (i32.const 1)))"""
    entered, release = threading.Event(), threading.Event()
    made = []

    def wait(caller: wt.Caller) -> None:
        entered.set()
        assert release.wait(WAIT)
        made.append(caller.tid)

    async def main():
        task = asyncio.ensure_future(module.instantiate_async(imports={"env": {"wait": wait}}))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # _initialize is still running: the task waits for it
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    with engine.load(wat) as module:
        asyncio.run(main())
    assert made == [0]  # _initialize ran to its end on the instance's main thread


def test_ctrl_c_in_a_host_function_on_the_main_thread(wat_plugin):
    def twice_(x: int) -> int:
        signal.raise_signal(signal.SIGINT)  # as Ctrl-C while the host function runs
        return 2 * x

    assert threading.current_thread() is threading.main_thread()
    with wat_plugin.instantiate(imports=imports(twice=twice_)) as inst:
        with pytest.raises(KeyboardInterrupt) as info:
            inst.exports.twice_plus(1)
        assert isinstance(info.value.__cause__, wt.InstanceCallbackError)  # it ended the instance
        with pytest.raises(wt.InstanceCallbackError) as later:
            inst.exports.add(1, 2)
        assert later.value.exit.kind is wt.ExitKind.TRAP
        assert "KeyboardInterrupt" in later.value.exit.message
