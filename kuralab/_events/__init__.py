"""Events during a run: `kl.simulate_events` with `kl.At` / `kl.When` and their actions
(`actions.py`: what an event does; `spec.py`: when it happens, the record; `run.py`: the
segment loop over diffrax)."""

from .actions import AbstractAction, Kick, RemoveEdges, ScaleCoupling, SetParameter, Stop
from .run import simulate_events
from .spec import At, EventLog, When

__all__ = [
    "AbstractAction",
    "At",
    "EventLog",
    "Kick",
    "RemoveEdges",
    "ScaleCoupling",
    "SetParameter",
    "Stop",
    "When",
    "simulate_events",
]
