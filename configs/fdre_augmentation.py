r"""Featurized DRE, importance-weighted data augmentation (Sec. 5, App. D.5, Table 3).

The Table 3 pipeline on the 5,000 bundled MNIST digits at 14x14 (the paper: Omniglot, a DAGAN,
a CNN): few real training digits per class, one Real NVP per class (after an exact logit
bijector) as the generator of labelled synthetic digits, ratios real/synthetic from a classifier
on pixels (IW(x)) and on the features of a Real NVP fitted on the real + synthetic mixture
(IW(z)), and a logistic-regression digit classifier trained on data only, synthetic only,
mixture, mixture + IW(x), mixture + IW(z); the flattening power of the weights is chosen on real
validation digits; accuracy on the held-out real digits.

Run:
  python -m experiments.run --config=configs/fdre_augmentation.py --workdir=runs/fdre_augmentation
Variants: `:paper` (3 seeds as Table 3; larger step budgets, which early stopping does not use up),
`:smoke` (tests).

Data: the 5,000 bundled MNIST digits stand in for Omniglot; `--config.data.root=/datasets/omniglot`
(images_background/<alphabet>/<character>/*.png and images_evaluation/...; every variant) reads
Omniglot's characters instead, background then evaluation set, every character a class, at
`data.size`; results.json's `data_source` says which ran. The paper's setting (App. D.5) is
`:paper` with `data.size=28` (the 28x28 of its CNN, Table 7: four 2x2 poolings to 1x1),
`data.classes=1200` (the first 1,200 characters), `data.train_per_class=10`,
`data.val_per_class=5` (the other 5 drawings test), `synthetic_per_class=50`,
`synthetic_val_per_class=5` and `train.generator.batch_size=10`: what the reproduction's paper
tier sets with `--data_root` (experiments/claims/fdre.py).
"""

import ml_collections

from configs import fdre_gaussians

VARIANTS = ('paper', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of fdre_augmentation; known: {VARIANTS}')
  config = ml_collections.ConfigDict()
  config.experiment = 'fdre.augmentation'
  config.seeds = (0,)
  config.distributed = False
  # root: a folder of Omniglot read instead of the stand-in 'mnist_5000' ('': none).
  config.data = ml_collections.ConfigDict({'name': 'mnist_5000', 'size': 14, 'logit_alpha': 0.05,
                                           'train_per_class': 50, 'val_per_class': 20,
                                           'root': ''})
  config.synthetic_per_class = 5 * config.data.train_per_class  # App. D.5: 50 per 10 real
  config.synthetic_val_per_class = 20
  # Flattening powers gamma of the synthetic weights r^gamma, chosen on real validation digits.
  config.weighting_powers = (0.1, 0.2, 0.5, 1.0)
  config.model = ml_collections.ConfigDict()
  config.model.generator = ml_collections.ConfigDict(
      {'flow': 'realnvp', 'num_blocks': 4, 'hidden': (64,), 'temperature': 0.7})
  config.model.flow = ml_collections.ConfigDict(
      {'flow': 'realnvp', 'num_blocks': 6, 'hidden': (256, 256)})
  config.model.classifier = ml_collections.ConfigDict({'hidden': (100, 100, 100)})
  config.model.downstream = ml_collections.ConfigDict({'C': 1.0, 'max_iter': 500})
  base = fdre_gaussians.get_config()
  # Copies: several blocks start from the same block of ``base``.
  block = lambda name: base.train[name].copy_and_resolve_references()
  config.train = ml_collections.ConfigDict()
  config.train.generator = block('flow')
  config.train.generator.update(num_steps=400, batch_size=50, lr=1e-3, weight_decay=1e-4,
                                eval_every=25, steps_per_dispatch=25, patience=4)
  config.train.flow = block('flow')
  config.train.flow.update(num_steps=1500, lr=5e-4)
  config.train.classifier = block('classifier')
  config.train.classifier.update(num_steps=500, batch_size=64, weight_decay=0.0)
  if variant == 'paper':
    config.seeds = (0, 1, 2)
    # The first that many classes of the data set (None: all; an int from the command line).
    config.data.classes = ml_collections.config_dict.placeholder(int)
    config.train.generator.update(num_steps=1000)
    config.train.flow.update(num_steps=3000)
  elif variant == 'smoke':
    config.data.size = 7
    config.data.update(train_per_class=5, val_per_class=5)
    config.synthetic_per_class, config.synthetic_val_per_class = 10, 5
    config.weighting_powers = (0.2, 1.0)
    config.model.generator.update(num_blocks=2, hidden=(8,))
    config.model.flow.update(num_blocks=2, hidden=(16,))
    config.model.classifier.hidden = (16,)
    config.model.downstream.max_iter = 50
    for stage in config.train.values():
      stage.update(num_steps=10, batch_size=25, steps_per_dispatch=10, eval_every=10,
                   checkpoint_every=10)
    config.train.generator.batch_size = config.data.train_per_class
  return config
