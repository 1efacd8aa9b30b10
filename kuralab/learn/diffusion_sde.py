r"""The reverse-time orientation-diffusion SDE as an ordinary kuralab model.

For the forward SDE $d\theta = b(\theta, t)\,dt + \sqrt{2D(t)}\,dW$ on $t \in [0, T]$
(`OrientationDiffusion.sde`), $b = K(t)\,\mathrm{Im}(e^{-i\theta}Z) + K_{\mathrm{ref}}(t)
\sin(\psi_{\mathrm{ref}} - \theta)$, the time reversal (Anderson 1982) run in its own
forward time $s = T - t$ is

$$d\theta = \big[-b(\theta, T - s) + 2D(T - s)\,\nabla_\theta\log p_{T-s}(\theta)\big]\,ds
            + \sqrt{2D(T - s)}\,dW_s ,$$

with the learned score $\hat s(\theta, t) \approx \nabla\log p_t$ in place of the true one.
`ReverseOrientationSDE` is that model on the flattened state (`(osc,)` =
`prod(shape)` phases, wrapped every step like any phase model), so
`kl.simulate(model, theta_T, t1=T, dt=T/n, solver="euler", key=key)` integrates it with
n steps from a prior draw $\theta_T$; `simulate` has no special case for it.

Euler at the left end of each reverse step evaluates the coefficients at the *upper*
forward time $t = T - s$; the discrete reverse chain (`OrientationDiffusion.sample`)
uses the transition's own entry (one index lower). Both discretise the same SDE; they
differ at O(step).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp

from .._models.base import AbstractPhaseModel
from .._schedules import evaluate
from .diffusion import OrientationDiffusion


class ReverseOrientationSDE(AbstractPhaseModel):
    """The reverse-time SDE of an `OrientationDiffusion` with a score (module docstring).

    **Arguments:**

    - `process`: the `kl.learn.OrientationDiffusion`.
    - `score`: a score network (contract in `diffusion_nets`) or a function
      `score(theta, t)` of one example's state `(*shape)` and forward time `t`.
    - `shape`: the state shape of one example; the model's state is its flattening.
    """

    process: OrientationDiffusion
    score: Any
    shape: tuple[int, ...] = eqx.field(static=True)

    manifold: ClassVar[str] = "torus"

    def __init__(self, process: OrientationDiffusion, score, shape):
        if not isinstance(process, OrientationDiffusion):
            raise TypeError(f"`process` must be kl.learn.OrientationDiffusion; got {type(process).__name__}")
        process.score_fn(score)  # TypeError for a non-callable
        self.process = process
        self.score = score
        self.shape = tuple(int(s) for s in shape)

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (math.prod(self.shape),)

    def _coefficients(self, s):
        K, Kr, D = self.process.schedules()
        t = self.process.steps - s
        return t, evaluate(K, t), evaluate(Kr, t), evaluate(D, t)

    def drift(self, s, y, y_delayed=None):
        t, k, kr, D = self._coefficients(s)
        theta = y.reshape(self.shape)
        fc, fr = self.process._drift_parts(theta)
        score = self.process.score_fn(self.score)(theta, t)
        return (-(k * fc + kr * fr) + 2 * D * score).reshape(y.shape).astype(y.dtype)

    def diffusion(self, s, y):
        _, _, _, D = self._coefficients(s)
        return jnp.broadcast_to(jnp.sqrt(2 * D), y.shape).astype(y.dtype)
