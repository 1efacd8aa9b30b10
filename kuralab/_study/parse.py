"""Parsing and validation: TOML text -> a frozen, validated `StudySpec`.

Every error is a `SpecError` with one line naming the key path, the value and the
expected form (`solve.dt = -0.1: expected a number > 0`), suggesting the nearest valid
key for a typo. Sweepable parameters are looked up by name in `spec.PARAMETERS`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path

from . import limits as lim
from ._table import _is_number, _show, _Table
from .parse_events import parse_events
from .parse_model import _parse_model, _parse_study
from .spec import (
    KIND_PARAMETERS,
    PARAMETERS,
    KuramotoSpec,
    ObserveSpec,
    OutputSpec,
    SolveSpec,
    SpecError,
    SphereSpec,
    StudySpec,
    SweepSpec,
)

#: Solvers only for sphere models (AKOrN's projected Euler step).
_SPHERE_ONLY_SOLVERS = ("akorn",)
#: Solvers for second-order (h, v) models, which no spec kind describes yet.
_SECOND_ORDER_ONLY_SOLVERS = ("symplectic_euler",)


def _solver_names(
    noisy: bool = False, delayed: bool = False, kind: str = "kuramoto"
) -> list[str]:
    """The solvers a model admits, in a stable order (sorted; for delays the
    integrator's own order)."""
    from .._integrate import DELAY_SOLVERS, SDDE_SOLVERS, SDE_SOLVERS, SOLVERS

    if delayed:
        return list(SDDE_SOLVERS if noisy else DELAY_SOLVERS)
    names = sorted(SDE_SOLVERS if noisy else SOLVERS)
    names = [name for name in names if name not in _SECOND_ORDER_ONLY_SOLVERS]
    if kind != "sphere":
        names = [name for name in names if name not in _SPHERE_ONLY_SOLVERS]
    return names


_AXIS_FORM = (
    "a non-empty list of distinct finite numbers or a range table "
    "{start = ..., stop = ..., num = ...}"
)
_MODES = ("independent", "adiabatic")
_SIZES_FORM = (
    "a non-empty list of distinct integers in [1, 2**31) (network sizes)"
)
_SEED_FORM = (
    "an integer >= 1 (a number of seeds 0, 1, ...) or a non-empty list of distinct "
    "integers in [0, 2**31)"
)


def _parse_axis(t: _Table, name: str) -> tuple[float, ...]:
    raw = t.data[name]
    path = t.key(name)
    if isinstance(raw, dict):
        r = _Table(path, raw, ("start", "stop", "num"))
        start = r.number("start")
        stop = r.number("stop")
        num = r.integer("num", ge=1)
        if num == 1:
            values = (start,)
        elif start == stop:
            raise SpecError(
                f"{path} = {_show(raw)}: expected start != stop when num > 1"
            )
        else:
            values = tuple(start + (stop - start) * i / (num - 1) for i in range(num))
            values = values[:-1] + (stop,)
    else:
        if not isinstance(raw, list) or not raw:
            raise SpecError(f"{path} = {_show(raw)}: expected {_AXIS_FORM}")
        for v in raw:
            if not _is_number(v) or not math.isfinite(v):
                raise SpecError(f"{path} = {_show(raw)}: expected {_AXIS_FORM}")
        values = tuple(float(v) for v in raw)
        if len(set(values)) != len(values):
            raise SpecError(f"{path} = {_show(raw)}: expected {_AXIS_FORM}")
    what = PARAMETERS[name].nonnegative
    if what is not None and min(values) < 0:
        raise SpecError(
            f"{path} = {_show(raw)}: expected values >= 0 ({what}); got {min(values):g}"
        )
    return values


def _parse_sizes(t: _Table) -> tuple[int, ...]:
    if "n" not in t.data:
        return ()
    raw = t.data["n"]
    if (
        not isinstance(raw, list)
        or not raw
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**31
            for v in raw
        )
        or len(set(raw)) != len(raw)
    ):
        t.fail("n", raw, _SIZES_FORM)
    return tuple(raw)


