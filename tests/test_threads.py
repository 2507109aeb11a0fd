"""The thread count follows the free cores (affinity and load faked), unless the user sets it."""
import logging

import pytest
import torch

from asteroid_audiosep import AudioSepError, threads


def choose(requested=None, env=None, cores=(0, 1), load=0.0):
    return threads.choose_threads(requested, environ=env or {}, affinity=lambda: set(cores),
                                  load=lambda: load)


@pytest.mark.parametrize(
    "cores, load, expected",
    [
        ((0, 1), 0.0, 2),        # idle 2-core machine: both
        ((0, 1), 1.2, 1),        # another process busy: one
        ((0, 1), 9.0, 1),        # overloaded: never below one
        ((0, 1, 2, 3, 4, 5, 6, 7), 2.6, 5),
        ((3,), 0.0, 1),          # pinned to one core (taskset)
    ],
)
def test_free_cores(cores, load, expected):
    n, reason = choose(cores=cores, load=load)
    assert n == expected and f"{len(cores)} usable cores" in reason


def test_user_setting_wins():
    assert choose(3, env={"AUDIOSEP_NUM_THREADS": "2"}, load=9.0)[0] == 3
    assert choose(env={"AUDIOSEP_NUM_THREADS": "2"}, load=9.0) == (2, "from AUDIOSEP_NUM_THREADS")
    assert choose(env={"OMP_NUM_THREADS": "4"}, load=9.0) == (4, "from OMP_NUM_THREADS")
    with pytest.raises(AudioSepError, match="AUDIOSEP_NUM_THREADS"):
        choose(env={"AUDIOSEP_NUM_THREADS": "many"})
    with pytest.raises(AudioSepError, match=">= 1"):
        choose(-2)


def test_set_threads_applies_and_logs_once(monkeypatch, caplog):
    monkeypatch.setattr(threads, "_logged", False)
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.INFO, logger="asteroid_audiosep"):
            assert threads.set_threads(environ={}, affinity=lambda: {0, 1}, load=lambda: 1.0) == 1
            assert torch.get_num_threads() == 1
            threads.set_threads(2, environ={})
            assert torch.get_num_threads() == 2
        lines = [r.getMessage() for r in caplog.records if "CPU thread" in r.getMessage()]
        assert lines == ["computing with 1 CPU thread (2 usable cores, load average 1.0)"]
    finally:
        torch.set_num_threads(before)
