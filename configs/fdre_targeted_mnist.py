r"""Featurized DRE, targeted generation on MNIST by SIR (Sec. 5.3, App. D.4, Table 2).

diff-digits: D_p = digits {1, 2}, D_q = digits {0, 7} with |D_q| = perc |D_p|; a Real NVP (after an
exact logit pre-processing bijector) fitted on D_p u D_q proposes samples, SIR resamples them with
q/h weights from a classifier in z (IW(z)) or in x (IW(x)); a separately trained attribute
classifier measures the fraction of samples in the target group. Reduced size for a 2-core CPU:
the 5,000 bundled MNIST digits at 14x14, Real NVP instead of the paper's MAF (fast inverse).

What differs from the paper (Sec. 5.3, App. D.4, E.1-E.3): the paper uses full MNIST at 28x28,
a MAF (5 MADE blocks, one hidden layer of 1024, 200 epochs, Adam 1e-4), ratio classifiers of
Table 5 trained 10 epochs (batch 64, Adam 1e-3) and an attribute MLP (3 x 100, 10 epochs, lr
2e-4); here 5,000 digits at 14x14, a Real NVP (6 blocks of 256-256) after a logit bijector, the
same 3 x 100 MLP for the ratio and attribute classifiers (1000 steps, batch 128, Adam 1e-3).
The paper resamples with self-normalised weights only (App. D.4); flattened weights
(q / h)^gamma, gamma in `flattening_powers`, are reported next to them (keys `*_power_<gamma>`).

Numbers over seeds: REPRODUCTION.md. Both IW(x) and the attribute scorer are pixel MLPs
trained on real digits of the same groups, so IW(x) selects what such a scorer calls target.

Run:
  python -m experiments.run --config=configs/fdre_targeted_mnist.py --workdir=runs/fdre_targeted
Variants: `:background` (diff-background: q = colour-flipped digits), `:all_percs` (perc in
{0.1, 0.25, 0.5, 1.0} as in Table 2), `:paper` (the paper's flow and size: 28x28 digits, the
logit of MAF with alpha 1e-6, a MAF of 5 MADE blocks with one hidden layer of 1024 ReLU units and
batch norm between blocks, trained 200 epochs at batch 100 with Adam 1e-4 and weight decay 1e-6,
Table 4 and App. E.1), `:smoke` (tests).

Data: the 5,000 bundled MNIST digits stand in for MNIST; `--config.data.root=/datasets/mnist` (a
folder of MNIST's IDX files, train-images-idx3-ubyte[.gz], ...; every variant) reads MNIST's
60,000 training digits instead, at `data.size` (28 in `:paper`, the paper's size), and
results.json's `data_source` says which ran. The reproduction's paper tier sets it from
`--data_root` (experiments/claims/fdre.py), with the flow's 200 epochs counted on MNIST.
"""

import ml_collections

from configs import fdre_gaussians

VARIANTS = ('background', 'all_percs', 'paper', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of fdre_targeted_mnist; known: {VARIANTS}')
  base = fdre_gaussians.get_config()
  config = ml_collections.ConfigDict()
  config.experiment = 'fdre.targeted'
  config.seeds = (0,)
  config.distributed = False
  config.scenario = 'digits'
  config.percs = (0.1, 1.0)
  config.num_proposals = 5000
  config.num_samples = 1000
  # SIR with (q / h)^gamma besides the self-normalised weights (gamma = 1) of App. D.4.
  config.flattening_powers = (0.5, 0.2)
  # root: a folder of MNIST's IDX files read instead of the stand-in 'mnist_5000' ('': none).
  config.data = ml_collections.ConfigDict({'name': 'mnist_5000', 'size': 14, 'logit_alpha': 0.05,
                                           'root': ''})
  config.model = ml_collections.ConfigDict()
  config.model.flow = ml_collections.ConfigDict(
      {'flow': 'realnvp', 'num_blocks': 6, 'hidden': (256, 256)})
  config.model.classifier = ml_collections.ConfigDict({'hidden': (100, 100, 100)})
  config.train = ml_collections.ConfigDict()
  config.train.flow = base.train.flow
  config.train.flow.update(num_steps=1500, lr=5e-4)
  config.train.classifier = base.train.classifier
  config.train.classifier.update(num_steps=1000)
  if variant == 'background':
    config.scenario = 'background'
  elif variant == 'all_percs':
    config.percs = (0.1, 0.25, 0.5, 1.0)
  elif variant == 'paper':
    # App. D.1: dequantised pixels in [0, 1] through MAF's logit(1e-6 + (1 - 2e-6) x).
    config.data.update(size=28, logit_alpha=1e-6)
    # Table 4, MNIST row; sequential MADE order, reversed between blocks (nflax.bijectors.maf).
    config.model.flow = ml_collections.ConfigDict(
        {'flow': 'maf', 'num_blocks': 5, 'hidden': (1024,), 'batch_norm': True})
    # 200 epochs at batch 100 of the largest flow training set (perc = 1: 510 + 510 digits of
    # the bundled 5,000), with early stopping on the validation likelihood (App. E.1).
    config.train.flow.update(num_steps=200 * 1020 // 100, batch_size=100, lr=1e-4,
                             weight_decay=1e-6)
  elif variant == 'smoke':
    config.data.size = 7
    config.percs = (0.5,)
    config.num_proposals, config.num_samples = 200, 100
    config.flattening_powers = (0.2,)
    config.model.flow.update(num_blocks=2, hidden=(16,))
    config.model.classifier.hidden = (16,)
    for block in config.train.values():
      block.update(num_steps=10, batch_size=50, steps_per_dispatch=10, eval_every=10,
                   checkpoint_every=10)
  return config