def _parse_mode(t: _Table, axes) -> tuple[str, str | None]:
    mode = t.string("mode", default="independent", choices=_MODES)
    names = [name for name, _ in axes]
    if mode == "independent":
        if "along" in t.data:
            t.fail("along", t.data["along"], 'no value unless mode = "adiabatic"')
        return mode, None
    if not names:
        t.fail(
            "mode",
            mode,
            'a parameter axis to ramp as well (e.g. K = [...]) with mode = "adiabatic"',
        )
    along = t.string(
        "along",
        default=names[0],
        choices=names,
        expected="the name of a swept parameter axis (" + ", ".join(names) + ")",
    )
    return mode, along


def _parse_sweep(root: _Table, kind: str, limits: lim.Limits) -> SweepSpec:
    own = KIND_PARAMETERS[kind]
    raw = root.data.get("sweep", {})
    for name, value in raw.items() if isinstance(raw, dict) else ():
        if name in PARAMETERS and name not in own:
            other = next(k for k, p in KIND_PARAMETERS.items() if name in p)
            raise SpecError(
                f"sweep.{name} = {_show(value)}: expected a parameter of kind = "
                f'"{kind}" ({", ".join(own)}); {name} belongs to kind = "{other}"'
            )
    t = root.table("sweep", (*own, "n", "seeds", "mode", "along"), required=False)
    # Count the simulations before any axis is built: 1e9-point ranges cost nothing.
    lim.check_points(t.data, t.data.get("mode") == "adiabatic", limits)
    skip = ("seeds", "n", "mode", "along")
    axes = tuple((name, _parse_axis(t, name)) for name in t.data if name not in skip)
    sizes = _parse_sizes(t)
    mode, along = _parse_mode(t, axes)
    raw = t.data.get("seeds", 1)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            t.fail("seeds", raw, _SEED_FORM)
        seeds = tuple(range(raw))
    elif isinstance(raw, list) and raw:
        if not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31
            for s in raw
        ) or len(set(raw)) != len(raw):
            t.fail("seeds", raw, _SEED_FORM)
        seeds = tuple(raw)
    else:
        t.fail("seeds", raw, _SEED_FORM)
    return SweepSpec(axes=axes, seeds=seeds, sizes=sizes, mode=mode, along=along)


def _model_kind_note(noisy: bool, delayed: bool) -> str:
    if noisy and delayed:
        return "the model has noise and delays: [model.noise], [model.delays]"
    if noisy:
        return "the model has noise: [model.noise]"
    return "the model has delays: [model.delays]"


