"""Study specs as data: TOML text -> a frozen, validated `StudySpec`.

Public through `kuralab.study` (`StudySpec`, `parse_spec`, `load_spec`, `SpecError`);
every key is documented in `studies/README.md`. Each TOML section maps to one frozen
dataclass. A `_Table` wrapper validates one table at a time: unknown keys are rejected
first (with the nearest valid key suggested), then each key is read with its type and
bounds, so every error is one line naming the key path, the value and the expected form.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SpecError(ValueError):
    """A study spec is invalid. The message is one line naming the key path, the value
    and the expected form, e.g. `solve.dt = -0.1: expected a number > 0`."""


# ---------------------------------------------------------------------------------
# The spec: frozen dataclasses, one per section
# ---------------------------------------------------------------------------------

#: Model parameters a `[sweep]` axis may name, and where their fixed value lives.
SWEEPABLE = {
    "K": "model.coupling.K",
    "lag": "model.coupling.lag",
    "D": "model.noise.D",
    "tau": "model.delays.tau",
    "h": "model.stimulus.h",
}

#: The `[model]` sub-table that must be present for a parameter to be swept.
_OWNER = {
    "K": "coupling",
    "lag": "coupling",
    "D": "noise",
    "tau": "delays",
    "h": "stimulus",
}

#: The parameters each model kind has (the `[sweep]` axes it admits).
KIND_PARAMETERS = {
    "kuramoto": ("K", "lag", "D", "tau"),
    "sphere": ("K", "h"),
}

#: Full circle: the default spread of the initial phases.
FULL_CIRCLE = 2 * math.pi


@dataclass(frozen=True)
class StudyInfo:
    """`[study]`: `name` (used for the default output path) and a free `description`."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class FrequencySpec:
    """`[model.frequencies]`: the natural-frequency distribution
    (`kl.sample_frequencies`), or `distribution = "identical"`: every oscillator has
    `omega = loc` (then `scale` and `sampling` are absent, `None`)."""

    distribution: str
    scale: float | None = None
    loc: float = 0.0
    sampling: str | None = "random"

    @property
    def identical(self) -> bool:
        return self.distribution == "identical"


@dataclass(frozen=True)
class MeanFieldSpec:
    """`[model.coupling]` with `kind = "mean_field"`: `kl.MeanField(K)` and the
    Sakaguchi lag (radians). A value is `None` exactly when `[sweep]` sweeps it."""

    K: float | None
    lag: float | None = 0.0
    kind: str = "mean_field"


@dataclass(frozen=True)
class NoiseSpec:
    """`[model.noise]`: additive noise `kl.Noise(D)`, `sqrt(2 D) dW_i`, with the
    Brownian path `brownian` ("increments": fast, for fixed-step sweeps; "tree").
    `D` is `None` exactly when `[sweep]` sweeps it."""

    D: float | None
    brownian: str = "increments"


@dataclass(frozen=True)
class DelaySpec:
    """`[model.delays]`: one transmission delay `tau` (time units) for every sender,
    `kl.Delays(tau)` with a constant history (the initial phases). `None` exactly when
    `[sweep]` sweeps it."""

    tau: float | None


@dataclass(frozen=True)
class InitialPhasesSpec:
    """`[model.initial_phases]`: initial phases i.i.d. uniform on
    `[-spread/2, spread/2)`; the default `spread = 2 pi` is the whole circle."""

    spread: float = FULL_CIRCLE


@dataclass(frozen=True)
class KuramotoSpec:
    """`[model]` with `kind = "kuramoto"`: `n` oscillators,
    `kl.Kuramoto(omega, coupling, lag, delays, noise)` with frequencies and initial
    phases drawn per seed."""

    n: int | None  # None when `sweep.n` sweeps the network size
    frequencies: FrequencySpec
    coupling: MeanFieldSpec
    noise: NoiseSpec | None = None
    delays: DelaySpec | None = None
    initial_phases: InitialPhasesSpec = InitialPhasesSpec()
    kind: str = "kuramoto"

    @property
    def noisy(self) -> bool:
        return self.noise is not None

    @property
    def delayed(self) -> bool:
        return self.delays is not None


