"""Adapters for the peer libraries (optional: `pip install -e ".[bench]"`).

Each adapter builds the workload in the peer's own terms, does its one-off work (symbolic
generation + gcc for jitc*de; timed as `compile_s`) and returns a dict:

- `run(i)`: one timed run, returning the final phases (or what the check needs);
- `compile_s`: build/compile time, if any;
- `repeats`: how many runs (1 for the slowest peers);
- `note`: settings and caveats.

A missing package raises `Skipped` with the install hint; the harness records it and goes on.
Semantics traps handled here are those of peers.md: `kuramoto` divides the coupling by the
in-degree and is column-receives; jitc*de need `chunk_size=0` with helpers and a raised
recursion limit for many helpers.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from _common import Skipped

HINT = 'install the optional peers with `pip install -e ".[bench]"`'


def _need(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Skipped(f"{name} not installed ({HINT})") from None


def version(name: str) -> str:
    try:
        import importlib.metadata as md

        return md.version(name)
    except Exception:
        return "?"


# ---------------------------------------------------------------------------------
# kuramoto (numpy + scipy.odeint/LSODA; N x N meshgrid per RHS call)
# ---------------------------------------------------------------------------------


def kuramoto_dense(omega, K, th0, steps: int, dt: float):
    km = _need("kuramoto")
    T = steps * dt
    # kuramoto: dx_b = w_b + c/M_b sum_a A_ab sin(x_a - x_b), M_b = nonzeros in column b.
    # Ours: row i receives, no normalisation: A = K^T scaled by M.
    M = (K.T != 0).sum(axis=0)
    adj = K.T * M[None, :]
    model = km.Kuramoto(coupling=1.0, dt=dt, T=T, natfreqs=np.asarray(omega, np.float64))

    def run(i):
        return model.run(adj_mat=adj, angles_vec=np.asarray(th0, np.float64).copy())[:, -1]

    return dict(
        run=run,
        repeats=1,
        note=f"kuramoto {version('kuramoto')}: LSODA rtol 1.5e-8; adj = K^T x in-degree; n=1",
    )


def kuramoto_meanfield_sweep(omega, Ks, th0, steps: int, dt: float):
    km = _need("kuramoto")
    T = steps * dt
    N = len(omega)
    adj = np.ones((N, N))

    def run(i):
        out = []
        for Kv in Ks:
            model = km.Kuramoto(coupling=float(Kv), dt=dt, T=T, natfreqs=np.asarray(omega, np.float64))
            out.append(model.run(adj_mat=adj, angles_vec=np.asarray(th0, np.float64).copy())[:, -1])
        return np.stack(out)

    return dict(run=run, repeats=1, note=f"{len(Ks)} K values; n=1")


# ---------------------------------------------------------------------------------
# jitcode / jitcsde / jitcdde (symbolic RHS -> C -> gcc)
# ---------------------------------------------------------------------------------


def _meanfield_symbols(N: int, omega, K, y, delayed=None):
    """Mean-field Kuramoto RHS with two helpers Sx = sum cos, Sy = sum sin."""
    se = _need("symengine")
    Sx, Sy = se.Symbol("Sx"), se.Symbol("Sy")
    src = (lambda j: y(j)) if delayed is None else delayed
    helpers = [
        (Sx, se.Add(*[se.cos(src(j)) for j in range(N)])),
        (Sy, se.Add(*[se.sin(src(j)) for j in range(N)])),
    ]
    f = [
        float(omega[i]) + K / N * (se.cos(y(i)) * Sy - se.sin(y(i)) * Sx)
        for i in range(N)
    ]
    return f, helpers


class _quiet:
    """Silence the jitc*de chatter (they print to stdout/stderr, also from gcc) and run
    in a scratch directory: their setuptools build would otherwise read the repository's
    own pyproject.toml and refuse the flat layout."""

    def __enter__(self):
        self._cwd = os.getcwd()
        self._scratch = tempfile.mkdtemp(prefix="kuralab-bench-jitc-")
        os.chdir(self._scratch)
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = os.dup(1), os.dup(2)
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 1)
        os.dup2(self._null, 2)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in (*self._saved, self._null):
            os.close(fd)
        os.chdir(self._cwd)
        shutil.rmtree(self._scratch, ignore_errors=True)
        return False


def jitcode_meanfield_sweep(omega, Ks, th0, steps: int, dt: float):
    jc = _need("jitcode")
    se = _need("symengine")
    N = len(omega)
    T = steps * dt
    Kp = se.Symbol("K")
    t0 = time.perf_counter()
    with _quiet():
        f, helpers = _meanfield_symbols(N, omega, Kp, jc.y)
        ode = jc.jitcode(f, helpers=helpers, control_pars=[Kp], verbose=False,
                         module_location=None)
        ode.generate_f_C(simplify=False, do_cse=False, chunk_size=0)
        ode.compile_C(verbose=False)
        ode.set_integrator("dopri5", atol=1e-8, rtol=1e-8, nsteps=10**7)
    compile_s = time.perf_counter() - t0

    def run(i):
        out = []
        for Kv in Ks:
            ode.set_parameters(float(Kv))
            ode.set_initial_value(np.asarray(th0, np.float64), 0.0)
            out.append(np.asarray(ode.integrate(T)))
        return np.stack(out)

    return dict(
        run=run,
        compile_s=compile_s,
        repeats=None,
        note=f"jitcode {version('jitcode')}: control_pars=[K], dopri5 atol=rtol=1e-8, loop over K",
    )


def jitcsde_meanfield(omega, K: float, D: float, N: int, steps: int, dt: float, th0):
    js = _need("jitcsde")
    T = steps * dt
    t0 = time.perf_counter()
    with _quiet():
        f, helpers = _meanfield_symbols(N, omega, K, js.y)
        g = [math.sqrt(2 * D)] * N
        sde = js.jitcsde(f, g, helpers=helpers, additive=True, ito=True, verbose=False)
        sde.compile_C(simplify=False, do_cse=False, chunk_size=0, verbose=False)
    compile_s = time.perf_counter() - t0

    def run(i):
        with _quiet():
            sde.set_seed(1000 + i)
            sde.set_initial_value(np.asarray(th0, np.float64), 0.0)
            return np.asarray(sde.integrate(T))

    return dict(
        run=run,
        compile_s=compile_s,
        repeats=None,
        note=f"jitcsde {version('jitcsde')}: adaptive SRA (defaults), one sample at T",
    )


def jitcdde_meanfield(omega, K: float, tau: float, N: int, steps: int, dt: float, th0,
                      tolerances, error_of, target: float):
    """jitcdde at the loosest (atol, rtol) in `tolerances` whose error (measured by
    `error_of(final)`) is within the target; returns the adapter for that setting plus the
    errors tried (in `note`)."""
    jd = _need("jitcdde")
    T = steps * dt
    t0 = time.perf_counter()
    with _quiet():
        f, helpers = _meanfield_symbols(N, omega, K, jd.y, delayed=lambda j: jd.y(j, jd.t - tau))
        dde = jd.jitcdde(f, helpers=helpers, max_delay=tau, verbose=False)
        dde.compile_C(simplify=False, do_cse=False, chunk_size=0, verbose=False)
    compile_s = time.perf_counter() - t0

    def integrate(atol, rtol):
        with _quiet():
            dde.purge_past()
            dde.constant_past(np.asarray(th0, np.float64), time=0.0)
            dde.set_integration_parameters(atol=atol, rtol=rtol, first_step=dt)
            dde.step_on_discontinuities()
            return np.asarray(dde.integrate(T))

    tried = []
    chosen = None
    for atol, rtol in tolerances:
        err = error_of(integrate(atol, rtol))
        tried.append(f"rtol {rtol:g}: err {err:.1e}")
        if err <= target:
            chosen = (atol, rtol)
            break
    if chosen is None:
        raise Skipped(f"jitcdde never reached the error target: {'; '.join(tried)}")

    return dict(
        run=lambda i: integrate(*chosen),
        compile_s=compile_s,
        repeats=None,
        note=(
            f"jitcdde {version('jitcdde')}: adaptive Bogacki-Shampine, "
            f"atol {chosen[0]:g} rtol {chosen[1]:g} (loosest tried with err <= "
            f"{target:g}; tried {'; '.join(tried)}); step_on_discontinuities"
        ),
    )

