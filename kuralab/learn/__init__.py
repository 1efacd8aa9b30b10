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
- Kuramoto orientation diffusion: `OrientationDiffusion` (forward chain, score matching,
  reverse sampler, `.isotropic` baseline, `.sde` continuous view), `ReverseOrientationSDE`
  (the reverse-time SDE as a model for `kl.simulate`), `wrapped_normal_score`,
  `wrapped_normal_logpdf`, `von_mises_sample`, score networks `ScoreMLP`, `ScoreUNet`,
  diagnostics `forward_snr`, `coherence`, `isotropic_coherence`, `moment_error`,
  `von_mises_mmd`.
- Data: `kl.learn.data` (`kuranet_disorder`, `gmm`, `moons`, `circles`, `spirals`,
  `adding_task`, `rotating_shapes`, `sudoku`, `von_mises_mixture`,
  `oriented_gratings`, `flow_fields`).
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
from .diffusion import (
    OrientationDiffusion as OrientationDiffusion,
    from_phase as from_phase,
    to_phase as to_phase,
)
from .diffusion_metrics import (
    circular_moments as circular_moments,
    coherence as coherence,
    forward_snr as forward_snr,
    isotropic_coherence as isotropic_coherence,
    moment_error as moment_error,
    von_mises_mmd as von_mises_mmd,
)
from .diffusion_nets import (
    ScoreMLP as ScoreMLP,
    ScoreUNet as ScoreUNet,
    time_embedding as time_embedding,
)
from .diffusion_score import (
    von_mises_logpdf as von_mises_logpdf,
    von_mises_sample as von_mises_sample,
    wrapped_normal_logpdf as wrapped_normal_logpdf,
    wrapped_normal_score as wrapped_normal_score,
)
from .diffusion_sde import ReverseOrientationSDE as ReverseOrientationSDE
from .kuranet_diagnostics import feature_correlation as feature_correlation
from .kuranet import (
    FEATURES as FEATURES,
    OBJECTIVES as OBJECTIVES,
    PairwiseMLPCoupling as PairwiseMLPCoupling,
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
    "NonFiniteLossError",
    "autoencoder_loss",
    "OBJECTIVES",
    "OrientationDiffusion",
    "PairwiseMLPCoupling",
    "ReverseOrientationSDE",
    "ScoreMLP",
    "ScoreUNet",
    "circular_moments",
    "coherence",
    "data",
    "energy_vote",
    "feature_correlation",
    "fit",
    "forward_snr",
    "from_phase",
    "isotropic_coherence",
    "kuranet_loss",
    "kuranet_model",
    "moment_error",
    "node_features",
    "read_checkpoint",
    "time_embedding",
    "to_phase",
    "von_mises_logpdf",
    "von_mises_mmd",
    "von_mises_sample",
    "wrapped_normal_logpdf",
    "wrapped_normal_score",
]
