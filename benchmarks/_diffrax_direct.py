"""diffrax written directly: the peers.md baseline kuralab is compared with.

A custom classical RK4 tableau (diffrax ships none), two matvecs (or two means) per vector
field evaluation, `ConstantStepSize`, `SaveAt(t1=True)`; Euler--Maruyama through
`UnsafeBrownianPath` + `ForwardMode` (the fast fixed-step path). Parameters are traced
arguments, so one compilation serves every call.
"""

from __future__ import annotations

import diffrax as dfx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np


class RK4(dfx.AbstractERK):
    tableau = dfx.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls = dfx.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def dense_vf(t, y, args):
    omega, K = args
    s, c = jnp.sin(y), jnp.cos(y)
    return omega + c * (K @ s) - s * (K @ c)


def meanfield_vf(t, y, args):
    omega, K = args
    s, c = jnp.sin(y), jnp.cos(y)
    return omega + K * (c * jnp.mean(s) - s * jnp.mean(c))


def _solve(vf, steps: int, dt: float, y0, args, solver=None):
    t1 = steps * dt
    sol = dfx.diffeqsolve(
        dfx.ODETerm(vf),
        RK4() if solver is None else solver,
        0.0,
        t1,
        dt,
        y0,
        args=args,
        saveat=dfx.SaveAt(t1=True),
        stepsize_controller=dfx.ConstantStepSize(),
        max_steps=steps + 8,
    )
    return sol.ys[0], sol.stats["num_steps"]


def rk4_solver(kind: str, steps: int, dt: float):
    """jit(fn(omega, K, y0) -> (final, num_steps)) for kind 'dense' or 'meanfield'."""
    vf = dense_vf if kind == "dense" else meanfield_vf
    return jax.jit(lambda omega, K, y0: _solve(vf, steps, dt, y0, (omega, K)))


def rk4_batched_y0(kind: str, steps: int, dt: float):
    """jit(vmap over initial states)."""
    vf = dense_vf if kind == "dense" else meanfield_vf
    return jax.jit(
        jax.vmap(lambda omega, K, y0: _solve(vf, steps, dt, y0, (omega, K)), (None, None, 0))
    )


def rk4_sweep_K(steps: int, dt: float):
    """jit(vmap over mean-field K values)."""
    return jax.jit(
        jax.vmap(
            lambda omega, K, y0: _solve(meanfield_vf, steps, dt, y0, (omega, K)),
            (None, 0, None),
        )
    )


def euler_maruyama(steps: int, dt: float):
    """jit(fn(omega, K, sigma, y0, key) -> (final, num_steps)); mean-field drift,
    additive noise sigma dW (sigma = sqrt(2 D))."""

    def solve(omega, K, sigma, y0, key):
        bm = dfx.UnsafeBrownianPath(
            shape=jax.ShapeDtypeStruct(y0.shape, y0.dtype), key=key
        )
        diffusion = dfx.ControlTerm(
            lambda t, y, a: lx.DiagonalLinearOperator(jnp.full_like(y, sigma)), bm
        )
        terms = dfx.MultiTerm(dfx.ODETerm(meanfield_vf), diffusion)
        t1 = steps * dt
        sol = dfx.diffeqsolve(
            terms,
            dfx.Euler(),
            0.0,
            t1,
            dt,
            y0,
            args=(omega, K),
            saveat=dfx.SaveAt(t1=True),
            stepsize_controller=dfx.ConstantStepSize(),
            max_steps=steps + 8,
            adjoint=dfx.ForwardMode(),
        )
        return sol.ys[0], sol.stats["num_steps"]

    return jax.jit(solve)
