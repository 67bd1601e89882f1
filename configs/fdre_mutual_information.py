r"""Featurized DRE, mutual information between two 20-d Gaussians, rho = 0.9 (Sec. 5.2, Fig. 4, 9).

D_p: joint pairs [x, y]; D_q: pairs with y shuffled (product of marginals). MI = mean estimated
log-ratio over test joint pairs; true MI = -10 log(1 - 0.81) = 16.61 nats. Modes: baseline
classifier, separate, joint with alpha in {0.1, 0.5, 0.9}, discriminative. MAF of App. E.1
(5 MADE blocks of 100, batch norm), MLP classifier of Table 6 (3 x 200 ReLU).

Run:
  python -m experiments.run --config=configs/fdre_mutual_information.py --workdir=runs/fdre_mi
Variants: `:paper` (80K / 10K / 10K pairs, paper optimisers, 200 epochs), `:smoke` (tests).
The default uses 20K / 2.5K / 5K pairs and a few thousand steps;
the flow stage of `separate` runs until its validation NLL stops improving (up to 8000 steps).

Numbers over seeds: REPRODUCTION.md (the rows compare each mode's |MI error| pairwise over
seeds).
"""

import ml_collections

from configs import fdre_gaussians

VARIANTS = ('paper', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of fdre_mutual_information; known: {VARIANTS}')
  config = fdre_gaussians.get_config('smoke' if variant == 'smoke' else '')
  config.data = ml_collections.ConfigDict(
      {'name': 'correlated_gaussians', 'dim': 20, 'rho': 0.9, 'splits': (20000, 2500, 5000)})
  config.modes = ('baseline', 'separate', 'joint', 'discriminative')
  config.joint_alphas = (0.1, 0.5, 0.9)
  # The oracle controls need the toy task's known mean shift (fdre.modes.oracle_controls).
  config.oracle_controls = False
  if variant == 'paper':
    config.data.splits = (80000, 10000, 10000)
    config.model.classifier.hidden = (200, 200, 200)
    for block, lr in ((config.train.flow, 1e-4), (config.train.classifier, 2e-4),
                      (config.train.joint, 1e-4)):
      block.update(num_steps=80000 * 200 // 128, lr=lr, batch_size=128)
  elif variant == 'smoke':
    config.data.splits = (200, 100, 100)
    config.modes = ('baseline',)
  else:
    config.model.classifier.hidden = (200, 200, 200)
    # The flow's validation NLL still falls at 2000 steps; let early stopping end the stage.
    config.train.flow.num_steps = 8000
  return config
