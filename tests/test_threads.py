"""CPU threads adapt to a busy machine: one thread when the epoch's first steps say it
trains faster; every thread again when the machine is idle."""

import torch

from frcnn.engine.hooks import threads as T


class _Trainer:
    """What the hook reads: a CPU device, steps per epoch, the step index and a clock that
    advances by the step time of the current thread count."""

    device = torch.device("cpu")
    batches_per_epoch = 20

    def __init__(self, seconds):
        self.seconds, self.now, self.batch_in_epoch = seconds, 0.0, 0

    def clock(self):
        return self.now

    def epoch(self, hook, threads):
        hook.before_epoch(self)
        for step in range(12):
            self.batch_in_epoch = step
            self.now += self.seconds[threads()]
            hook.after_step(self)


def test_one_thread_when_it_trains_faster_then_all_again(monkeypatch):
    state = {"n": 2}
    monkeypatch.setattr(torch, "get_num_threads", lambda: state["n"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: state.update(n=n))
    hook = T.CpuThreads()
    busy = _Trainer({2: 1.9, 1: 1.0})  # the step times measured with a core kept busy
    busy.epoch(hook, lambda: state["n"])
    assert state["n"] == 1 and hook.current == 1
    idle = _Trainer({3: 0.5, 2: 0.65, 1: 1.0})
    idle.epoch(hook, lambda: state["n"])
    assert state["n"] == 2 and hook.current == 2
    state["n"] = 1
    hook.after_train(idle)
    assert state["n"] == 2  # restored
    fixed = T.CpuThreads(3)
    fixed.before_train(idle)
    idle.epoch(fixed, lambda: state["n"])  # a fixed count is never measured
    assert state["n"] == 3