@dataclass(frozen=True)
class StimulusSpec:
    """`[model.stimulus]` (sphere models): the AKOrN stimulus `c_i = h e_0`, the same
    field along the first axis for every oscillator. `h` is `None` exactly when
    `[sweep]` sweeps it."""

    h: float | None


@dataclass(frozen=True)
class SphereSpec:
    """`[model]` with `kind = "sphere"`: `n` vector oscillators on `S^(dim - 1)`,
    `kl.SphereKuramoto(kl.BlockOmega(rates), kl.MeanField(K), stimulus)`. Oscillator
    i rotates at its natural frequency `omega_i` (drawn per seed as for the phase
    model) in the plane `(x_0, x_1)` (`rotation = "first_plane"`) or in every plane
    `(x_2k, x_2k+1)` (`"all_planes"`); `dim = 2` is the phase model with
    `theta = atan2(x_1, x_0)`. Initial states are uniform on the sphere per seed. The
    coupling has no lag (`coupling.lag` is always 0)."""

    n: int | None  # None when `sweep.n` sweeps the network size
    dim: int
    frequencies: FrequencySpec
    coupling: MeanFieldSpec
    stimulus: StimulusSpec | None = None
    rotation: str = "all_planes"
    kind: str = "sphere"

    @property
    def noisy(self) -> bool:
        return False

    @property
    def delayed(self) -> bool:
        return False

    @property
    def planes(self) -> tuple[float, ...]:
        """Which rotation planes `(x_2k, x_2k+1)` turn at `omega_i` (1) or not (0)."""
        k = self.dim // 2
        return (
            (1.0,) * k if self.rotation == "all_planes" else (1.0,) + (0.0,) * (k - 1)
        )


@dataclass(frozen=True)
class SweepSpec:
    """`[sweep]`: named parameter axes (product grid, in file order), the seeds, and
    optionally network sizes `n` (always the outermost dimension: each size is its own
    compilation).

    `mode = "adiabatic"` turns the `along` axis into a quasi-static parameter curve:
    each value starts from the final state of the previous one, up the listed values
    and then back down (dimension `direction`), to expose hysteresis."""

    axes: tuple[tuple[str, tuple[float, ...]], ...] = ()
    seeds: tuple[int, ...] = (0,)
    sizes: tuple[int, ...] = ()
    mode: str = "independent"
    along: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def adiabatic(self) -> bool:
        return self.mode == "adiabatic"

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape: the sizes (if swept), one entry per axis, then the seeds."""
        sizes = (len(self.sizes),) if self.sizes else ()
        return sizes + tuple(len(v) for _, v in self.axes) + (len(self.seeds),)

    @property
    def num_points(self) -> int:
        """Number of simulations (an adiabatic ramp runs each value up and down)."""
        return math.prod(self.shape) * (2 if self.adiabatic else 1)

    def values(self, name: str) -> tuple[float, ...]:
        return dict(self.axes)[name]


@dataclass(frozen=True)
class SolveSpec:
    """`[solve]`: time span, fixed step, solver name, R(t) save stride (steps)."""

    t1: float
    dt: float
    t0: float = 0.0
    solver: str = "rk4"
    save_every: int = 1

    @property
    def num_steps(self) -> int:
        """Number of fixed steps, as `kl.simulate` counts them."""
        return _num_steps(self.t0, self.t1, self.dt)

    def save_times(self):
        """The times at which R(t) is saved (float64 numpy array)."""
        import numpy as np

        n, k = self.num_steps, self.save_every
        idx = list(range(0, n + 1, k))
        if n % k:
            idx.append(n)
        return self.t0 + (self.t1 - self.t0) * np.asarray(idx, dtype=np.float64) / n


@dataclass(frozen=True)
class ObserveSpec:
    """`[observe]`: what to store. `window` is the duration at the end of the run over
    which R (and the energy) is time-averaged and effective frequencies are measured
    (`frequency`); `locked` stores the fraction of oscillators whose effective
    frequency is within 2 pi / window of the mean field's rotation rate; `energy` the
    model energy `kl.energy` over time."""

    window: float
    order_parameter: bool = True
    frequency: bool = False
    locked: bool = False
    trajectories: bool = False
    energy: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """`[output]`: the netCDF path and the number of sweep points per vmapped chunk."""

    path: str
    chunk_size: int = 64


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec. Build it with `load_spec` or `parse_spec`.

    **Attributes:** `study`, `model`, `sweep`, `solve`, `observe`, `output`: one frozen
    dataclass per TOML section. `spec.num_points` is the number of simulations.
    """

    study: StudyInfo
    model: KuramotoSpec | SphereSpec
    sweep: SweepSpec
    solve: SolveSpec
    observe: ObserveSpec
    output: OutputSpec

    @property
    def num_points(self) -> int:
        return self.sweep.num_points

    def fixed(self, name: str) -> float:
        """The value of a sweepable parameter that is not swept (0 for a parameter the
        model does not have: the noise `D`, delay `tau` or stimulus `h` of a model
        without noise, delays or stimulus)."""
        owner = getattr(self.model, _OWNER[name], None)
        return 0.0 if owner is None else getattr(owner, name)

    def axis_values(self, name: str) -> tuple[float, ...]:
        """All values a sweepable parameter takes: its sweep axis, or its fixed value."""
        if name in self.sweep.names:
            return self.sweep.values(name)
        return (self.fixed(name),)

    def to_toml(self) -> str:
        """The spec as canonical TOML text; `parse_spec(spec.to_toml()) == spec`."""
        return _to_toml(self)


