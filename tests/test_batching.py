"""The server's batcher: waiting items run together up to max_batch, each gets its own
result, an error reaches only the item that causes it."""

import threading

import pytest

from frcnn.serve.batching import Batcher


def test_waiting_items_run_together_up_to_max_batch_in_order():
    calls = []
    gate = threading.Event()

    def run(items):
        gate.wait(10)  # the first call holds the worker while the rest queue up
        calls.append(list(items))
        return [x * 10 for x in items]

    batcher = Batcher(run, max_batch=3, max_wait=0.0)
    futures = [batcher.submit(x) for x in range(7)]
    gate.set()
    assert [f.result(10) for f in futures] == [0, 10, 20, 30, 40, 50, 60]
    batcher.close()
    # The first item may be taken alone before the others arrive; after it, batches of 3.
    assert [x for call in calls for x in call] == list(range(7))
    assert max(len(c) for c in calls) == 3 and batcher.stats.requests == 7
    assert batcher.stats.batches == len(calls) and batcher.stats.largest == 3


def test_an_error_reaches_only_the_item_that_causes_it():
    gate = threading.Event()

    def run(items):
        gate.wait(10)
        if "bad" in items:
            raise ValueError("bad item")
        return [f"ok {x}" for x in items]

    batcher = Batcher(run, max_batch=8, max_wait=0.05)
    futures = [batcher.submit(x) for x in ("a", "bad", "b")]
    gate.set()
    assert futures[0].result(10) == "ok a" and futures[2].result(10) == "ok b"
    with pytest.raises(ValueError, match="bad item"):
        futures[1].result(10)
    batcher.close()
    assert batcher.stats.failed == 1 and batcher.stats.requests == 3


def test_close_runs_what_is_queued_first():
    done = []
    batcher = Batcher(lambda items: [done.append(x) or x for x in items], max_batch=2)
    futures = [batcher.submit(x) for x in range(5)]
    batcher.close()
    assert all(f.done() for f in futures) and sorted(done) == list(range(5))
