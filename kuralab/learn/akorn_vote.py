r"""`energy_vote`: AKOrN's energy-based voting (test-time ensembling by energy).

For ONE input, run the network from `votes` random initial states (one key each,
vmapped) and keep the run whose energy is lowest, the last energy (`score="last"`) or the
sum over all steps (`score="sum"`; the paper found the sum predicted correctness best),
summed over layers. With $E^{(k)}$ the score of vote $k$:

$$k^\star = \arg\min_k E^{(k)}, \qquad \text{answer} = \text{output}^{(k^\star)} .$$

Batch over inputs with `jax.vmap(lambda i, k: energy_vote(net, i, key=k))`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._custom_types import Key
from ._checks import check_choice, check_steps
from .akorn_net import total_energy


def energy_vote(
    net: Callable,
    inputs,
    *,
    key: Key,
    votes: int = 16,
    score: str = "last",
    energy: str = "energy",
    steps: int | Sequence[int] | None = None,
) -> tuple[Array, dict[str, Array]]:
    """The lowest-energy answer among `votes` runs of `net` on ONE input.

    **Arguments:**

    - `net`: an `AKOrNNet` or any callable `net(inputs, key=, steps=) -> (output, info)`
      whose `info` has `"energy"` / `"energy_logged"` (one trace per layer).
    - `inputs`: one example.
    - `key`: PRNG key; vote `k` uses `jax.random.split(key, votes)[k]`. (Keyword only.)
    - `votes`: number of random initial states K (default 16).
    - `score`: `"last"` (default) or `"sum"` over steps.
    - `energy`: `"energy"` (AKOrN's, with the 1/2) or `"energy_logged"` (the reference
      code's logged form, which the paper's voting used).
    - `steps`: test-time steps per layer (default: the layers' own T).

    **Returns:** `(answer, info)`: `answer` is the output of the lowest-energy vote;
    `info` has `scores` `(votes,)`, `outputs` `(votes, *output)`, `best` (index),
    and `energy` / `energy_logged`: per-layer traces `(votes, T_l + 1)`.
    """
    votes = check_steps("votes", votes, 1)
    check_choice("score", score, ("last", "sum"))
    check_choice("energy", energy, ("energy", "energy_logged"))
    keys = jax.random.split(key, votes)
    outputs, info = jax.vmap(lambda k: net(inputs, key=k, steps=steps))(keys)
    scores = total_energy(info, score=score, energy=energy)
    best = jnp.argmin(scores)
    answer = jax.tree_util.tree_map(lambda o: o[best], outputs)
    out = {"scores": scores, "outputs": outputs, "best": best}
    out["energy"] = info["energy"]
    out["energy_logged"] = info["energy_logged"]
    return answer, out