# ---------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as it would appear in TOML, shortened for one-line messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, options: Iterable[str]) -> str:
    """A '; did you mean X?' hint, or '' if nothing is close (case-insensitive)."""
    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[match[0]]!r}?" if match else ""


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_MISSING = object()


class _Table:
    """A TOML table being validated. Unknown keys are rejected on construction, so a
    typo is reported as such rather than as a missing key."""

    def __init__(self, path: str, data: Any, allowed: Iterable[str]):
        if not isinstance(data, dict):
            raise SpecError(f"{path} = {_show(data)}: expected a table")
        self.path = path
        self.data = data
        allowed = list(allowed)
        for key, value in data.items():
            if key not in allowed:
                hint = _suggest(key, allowed)
                raise SpecError(
                    f"{self.key(key)} = {_show(value)}: unknown key{hint} "
                    f"(valid keys: {', '.join(allowed)})"
                )

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, expected: str, default=_MISSING):
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise SpecError(f"{self.key(key)}: missing; expected {expected}")
        return default

    def fail(self, key: str, value, expected: str):
        raise SpecError(f"{self.key(key)} = {_show(value)}: expected {expected}")

    def number(
        self, key, *, default=_MISSING, gt=None, ge=None, expected=None
    ) -> float:
        bounds = (f" > {gt:g}" if gt is not None else "") + (
            f" >= {ge:g}" if ge is not None else ""
        )
        expected = expected or f"a finite number{bounds}"
        value = self.get(key, expected, default)
        if value is None:
            return None
        if not _is_number(value) or not math.isfinite(value):
            self.fail(key, value, expected)
        if (gt is not None and not value > gt) or (ge is not None and not value >= ge):
            self.fail(key, value, expected)
        return float(value)

    def integer(self, key, *, default=_MISSING, ge=None, expected=None) -> int:
        expected = expected or "an integer" + (f" >= {ge}" if ge is not None else "")
        value = self.get(key, expected, default)
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, value, expected)
        if ge is not None and value < ge:
            self.fail(key, value, expected)
        return value

    def string(self, key, *, default=_MISSING, choices=None, expected=None) -> str:
        if expected is None:
            expected = (
                "one of " + ", ".join(f'"{c}"' for c in choices)
                if choices is not None
                else "a string"
            )
        value = self.get(key, expected, default)
        if not isinstance(value, str):
            self.fail(key, value, expected)
        if choices is not None and value not in choices:
            raise SpecError(
                f"{self.key(key)} = {_show(value)}: expected {expected}"
                f"{_suggest(value, choices)}"
            )
        return value

    def boolean(self, key, *, default=_MISSING) -> bool:
        value = self.get(key, "true or false", default)
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value

    def table(self, key, allowed, *, required=True, what="") -> _Table:
        if key not in self.data:
            if required:
                raise SpecError(
                    f"{self.key(key)}: missing section; expected a [{self.key(key)}] "
                    f"table{what}"
                )
            return _Table(self.key(key), {}, allowed)
        return _Table(self.key(key), self.data[key], allowed)


