"""Parsing the `[study]` and `[model]` sections (model kinds "kuramoto" and "sphere")."""

from __future__ import annotations

import re

from ._table import _show, _Table
from .spec import (
    FULL_CIRCLE,
    MODEL_KINDS,
    EDGE_DISTANCES,
    DelaySpec,
    EdgeDelaySpec,
    FrequencySpec,
    InitialPhasesSpec,
    KuramotoSpec,
    MeanFieldSpec,
    NoiseSpec,
    SpecError,
    SphereSpec,
    StimulusSpec,
    StudyInfo,
)


def _distribution_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from .._sampling import DISTRIBUTIONS, SAMPLING

    return tuple(DISTRIBUTIONS), tuple(SAMPLING)


#: int32 indices (XLA): the most oscillators a model may have.
_MAX_OSC = 2**31 - 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MODEL_KINDS = MODEL_KINDS
_COUPLING_KINDS = ("mean_field", "dense", "sparse", "lattice")
_IDENTICAL = "identical"
_BROWNIAN = ("increments", "tree")


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


def _parse_coupling(t: _Table, kind: str, n) -> tuple[MeanFieldSpec, set[str]]:
    from . import network

    raw = t.data.get("coupling")
    ckind = None
    if isinstance(raw, dict) and raw.get("kind") in network.KINDS:
        ckind = raw["kind"]
    extra = network.KEYS.get(ckind, ())
    c = t.table("coupling", ("kind", "K", "lag", *extra), what=' with kind = "mean_field"')
    # sphere models take the phase-model couplings as J_ij = K_ij I; a lattice kernel
    # acts on a grid of scalar phases only
    choices = _COUPLING_KINDS if kind == "kuramoto" else ("mean_field", "dense", "sparse")
    c.string("kind", choices=choices)
    if kind == "sphere" and "lag" in c.data:
        c.fail(
            "lag",
            c.data["lag"],
            'no lag with kind = "sphere" (the Sakaguchi phase lag is a parameter of '
            'kind = "kuramoto")',
        )
    given = {key for key in ("K", "lag") if key in c.data}
    structure = network.parse_network(c, ckind, n) if ckind else None
    coupling = MeanFieldSpec(
        K=c.number("K", default=None),
        lag=c.number("lag", default=0.0),
        kind=ckind or "mean_field",
        network=structure,
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
    if n is not None and n > _MAX_OSC:
        t.fail("n", n, f"an integer in [1, {_MAX_OSC}] (int32 oscillator indices)")
    freq = _parse_frequencies(t)
    coupling, given = _parse_coupling(t, kind, n)
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
    delays = _parse_delays(t, given) if "delays" in t.data else None
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


_DELAY_KINDS = ("uniform", "edges")


def _parse_delays(t: _Table, given: set[str]) -> DelaySpec | EdgeDelaySpec:
    """`[model.delays]`: `kind = "uniform"` (default; one `tau`) or `kind = "edges"`
    (per-edge delays distance / `speed` on a circle of `radius`)."""
    raw = t.data["delays"]
    head = {"kind": raw["kind"]} if isinstance(raw, dict) and "kind" in raw else {}
    kind = _Table("model.delays", head, ("kind",)).string(
        "kind", default="uniform", choices=_DELAY_KINDS
    )
    if kind == "uniform":
        d = t.table("delays", ("kind", "tau"))
        given |= {"tau"} & set(d.data)
        return DelaySpec(
            tau=d.number(
                "tau",
                default=None,
                ge=0,
                expected="a finite number >= 0 (a delay in time units)",
            )
        )
    d = t.table("delays", ("kind", "speed", "radius", "distance"))
    given |= {"speed"} & set(d.data)
    return EdgeDelaySpec(
        speed=d.number(
            "speed",
            default=None,
            gt=0,
            expected="a finite number > 0 (conduction speed, length per time unit)",
        ),
        radius=d.number(
            "radius", default=1.0, gt=0, expected="a finite number > 0 (length units)"
        ),
        distance=d.string("distance", default="arc", choices=EDGE_DISTANCES),
    )


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
