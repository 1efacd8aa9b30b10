"""kuralab.learn (`kl.learn`): trainable parts, losses, data and training on the core.

The physics stays in the core (`kl.Kuramoto`, `kl.simulate`, `kl.cluster_order`, ...);
this namespace adds what learning needs. Every trainable part is an Equinox module acting
on ONE example (batch with `jax.vmap`); randomness through keyword-only `key`; optax for
optimisers (DESIGN.md §7).

- Training: `fit` (optax, clipping, a key per step, evaluation, tqdm, history as an
  `xarray.Dataset` with dim `step`, atomic resumable checkpoints), `NonFiniteLossError`,
  `read_checkpoint`.
- KuraNet: `PairwiseMLPCoupling`, `node_features`, `kuranet_model`, `kuranet_loss`,
  `feature_correlation` (the c_x diagnostic).
- AKOrN: `AKOrNLayer`, `AKOrNReadout`, `AKOrNNet`, `energy_vote`.
- Topographic sheets: `CoRNNCell` (the discrete symplectic-Euler coRNN cell with
  learnable local kernels), `CoRNNSequence` (input map, sheet, linear readout),
  `CoRNNAutoencoder` + `autoencoder_loss` (next-frame sheet (V)AE for rotating shapes).
- Data: `kl.learn.data` (`kuranet_disorder`, `gmm`, `moons`, `circles`, `spirals`,
  `adding_task`, `rotating_shapes`, `sudoku`).
"""

from . import data as data
from ._train import (
    NonFiniteLossError as NonFiniteLossError,
    fit as fit,
    read_checkpoint as read_checkpoint,
)
from .akorn_layer import AKOrNLayer as AKOrNLayer
from .akorn_net import AKOrNNet as AKOrNNet, AKOrNReadout as AKOrNReadout
from .akorn_vote import energy_vote as energy_vote
from .cornn import (
    CoRNNCell as CoRNNCell,
    CoRNNSequence as CoRNNSequence,
)
from .cornn_ae import (
    CoRNNAutoencoder as CoRNNAutoencoder,
    autoencoder_loss as autoencoder_loss,
)
from .kuranet import (
    FEATURES as FEATURES,
    OBJECTIVES as OBJECTIVES,
    PairwiseMLPCoupling as PairwiseMLPCoupling,
    feature_correlation as feature_correlation,
    kuranet_loss as kuranet_loss,
    kuranet_model as kuranet_model,
    node_features as node_features,
)

__all__ = [
    "AKOrNLayer",
    "AKOrNNet",
    "AKOrNReadout",
    "CoRNNAutoencoder",
    "CoRNNCell",
    "CoRNNSequence",
    "FEATURES",
    "OBJECTIVES",
    "NonFiniteLossError",
    "autoencoder_loss",
    "PairwiseMLPCoupling",
    "data",
    "energy_vote",
    "feature_correlation",
    "fit",
    "kuranet_loss",
    "kuranet_model",
    "node_features",
    "read_checkpoint",
]