#: Solvers only for sphere models (AKOrN's projected Euler step).
_SPHERE_ONLY_SOLVERS = ("akorn",)


def _solver_names(
    noisy: bool = False, delayed: bool = False, kind: str = "kuramoto"
) -> list[str]:
    """The solvers a model admits, in a stable order (sorted; for delays the
    integrator's own order)."""
    from ._integrate import DELAY_SOLVERS, SDDE_SOLVERS, SDE_SOLVERS, SOLVERS

    if delayed:
        return list(SDDE_SOLVERS if noisy else DELAY_SOLVERS)
    names = sorted(SDE_SOLVERS if noisy else SOLVERS)
    if kind != "sphere":
        names = [name for name in names if name not in _SPHERE_ONLY_SOLVERS]
    return names


def _distribution_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from ._sampling import DISTRIBUTIONS, SAMPLING

    return tuple(DISTRIBUTIONS), tuple(SAMPLING)


def _num_steps(t0: float, t1: float, dt: float) -> int:
    from ._integrate import _num_steps as count

    return count(t0, t1, dt)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MODEL_KINDS = ("kuramoto", "sphere")
_COUPLING_KINDS = ("mean_field",)
_IDENTICAL = "identical"
_BROWNIAN = ("increments", "tree")
_AXIS_FORM = (
    "a non-empty list of distinct finite numbers or a range table "
    "{start = ..., stop = ..., num = ...}"
)
_MODES = ("independent", "adiabatic")
_SIZES_FORM = "a non-empty list of distinct integers >= 1 (network sizes)"
_SEED_FORM = (
    "an integer >= 1 (a number of seeds 0, 1, ...) or a non-empty list of distinct "
    "integers in [0, 2**31)"
)
#: Sweep axes whose values must be >= 0, and what they are.
_NONNEGATIVE = {"D": "noise diffusion coefficients", "tau": "delays in time units"}


def _parse_study(root: _Table) -> StudyInfo:
    t = root.table("study", ("name", "description"), what=' with name = "..."')
    name = t.string(
        "name", expected="a non-empty name of letters, digits, '_', '-', '.'"
    )
    if not _NAME.match(name):
        t.fail("name", name, "a non-empty name of letters, digits, '_', '-', '.'")
    return StudyInfo(name=name, description=t.string("description", default=""))


def _parse_frequencies(t: _Table) -> FrequencySpec:
    distributions, samplings = _distribution_names()
    f = t.table(
        "frequencies",
        ("distribution", "loc", "scale", "sampling"),
        what=' with distribution and scale (or distribution = "identical" and loc)',
    )
    distribution = f.string("distribution", choices=(*distributions, _IDENTICAL))
    if distribution == _IDENTICAL:
        for key in ("scale", "sampling"):
            if key in f.data:
                f.fail(
                    key,
                    f.data[key],
                    f'no {key} with distribution = "identical" (every oscillator '
                    "has omega = loc)",
                )
        return FrequencySpec(
            distribution=_IDENTICAL,
            scale=None,
            loc=f.number("loc", default=0.0),
            sampling=None,
        )
    return FrequencySpec(
        distribution=distribution,
        scale=f.number("scale", gt=0),
        loc=f.number("loc", default=0.0),
        sampling=f.string("sampling", default="random", choices=samplings),
    )


#: The keys of `[model]` for each kind.
_MODEL_KEYS = {
    "kuramoto": (
        "kind",
        "n",
        "frequencies",
        "coupling",
        "noise",
        "delays",
        "initial_phases",
    ),
    "sphere": ("kind", "n", "dim", "rotation", "frequencies", "coupling", "stimulus"),
}
_ROTATIONS = ("all_planes", "first_plane")
_DIM_FORM = "an integer >= 2 (the vector dimension: states on the sphere S^(dim-1))"


def _other_kind_key(raw: dict, kind: str) -> None:
    """Reject a `[model]` key that belongs to another model kind, saying so (other
    unknown keys are left to `_Table`, which suggests the nearest valid key)."""
    for key, value in raw.items():
        owners = [k for k, keys in _MODEL_KEYS.items() if key in keys]
        if owners and key not in _MODEL_KEYS[kind]:
            raise SpecError(
                f"model.{key} = {_show(value)}: expected no {key} with kind = "
                f'"{kind}" (it is a key of kind = "{owners[0]}")'
            )


