r"""Glow LRMF in pixel space (LRMF Sec. 4 setup 4; Fig. 6): the failure shows in the loss.

The paper aligns USPS to MNIST at 32x32 with Glow for M and T (3 levels x 8 steps, CNN couplings
with 512 filters, Adam 1e-5); the LRMF objective stalls well above 0 (vanishing gradients in high
dimension, Sec. 2), and says so by itself. Here A is scikit-learn's digits and B the bundled MNIST
digits, both at 16x16 (USPS is not bundled), dequantised and moved to logit space (which leaves
Eq. 3 unchanged), with a Glow of 2 levels x 4 steps x 32 filters for M and for T (T from
scratch, as in the paper) so that it runs on a CPU; `:paper` is the paper's Glow at 16x16.
Reported: the held-out objective and its flag (expected: far above eps), and the 1-NN accuracy
of MNIST labels on T(A) in pixel space (does T keep the digit classes?).

Numbers over seeds: REPRODUCTION.md.

Run:
  python -m experiments.run --config=configs/lrmf_glow_digits.py --workdir=runs/lrmf_glow_digits
Variants: `:paper` (3 levels x 8 steps x 512 filters, lr 1e-5), `:smoke` (tiny, for tests).
"""

import ml_collections

from configs import lrmf_digits, lrmf_moons

VARIANTS = ('paper', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of lrmf_glow_digits; known: {VARIANTS}')
  config = lrmf_moons.get_config('smoke' if variant == 'smoke' else '')
  config.restarts = 1  # restarts address the moons' folding; Glow's joint stage is costly
  config.data = ml_collections.ConfigDict()
  config.data.a = lrmf_digits.digit_domain('sklearn_digits', 1500)
  config.data.b = lrmf_digits.digit_domain('mnist_5000', 1500)
  config.data.splits = (1000, 250, 250)  # train, validation, test per domain
  config.data.logit_alpha = 0.05
  glow = {'family': 'flow', 'flow': 'glow', 'num_levels': 2, 'steps_per_level': 4,
          'hidden_channels': 32}
  config.model.density = ml_collections.ConfigDict(glow)
  config.model.flow = ml_collections.ConfigDict(
      {k: v for k, v in glow.items() if k != 'family'})
  for block in (config.train.private, config.train.joint):
    block.update(num_steps=600, batch_size=64, eval_every=100, steps_per_dispatch=50,
                 checkpoint_every=100)
  config.train.private.update(lr=1e-3)
  config.train.joint.update(lr=1e-4)
  if variant == 'paper':
    for block in (config.model.density, config.model.flow):
      block.update(num_levels=3, steps_per_level=8, hidden_channels=512)
    config.train.joint.update(lr=1e-5, num_steps=5000)
    config.train.private.update(num_steps=5000)
  elif variant == 'smoke':
    for domain in (config.data.a, config.data.b):
      domain.options.update(n=60, size=8)
    config.data.splits = (30, 15, 15)
    for block in (config.model.density, config.model.flow):
      block.update(num_levels=1, steps_per_level=1, hidden_channels=4)
    for block in (config.train.private, config.train.joint):
      block.update(num_steps=4, batch_size=10, eval_every=2, steps_per_dispatch=2,
                   checkpoint_every=2)
  return config
