r"""LRMF on two Gaussian blobs (LRMF Sec. 4 setup 1; Fig. 8 and Fig. 9(i)).

Affine Gaussian LRMF (Example 2.1, Sec. 8.3): M is the full-covariance Gaussian family and
T(x) = (A^T A) x + b; the optimum matches B's mean and covariance. 100 training points per domain
(as in the paper), 50 validation and 50 test points.

Run:
  python -m experiments.run --config=configs/lrmf_blobs.py --workdir=runs/lrmf_blobs
Variants: `:realnvp` (the over-parameterised Real NVP LRMF of Fig. 9(i)), `:smoke` (tests).

`:realnvp` keeps each private model's last parameters, the maximum-likelihood fit to its 100
training points that Algorithm 1 asks for: Fig. 9's caption says these Real NVPs "clearly
overfit" the blobs, and Eq. 3 on the training sets (what Fig. 9(i)(c) plots) is 0 only when the
shared model fits T(A) and B as closely as the private models fit A and B. Selecting the
private models on held-out data (the moons recipe) would set c(A, B) below what the joint stage,
which keeps its last parameters, reaches on the training sets.
"""

import ml_collections

from configs import lrmf_moons

VARIANTS = ('realnvp', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of lrmf_blobs; known: {VARIANTS}')
  config = lrmf_moons.get_config('' if variant == 'realnvp' else 'gaussian')
  config.restarts = 1  # restarts address the moons' folding (configs/lrmf_moons.py)
  for domain, field in ((config.data.a, 'a'), (config.data.b, 'b')):
    domain.name, domain.field, domain.label_field = 'blobs', field, ''
    domain.options = ml_collections.ConfigDict({'n': 200, 'seed': 0})
  config.data.splits = (100, 50, 50)
  if variant == 'realnvp':
    config.train.private.keep_best = False  # the training-set maximum (module docstring)
  for block in (config.train.private, config.train.joint):
    block.batch_size = 50
  if variant == 'smoke':
    for block in (config.train.private, config.train.joint):
      block.update(num_steps=40, steps_per_dispatch=20, eval_every=20, checkpoint_every=20)
  return config