def _parse_solve(
    root: _Table, model: KuramotoSpec | SphereSpec, sweep: SweepSpec
) -> SolveSpec:
    t = root.table(
        "solve", ("t0", "t1", "dt", "solver", "save_every"), what=" with t1 and dt"
    )
    t0 = t.number("t0", default=0.0)
    t1 = t.number("t1")
    if not t1 > t0:
        t.fail("t1", t1, f"a finite number > solve.t0 = {t0:g}")
    dt = t.number("dt", gt=0)
    if not math.isfinite(t1 - t0):
        t.fail("t1", t1, f"a finite number > solve.t0 = {t0:g} with t1 - t0 finite")
    if dt > t1 - t0:
        t.fail("dt", dt, f"a number > 0 and <= t1 - t0 = {t1 - t0:g}")
    steps = lim.count_steps(t0, t1, dt)
    if not steps <= lim.MAX_STEPS:
        t.fail(
            "t1",
            t1,
            f"(t1 - t0) / dt <= {lim.MAX_STEPS} steps (int32 step counters); got "
            f"{steps:.4g} steps of dt = {dt:g}: lower solve.t1 or raise solve.dt",
        )
    noisy, delayed = model.noisy, model.delayed
    solvers = _solver_names(noisy, delayed, model.kind)
    default = "euler" if noisy else "rk4"  # Euler--Maruyama for SDEs, as kl.simulate
    if t.data.get("solver") in _SPHERE_ONLY_SOLVERS and model.kind != "sphere":
        raise SpecError(
            f"solve.solver = {_show(t.data['solver'])}: expected one of "
            + ", ".join(f'"{s}"' for s in solvers)
            + ' (the AKOrN step is for kind = "sphere")'
        )
    if "solver" in t.data and (noisy or delayed):
        value = t.data["solver"]
        if isinstance(value, str) and value not in solvers:
            every = set(_solver_names()) | set(_solver_names(noisy=True))
            if value in every:  # a real solver, but not for this model
                raise SpecError(
                    f"solve.solver = {_show(value)}: expected one of "
                    + ", ".join(f'"{s}"' for s in solvers)
                    + f" ({_model_kind_note(noisy, delayed)})"
                )
    solver = t.string("solver", default=default, choices=solvers)
    if delayed and model.edge_delayed:
        if model.coupling.kind not in ("mean_field", "dense", "sparse"):
            raise SpecError(
                f'model.delays.kind = "edges": expected a coupling with edges '
                f'(model.coupling.kind = "mean_field", "dense" or "sparse"); got '
                f"{_show(model.coupling.kind)}"
            )
        if "speed" in sweep.names and min(sweep.values("speed")) <= 0:
            raise SpecError(
                f"sweep.speed = {_show(list(sweep.values('speed')))}: expected numbers "
                "> 0 (conduction speeds, length per time unit)"
            )
        sizes = sweep.sizes or (model.n,)
        shortest = min(model.delays.distance_bounds(k)[0] for k in sizes)
        tau_min = shortest / max(_values(model, sweep, "speed"))
        if dt > tau_min * (1 + 1e-9):
            where = "sweep.speed" if "speed" in sweep.names else "model.delays.speed"
            t.fail(
                "dt",
                dt,
                f"a step <= the shortest edge delay {tau_min:g} (nearest-neighbour "
                f"distance {shortest:g} / the largest {where}): an explicit delay "
                "solver cannot read a delayed phase from inside the current step",
            )
    elif delayed:
        taus = [v for v in _values(model, sweep, "tau") if v > 0]
        if taus and dt > min(taus) * (1 + 1e-9):
            where = "sweep.tau" if "tau" in sweep.names else "model.delays.tau"
            t.fail(
                "dt",
                dt,
                f"a step <= the smallest positive delay {min(taus):g} ({where}): an "
                "explicit delay solver cannot read a delayed phase from inside the "
                "current step (tau = 0 is fine)",
            )
    save_every = t.integer(
        "save_every", default=1, ge=1, expected="an integer >= 1 (a number of steps)"
    )
    return SolveSpec(t0=t0, t1=t1, dt=dt, solver=solver, save_every=save_every)


def _values(
    model: KuramotoSpec | SphereSpec, sweep: SweepSpec, name: str
) -> tuple[float, ...]:
    if name in sweep.names:
        return sweep.values(name)
    owner = getattr(model, PARAMETERS[name].section, None)
    value = None if owner is None else getattr(owner, name)
    return () if value is None else (value,)


#: Observables of phases only (effective frequencies need winding numbers).
_PHASE_OBSERVABLES = ("frequency", "locked", "Omega_Z")


