"""The study progress meter's heartbeat inside a chunk (kuralab/_study/progress.py)."""

from __future__ import annotations

import time

import pytest

from kuralab._study import progress as P


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(P.time, "perf_counter", c)
    return c


def _meter(done=()):
    chunks = [slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 14)]
    return P._Progress("demo", chunks, set(done), enabled=True)


def test_beat_extrapolates_from_the_mean_chunk_time(clock, capsys):
    meter = _meter()
    clock.t += 7.0
    first = meter.beat()
    assert "chunk 1/4 running, 7 s in" in first and "also compiles" in first
    clock.t += 3.0  # the first chunk took 10 s
    meter.update(0)
    clock.t += 5.0  # half of the mean into the second chunk
    text = meter.beat()
    assert "chunk 2/4 running, 5 s in" in text
    assert "~50% at the mean 10 s per chunk" in text
    clock.t += 60.0  # far past the mean: capped below a whole chunk
    assert "~99%" in meter.beat()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[demo] chunk 1/4 running")
    assert err[1].startswith("[demo] chunk 1/4 (4/14 points) 10.0 s elapsed, 0.40 points/s")
    assert len(err) == 4


def test_resumed_meter_counts_finished_chunks(clock, capsys):
    meter = _meter(done={0, 2})
    assert capsys.readouterr().err.strip() == (
        "[demo] resuming: 2 of 4 chunks (8 of 14 points) already finished"
    )
    clock.t += 2.0
    assert "chunk 3/4 running" in meter.beat()


def test_heartbeat_thread_prints_until_closed(monkeypatch, capsys):
    monkeypatch.setenv(P.INTERVAL_ENV, "0.02")
    meter = _meter()
    meter.start_heartbeat()
    time.sleep(0.3)
    meter.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3 and all("running" in line for line in lines)
    time.sleep(0.1)
    assert capsys.readouterr().err == ""  # closed: the thread is gone


def test_disabled_meter_is_silent_and_starts_no_thread(monkeypatch, capsys):
    monkeypatch.setenv(P.INTERVAL_ENV, "0.01")
    meter = P._Progress("demo", [slice(0, 2)], set(), enabled=False)
    meter.start_heartbeat()
    assert meter._thread is None
    meter.update(0)
    meter.close()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("raw, expected", [("2.5", 2.5), ("0", 30.0), ("-1", 30.0), ("x", 30.0)])
def test_interval_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(P.INTERVAL_ENV, raw)
    assert P._Progress("d", [slice(0, 1)], set(), enabled=False)._interval() == expected