def _parse_coupling(t: _Table, kind: str) -> tuple[MeanFieldSpec, set[str]]:
    c = t.table("coupling", ("kind", "K", "lag"), what=' with kind = "mean_field"')
    c.string("kind", choices=_COUPLING_KINDS)
    if kind == "sphere" and "lag" in c.data:
        c.fail(
            "lag",
            c.data["lag"],
            'no lag with kind = "sphere" (the Sakaguchi phase lag is a parameter of '
            'kind = "kuramoto")',
        )
    given = {key for key in ("K", "lag") if key in c.data}
    coupling = MeanFieldSpec(
        K=c.number("K", default=None), lag=c.number("lag", default=0.0)
    )
    return coupling, given


def _parse_model(root: _Table) -> tuple[KuramotoSpec | SphereSpec, set[str]]:
    """Returns the model and the set of sweepable parameters given explicitly."""
    kinds = " or ".join(f'"{k}"' for k in _MODEL_KINDS)
    if "model" not in root.data:
        raise SpecError(
            f"model: missing section; expected a [model] table with kind = {kinds}"
        )
    raw = root.data["model"]
    if not isinstance(raw, dict):
        root.fail("model", raw, "a table")
    # The kind is the discriminator: it decides which other keys are valid.
    discriminator = {key: raw[key] for key in ("kind",) if key in raw}
    kind = _Table("model", discriminator, ("kind",)).string(
        "kind", choices=_MODEL_KINDS
    )
    _other_kind_key(raw, kind)
    t = _Table("model", raw, _MODEL_KEYS[kind])
    n = t.integer("n", default=None, ge=1)
    freq = _parse_frequencies(t)
    coupling, given = _parse_coupling(t, kind)
    if kind == "sphere":
        return _parse_sphere(t, n, freq, coupling, given)
    noise = None
    if "noise" in t.data:
        z = t.table("noise", ("D", "brownian"))
        given |= {"D"} & set(z.data)
        noise = NoiseSpec(
            D=z.number(
                "D",
                default=None,
                ge=0,
                expected="a finite number >= 0 (the diffusion coefficient)",
            ),
            brownian=z.string("brownian", default="increments", choices=_BROWNIAN),
        )
    delays = None
    if "delays" in t.data:
        d = t.table("delays", ("tau",))
        given |= {"tau"} & set(d.data)
        delays = DelaySpec(
            tau=d.number(
                "tau",
                default=None,
                ge=0,
                expected="a finite number >= 0 (a delay in time units)",
            )
        )
    p = t.table("initial_phases", ("spread",), required=False)
    form = "a number > 0 and <= 2 pi (phases uniform on [-spread/2, spread/2))"
    spread = p.number("spread", default=FULL_CIRCLE, gt=0, expected=form)
    if spread > FULL_CIRCLE * (1 + 1e-12):
        p.fail("spread", spread, form)
    model = KuramotoSpec(
        n=n,
        frequencies=freq,
        coupling=coupling,
        noise=noise,
        delays=delays,
        initial_phases=InitialPhasesSpec(spread=min(spread, FULL_CIRCLE)),
    )
    return model, given


