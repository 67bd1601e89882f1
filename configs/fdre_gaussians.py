r"""Featurized DRE, motivating example (Sec. 3.1, Fig. 2, 5, 6): p = N(0, I), q = N([3, 3], I).

Log-ratio estimates of each training mode (Sec. 3.3) against the true log r(x) = -mu^T x +
||mu||^2 / 2: baseline classifier on x, separate (MAF fitted first, classifier on f(x)), joint
(Eq. 1, alpha = 0.9 as in Fig. 2(c)) and discriminative. MAF of App. E.1 (5 MADE blocks of 100,
batch norm), MLP classifier of App. E.2 (3 x 100 ReLU).

Run:
  python -m experiments.run --config=configs/fdre_gaussians.py --workdir=runs/fdre_gaussians

Numbers over seeds: REPRODUCTION.md. Errors of log r against the truth on the test points
(both sets): the MSE on all points, per set, on |true log r| <= 5 (``overlap_log_ratio``, where
both sets have data; elsewhere log r is an extrapolation that the logistic loss does not
constrain) and in bands of |true log r|; and the 1-Wasserstein distance between the estimated
and the true log r's distributions (``log_ratio_w1``), which is what Fig. 2 shows: the authors'
notebook overlays histograms of the estimates over samples of p and q on that of the truth.

``oracle_controls`` (a control of our machinery, not a paper experiment): the same classifier
and training block taught the true ratio (the Bayes posterior as soft labels), on x and on the
separate flow's z, and the slope of log r as a function of z, so that what the flow does to the
classifier's target is measured apart from the label noise; and the separate mode with the
exact flow of the training mixture in place of the fitted MAF (``separate_exact_flow``, and
``oracle_exact_flow`` taught the posterior), so that Algorithm 1 is measured with no flow
error at all.

Variants: `:alphas` (joint with alpha in {0.01, 0.1, 0.5, 0.7}, Fig. 6), `:paper` (paper sizes and
optimiser: Adam 1e-4 for the flow, 2e-4 for the classifier, PyTorch Adam's weight decay (an L2
penalty whose gradient Adam rescales, ``weight_decay_style='l2'``), 100 epochs of the 80,000
training points of p and q together, as the flow is fitted on the union and the classifier sees
both sets; each stage keeps its best state on validation without stopping early, App. E's
"early stopping on the best" validation value), `:smoke` (tests). The paper does not give the
toy's size; `:paper` takes the authors' released data split, 40,000 / 5,000 / 5,000 points of
each distribution (train / validation / test).
"""

import ml_collections

VARIANTS = ('alphas', 'paper', 'smoke')


def _train(num_steps: int, lr: float, batch_size: int, weight_decay: float
           ) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'num_steps': num_steps, 'batch_size': batch_size, 'lr': lr, 'weight_decay': weight_decay,
      'steps_per_dispatch': 100, 'eval_every': 100, 'patience': 10, 'checkpoint_every': 1000})


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of fdre_gaussians; known: {VARIANTS}')
  config = ml_collections.ConfigDict()
  config.experiment = 'fdre.modes'
  config.seeds = (0,)
  config.distributed = False
  config.data = ml_collections.ConfigDict(
      {'name': 'gaussians', 'mean_q': (3.0, 3.0), 'splits': (2000, 500, 1000)})
  config.model = ml_collections.ConfigDict()
  config.model.flow = ml_collections.ConfigDict(
      {'flow': 'maf', 'num_blocks': 5, 'hidden': (100,), 'batch_norm': True})
  config.model.classifier = ml_collections.ConfigDict({'hidden': (100, 100, 100)})
  # log_ratio_mse_overlap: the error on test points with |true log r| <= this (posterior of p
  # between 0.7% and 99.3%), where the data constrain the ratio.
  config.overlap_log_ratio = 5.0
  # Trained in this order; 'joint' once per alpha of joint_alphas (Eq. 1's weight of L_sup).
  config.modes = ('baseline', 'separate', 'joint', 'discriminative')
  config.joint_alphas = (0.9,)
  config.oracle_controls = True
  config.train = ml_collections.ConfigDict()
  config.train.flow = _train(2000, 1e-3, 128, 1e-6)
  config.train.classifier = _train(1500, 1e-3, 128, 5e-4)
  config.train.joint = _train(2000, 1e-3, 128, 1e-6)
  if variant == 'alphas':
    config.modes = ('joint',)
    config.joint_alphas = (0.01, 0.1, 0.5, 0.7)
    config.oracle_controls = False
  elif variant == 'paper':
    config.data.splits = (40000, 5000, 5000)
    # An epoch is one pass over D_p u D_q: every stage trains on the union of both sets.
    epochs = lambda batch: 100 * 2 * config.data.splits[0] // batch
    config.train.flow = _train(epochs(100), 1e-4, 100, 1e-6)
    config.train.classifier = _train(epochs(128), 2e-4, 128, 5e-4)
    config.train.joint = _train(epochs(128), 1e-4, 128, 1e-6)
    # App. E: PyTorch Adam's weight_decay, an L2 term in the gradient (not AdamW's decay).
    for block in config.train.values():
      block.weight_decay_style = 'l2'
      block.patience = None  # 100 epochs, the best state on validation kept
  elif variant == 'smoke':
    config.modes = ('joint',)
    config.oracle_controls = False
    config.data.splits = (200, 100, 100)
    config.model.flow.update(num_blocks=2, hidden=(16,))
    config.model.classifier.hidden = (16,)
    for block in config.train.values():
      block.update(num_steps=10, batch_size=50, steps_per_dispatch=10, eval_every=10,
                   checkpoint_every=10)
  return config