def _saves_in_window(solve: SolveSpec, window: float) -> int:
    """How many save times (`solve.save_times()`) lie at or after `t1 - window`,
    counted without building the save grid (the same float64 times and cutoff)."""
    import numpy as np

    n, k = solve.num_steps, solve.save_every
    span = solve.t1 - solve.t0
    cutoff = solve.t1 - window - 1e-9 * max(1.0, abs(solve.t1))

    def time(i):
        return solve.t0 + span * np.float64(i) / n

    # The first multiple of k whose time reaches the cutoff (checked around the guess).
    guess = max(0, math.floor((cutoff - solve.t0) / span * n / k) - 1)
    j = guess
    while j * k <= n and time(j * k) < cutoff:
        j += 1
    while j > 0 and time((j - 1) * k) >= cutoff:
        j -= 1
    count = max(0, n // k - j + 1)
    if n % k and time(n) >= cutoff:
        count += 1
    return count


def _parse_observe(
    root: _Table, solve: SolveSpec, sweep: SweepSpec, kind: str
) -> ObserveSpec:
    t = root.table(
        "observe",
        ("order_parameter", "frequency", "locked", "energy", "window", "trajectories",
         "lyapunov", "Omega_Z"),
        required=False,
    )
    span = solve.t1 - solve.t0
    order = t.boolean("order_parameter", default=True)
    frequency = t.boolean("frequency", default=False)
    locked = t.boolean("locked", default=False)
    energy = t.boolean("energy", default=False)
    trajectories = t.boolean("trajectories", default=False)
    lyapunov = t.boolean("lyapunov", default=False)
    omega_z = t.boolean("Omega_Z", default=False)
    if kind == "sphere":
        for key in _PHASE_OBSERVABLES:
            if t.data.get(key):
                t.fail(
                    key,
                    True,
                    'false with kind = "sphere" (effective frequencies are measured '
                    'on phases: kind = "kuramoto")',
                )
    if not (
        order or frequency or locked or energy or trajectories or lyapunov or omega_z
    ):
        raise SpecError(
            "observe.order_parameter = false: expected true (or frequency, Omega_Z, "
            "locked, energy, lyapunov or trajectories = true); nothing would be stored"
        )
    if trajectories and sweep.adiabatic:
        t.fail("trajectories", True, 'false with sweep.mode = "adiabatic"')
    if trajectories and sweep.sizes:
        t.fail(
            "trajectories",
            True,
            "false when sweep.n sweeps the network size (the osc dimension varies)",
        )
    form = f"a duration > 0 and <= solve.t1 - solve.t0 = {span:g}"
    window = t.number("window", default=span / 2, gt=0, expected=form)
    if window > span * (1 + 1e-12):
        t.fail("window", window, form)
    inside = _saves_in_window(solve, window)
    if (order or frequency or locked or energy or omega_z) and inside < 2:
        interval = solve.save_every * span / solve.num_steps
        t.fail(
            "window",
            window,
            f"a duration holding >= 2 saved samples (they are solve.save_every * dt = "
            f"{interval:g} apart)",
        )
    return ObserveSpec(
        window=window,
        order_parameter=order,
        frequency=frequency,
        locked=locked,
        trajectories=trajectories,
        energy=energy,
        lyapunov=lyapunov,
        omega_z=omega_z,
    )


def _parse_output(root: _Table, name: str) -> OutputSpec:
    t = root.table("output", ("path", "chunk_size"), required=False)
    path = t.string("path", default=f"data/runs/{name}.nc")
    if not path.endswith(".nc") or len(path) <= 3:
        t.fail("path", path, 'a file path ending in ".nc"')
    chunk = t.integer(
        "chunk_size",
        default=64,
        ge=1,
        expected="an integer >= 1 (sweep points per chunk)",
    )
    return OutputSpec(path=path, chunk_size=chunk)


def _check_sweep_vs_model(
    sweep: SweepSpec, model: KuramotoSpec | SphereSpec, given: set[str]
):
    swept = set(sweep.names)
    if sweep.sizes and model.n is not None:
        raise SpecError(
            f"model.n = {model.n}: expected no value here, because sweep.n sweeps the "
            "network size (set it in one place)"
        )
    if not sweep.sizes and model.n is None:
        raise SpecError(
            "model.n: missing; expected an integer >= 1 (or sweep it with sweep.n)"
        )
    for name, p in PARAMETERS.items():
        if name not in swept:
            continue
        owner = getattr(model, p.section, None)
        if owner is None:
            raise SpecError(
                f"sweep.{name} = {_show(list(sweep.values(name)))}: expected a "
                f"[model.{p.section}] table as well (sweeping {name} needs a model "
                f"with {p.section}; add the table without {name})"
            )
        if name not in {f.name for f in dataclasses.fields(owner)}:
            kind = getattr(owner, "kind", "uniform")
            raise SpecError(
                f"sweep.{name} = {_show(list(sweep.values(name)))}: expected a "
                f"parameter of [model.{p.section}] kind = \"{kind}\" (" + ", ".join(
                    f.name for f in dataclasses.fields(owner) if f.name in PARAMETERS
                ) + ")"
            )
        if name in given:
            raise SpecError(
                f"{p.key(name)} = {_show(getattr(owner, name))}: expected no value "
                f"here, because sweep.{name} sweeps it (set it in one place)"
            )
    for name, p in PARAMETERS.items():
        owner = getattr(model, p.section, None)
        if model.kind not in p.kinds or owner is None or name in swept:
            continue
        if getattr(owner, name) is None:
            form = "a finite number" + (" >= 0" if p.nonnegative else "")
            raise SpecError(
                f"{p.key(name)}: missing; expected {form} (or sweep it with "
                f"sweep.{name})"
            )
    changes: dict[str, dict] = {}
    for name in swept:
        changes.setdefault(PARAMETERS[name].section, {})[name] = None
    return dataclasses.replace(
        model,
        **{
            section: dataclasses.replace(getattr(model, section), **names)
            for section, names in changes.items()
        },
    )


def parse_spec(text: str, *, limits: lim.Limits | None = None) -> StudySpec:
    """Parse and validate TOML text into a `StudySpec`.

    **Arguments:**

    - `text`: the TOML document.
    - `limits`: a `kuralab._study.limits.Limits` (default: `Limits.from_env()`): the
      largest number of simulations, estimated output and peak memory per chunk a
      spec may ask for. Sizes are checked by arithmetic before anything is built.

    **Returns:** a frozen `StudySpec`.

    **Raises:** `SpecError` (a `ValueError`) with a one-line message naming the key
    path, the value and the expected form.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"invalid TOML: {' '.join(str(e).split())}") from None
    limits = lim.Limits.from_env() if limits is None else limits
    root = _Table(
        "", data, ("study", "model", "sweep", "solve", "observe", "output", "events")
    )
    study = _parse_study(root)
    model, given = _parse_model(root)
    sweep = _parse_sweep(root, model.kind, limits)
    model = _check_sweep_vs_model(sweep, model, given)
    solve = _parse_solve(root, model, sweep)
    observe = _parse_observe(root, solve, sweep, model.kind)
    if observe.lyapunov and model.delayed:
        raise SpecError(
            "observe.lyapunov = true: expected false for a model with delays "
            "([model.delays] or sweep.tau); use kl.lyapunov_spectrum on the delayed "
            "model for its leading exponent"
        )
    output = _parse_output(root, study.name)
    events = parse_events(data, solve, model, sweep, observe)
    spec = StudySpec(
        study=study,
        model=model,
        sweep=sweep,
        solve=solve,
        observe=observe,
        output=output,
        events=events,
    )
    lim.check_sizes(spec, limits)
    return spec


def load_spec(
    path: str | os.PathLike, *, limits: lim.Limits | None = None
) -> StudySpec:
    """Read and validate a study spec file (`studies/*.toml`); `limits` as for
    `parse_spec`.

    **Raises:** `SpecError` for a missing/unreadable file or an invalid spec; the
    message starts with the file name.
    """
    return _read_spec(path, limits)[0]


def _read_spec(path, limits: lim.Limits | None = None) -> tuple[StudySpec, str]:
    """(spec, text) of a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read: {' '.join(str(e).split())}") from None
    try:
        return parse_spec(text, limits=limits), text
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