def _parse_sphere(t: _Table, n, freq, coupling, given) -> tuple[SphereSpec, set[str]]:
    dim = t.integer("dim", expected=_DIM_FORM)
    if dim < 2:
        t.fail("dim", dim, _DIM_FORM)
    rotation = t.string("rotation", default="all_planes", choices=_ROTATIONS)
    stimulus = None
    if "stimulus" in t.data:
        s = t.table("stimulus", ("h",))
        given |= {"h"} & set(s.data)
        stimulus = StimulusSpec(
            h=s.number(
                "h",
                default=None,
                expected="a finite number (the stimulus strength along x_0)",
            )
        )
    model = SphereSpec(
        n=n,
        dim=dim,
        frequencies=freq,
        coupling=coupling,
        stimulus=stimulus,
        rotation=rotation,
    )
    return model, given


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
    if name in _NONNEGATIVE and min(values) < 0:
        raise SpecError(
            f"{path} = {_show(raw)}: expected values >= 0 ({_NONNEGATIVE[name]}); "
            f"got {min(values):g}"
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
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in raw
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


def _parse_sweep(root: _Table, kind: str) -> SweepSpec:
    own = KIND_PARAMETERS[kind]
    raw = root.data.get("sweep", {})
    for name, value in raw.items() if isinstance(raw, dict) else ():
        if name in SWEEPABLE and name not in own:
            other = next(k for k, p in KIND_PARAMETERS.items() if name in p)
            raise SpecError(
                f"sweep.{name} = {_show(value)}: expected a parameter of kind = "
                f'"{kind}" ({", ".join(own)}); {name} belongs to kind = "{other}"'
            )
    t = root.table("sweep", (*own, "n", "seeds", "mode", "along"), required=False)
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
    if dt > t1 - t0:
        t.fail("dt", dt, f"a number > 0 and <= t1 - t0 = {t1 - t0:g}")
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
    if delayed:
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
    owner = getattr(model, _OWNER[name], None)
    value = None if owner is None else getattr(owner, name)
    return () if value is None else (value,)


#: Observables of phases only (effective frequencies need winding numbers).
_PHASE_OBSERVABLES = ("frequency", "locked")


def _parse_observe(
    root: _Table, solve: SolveSpec, sweep: SweepSpec, kind: str
) -> ObserveSpec:
    t = root.table(
        "observe",
        ("order_parameter", "frequency", "locked", "energy", "window", "trajectories"),
        required=False,
    )
    span = solve.t1 - solve.t0
    order = t.boolean("order_parameter", default=True)
    frequency = t.boolean("frequency", default=False)
    locked = t.boolean("locked", default=False)
    energy = t.boolean("energy", default=False)
    trajectories = t.boolean("trajectories", default=False)
    if kind == "sphere":
        for key in _PHASE_OBSERVABLES:
            if t.data.get(key):
                t.fail(
                    key,
                    True,
                    'false with kind = "sphere" (effective frequencies are measured '
                    'on phases: kind = "kuramoto")',
                )
    if not (order or frequency or locked or energy or trajectories):
        raise SpecError(
            "observe.order_parameter = false: expected true (or frequency, locked, "
            "energy or trajectories = true); nothing would be stored"
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
    times = solve.save_times()
    inside = int((times >= solve.t1 - window - 1e-9 * max(1.0, abs(solve.t1))).sum())
    if (order or frequency or locked or energy) and inside < 2:
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
    for name in SWEEPABLE:
        if name not in swept:
            continue
        owner = getattr(model, _OWNER[name], None)
        if owner is None:
            raise SpecError(
                f"sweep.{name} = {_show(list(sweep.values(name)))}: expected a "
                f"[model.{_OWNER[name]}] table as well (sweeping {name} needs a model "
                f"with {_OWNER[name]}; add the table without {name})"
            )
        if name in given:
            raise SpecError(
                f"{SWEEPABLE[name]} = {_show(getattr(owner, name))}: expected no value "
                f"here, because sweep.{name} sweeps it (set it in one place)"
            )
    if "K" not in swept and model.coupling.K is None:
        raise SpecError(
            "model.coupling.K: missing; expected a finite number (or sweep it with "
            "sweep.K)"
        )
    if model.noisy and "D" not in swept and model.noise.D is None:
        raise SpecError(
            "model.noise.D: missing; expected a finite number >= 0 (or sweep it with "
            "sweep.D)"
        )
    if model.delayed and "tau" not in swept and model.delays.tau is None:
        raise SpecError(
            "model.delays.tau: missing; expected a finite number >= 0 (or sweep it "
            "with sweep.tau)"
        )
    stimulus = getattr(model, "stimulus", None)
    if stimulus is not None and "h" not in swept and stimulus.h is None:
        raise SpecError(
            "model.stimulus.h: missing; expected a finite number (or sweep it with "
            "sweep.h)"
        )
    changes = {}
    for owner_name in ("coupling", "noise", "delays", "stimulus"):
        names = {n: None for n in swept if _OWNER[n] == owner_name}
        if names:
            changes[owner_name] = dataclasses.replace(
                getattr(model, owner_name), **names
            )
    return dataclasses.replace(model, **changes)


def parse_spec(text: str) -> StudySpec:
    """Parse and validate TOML text into a `StudySpec`.

    **Arguments:**

    - `text`: the TOML document.

    **Returns:** a frozen `StudySpec`.

    **Raises:** `SpecError` (a `ValueError`) with a one-line message naming the key
    path, the value and the expected form.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"invalid TOML: {' '.join(str(e).split())}") from None
    root = _Table("", data, ("study", "model", "sweep", "solve", "observe", "output"))
    study = _parse_study(root)
    model, given = _parse_model(root)
    sweep = _parse_sweep(root, model.kind)
    model = _check_sweep_vs_model(sweep, model, given)
    solve = _parse_solve(root, model, sweep)
    observe = _parse_observe(root, solve, sweep, model.kind)
    output = _parse_output(root, study.name)
    return StudySpec(
        study=study,
        model=model,
        sweep=sweep,
        solve=solve,
        observe=observe,
        output=output,
    )


def load_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study spec file (`studies/*.toml`).

    **Raises:** `SpecError` for a missing/unreadable file or an invalid spec; the
    message starts with the file name.
    """
    return _read_spec(path)[0]


def _read_spec(path) -> tuple[StudySpec, str]:
    """(spec, text) of a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read: {' '.join(str(e).split())}") from None
    try:
        return parse_spec(text), text
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


# ---------------------------------------------------------------------------------
# TOML output
# ---------------------------------------------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return (
            '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        )
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_table(header: str, items: Iterable[tuple[str, Any]]) -> str:
    lines = [f"[{header}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in items if v is not None]
    return "\n".join(lines) + "\n"


def _model_toml(m: KuramotoSpec | SphereSpec) -> list[str]:
    c, f = m.coupling, m.frequencies
    if isinstance(m, SphereSpec):
        return [
            _toml_table(
                "model",
                [
                    ("kind", m.kind),
                    ("n", m.n),
                    ("dim", m.dim),
                    ("rotation", m.rotation),
                ],
            ),
            _toml_table("model.frequencies", dataclasses.asdict(f).items()),
            _toml_table("model.coupling", [("kind", c.kind), ("K", c.K)]),
            *(
                [_toml_table("model.stimulus", [("h", m.stimulus.h)])]
                if m.stimulus is not None
                else []
            ),
        ]
    return [
        _toml_table("model", [("kind", m.kind), ("n", m.n)]),
        _toml_table("model.frequencies", dataclasses.asdict(f).items()),
        _toml_table("model.coupling", [("kind", c.kind), ("K", c.K), ("lag", c.lag)]),
        *(
            [_toml_table("model.noise", dataclasses.asdict(m.noise).items())]
            if m.noise is not None
            else []
        ),
        *(
            [_toml_table("model.delays", dataclasses.asdict(m.delays).items())]
            if m.delays is not None
            else []
        ),
        *(
            [_toml_table("model.initial_phases", [("spread", m.initial_phases.spread)])]
            if m.initial_phases.spread != FULL_CIRCLE
            else []
        ),
    ]


def _to_toml(spec: StudySpec) -> str:
    # `energy` is written only when on: the canonical text (and so the chunk store's
    # spec hash) of a spec without it is what it was before the key existed.
    observe = [
        (k, v)
        for k, v in dataclasses.asdict(spec.observe).items()
        if k != "energy" or v
    ]
    parts = [
        _toml_table(
            "study",
            [("name", spec.study.name), ("description", spec.study.description)],
        ),
        *_model_toml(spec.model),
        _toml_table(
            "sweep",
            [
                *([("n", spec.sweep.sizes)] if spec.sweep.sizes else []),
                *spec.sweep.axes,
                ("seeds", spec.sweep.seeds),
                *(
                    [("mode", spec.sweep.mode), ("along", spec.sweep.along)]
                    if spec.sweep.adiabatic
                    else []
                ),
            ],
        ),
        _toml_table("solve", dataclasses.asdict(spec.solve).items()),
        _toml_table("observe", observe),
        _toml_table("output", dataclasses.asdict(spec.output).items()),
    ]
    return "\n".join(parts)
