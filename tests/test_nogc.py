"""paused_gc: the cyclic collector is off inside the block and as it was after, however blocks
nest or overlap across threads."""

from __future__ import annotations

import gc
import threading

import pytest

from indexer.nogc import paused_gc

pytestmark = pytest.mark.backend_free


@pytest.fixture(autouse=True)
def collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_off_in_the_block_and_back_on_after_it():
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block is still under way
    assert gc.isenabled()


def test_an_error_in_the_block_still_restores_the_collector():
    gc.enable()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("x")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_as_a_decorator_it_pauses_every_call():
    seen = []

    @paused_gc()
    def work() -> None:
        seen.append(gc.isenabled())

    gc.enable()
    work()
    work()
    assert seen == [False, False] and gc.isenabled()


def test_overlapping_blocks_in_two_threads_leave_it_on_only_when_the_last_ends():
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    states = {}

    def first() -> None:
        with paused_gc():
            first_in.set()
            second_in.wait(5)
        states["after first"] = gc.isenabled()  # the second block is still under way
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with paused_gc():
            second_in.set()
            first_out.wait(5)
            states["in second after first"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert states == {"after first": False, "in second after first": False}
    assert gc.isenabled()
