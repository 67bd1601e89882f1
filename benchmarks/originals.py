r"""Our flows against the papers' original implementations, side by side in one run.

  python -m benchmarks.originals [--rows=alignflow,maf,ffjord,glow16,glow32]
      [--repeats=5] [--quick] [--out=benchmarks/results_originals_cpu.json]

For each row, a PyTorch model written here after the original implementation (its
architecture, its training step, its sampling loop; no code of the originals is used or
copied) and our JAX model of the same size, trained on the same data with the same batch
size, are timed in this one process, alternating ours / theirs over ``--repeats`` paired
repeats after warm-up (and, for JAX, compilation). Each row reports the median and the
min-max of both rates and of the paired ratio ours / theirs.

Rows (the originals read for them):

* ``alignflow``: AlignFlow's Real NVP (ermongroup/alignflow, ``models/real_nvp``) on
  3x32x32 images, batch 16: 3 scales, 3 checkerboard + 3 channel-wise couplings per scale
  and 4 checkerboard couplings on the last, residual s/t networks of 4 blocks with 32
  channels at the first scale (doubled per scale and for the channel-wise couplings);
  theirs: weight-normalised convolutions, batch norm in the residual blocks, skip 1x1
  convolutions, inputs ``relu([x, -x, mask])``, the de-quantise + logit pre-processing,
  Adam(2e-4, betas (0.5, 0.999)) with L2 5e-5 on the weight-norm scales. Ours:
  :func:`nflax.bijectors.realnvp_image` as ``configs/alignflow_mnist.py:paper_scale``
  configures it (ActNorm before each coupling, plain ResNet conditioners), after the
  exact ``[-1, 1] -> logit`` pre-processing of ``experiments/alignflow``, with the
  config's optimiser (clip 10, Adam(2e-4, 0.5, 0.999)). Training steps/s of one flow's
  maximum-likelihood step and samples/s of the inverse.
* ``maf``: the MAF of featurized DRE's targeted MNIST (ermongroup/f-dre, whose MAF is
  kamenbliznashki/normalizing_flows'): 784-D, 5 MADE blocks of one hidden layer of 1024
  ReLU units, batch norm after each block, orders flipped between blocks, Adam(1e-4,
  weight decay 1e-6), batch 100. Training steps/s and the sequential inverse (sampling:
  theirs is ``d`` full MADE passes per block, one per input degree, in Python).
* ``ffjord``: LRMF's FFJORD variant (2 blocks, tanh MLP [16, 16, 16] on ``[z, t]``, exact
  trace, dopri5, rtol = atol = 1e-5, T = 1, batch 256, Adam 1e-3) against the same model
  written with torchdiffeq as rtqichen/ffjord trains it (``odeint_adjoint``, brute-force
  divergence by autograd, same tolerances). Both start from the same (non-zero) weights,
  copied from ours, so both integrate the same ODE; the repeats restart from them.
* ``glow16`` / ``glow32``: Glow (kamenbliznashki/normalizing_flows, as used by f-dre): per
  step ActNorm, LU 1x1 convolution, affine coupling whose network is 3x3 conv + ActNorm +
  ReLU, 1x1 conv + ActNorm + ReLU, zero 3x3 conv, ``sigmoid(s + 2)`` scales, learned
  Gaussian priors of the factored-out halves; ours :func:`nflax.bijectors.glow` (ConvNet
  couplings of three 3x3 convolutions, fixed prior) at the same levels, steps and width:
  16x16x1, 2 levels x 4 steps x 64 filters, batch 64 (``benchmarks/flows.py``'s row), and
  32x32x3, 3 levels x 4 steps x 64 filters, batch 16.

The float32 matmul rate of this machine is measured in the same run (JAX, 2048^2 chain,
as ``benchmarks/flows.py``; PyTorch's alongside); for the large rows the share of that
peak is ours' FLOPs per step (XLA's cost analysis) times steps/s, and theirs' from
``torch.utils.flop_counter`` of one step. PyTorch runs with ``torch.set_num_threads`` =
the core count, JAX on its defaults. On a GPU both run there unchanged (torch on cuda).
PyTorch and torchdiffeq come from the ``benchmarks`` extra (``pip install -e .[benchmarks]``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from sklearn import datasets as sk_datasets

from nflax import bijectors, densities, engine, fitting

ROWS = ('alignflow', 'maf', 'ffjord', 'glow16', 'glow32')
_ROWS = flags.DEFINE_list('rows', list(ROWS), f'Rows to run, of {ROWS}.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Paired timed repeats per measurement.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smaller step counts and 2 repeats (smoke check).')
_OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the results.')
_MAF_SAMPLES = flags.DEFINE_integer('maf_samples', 16,
                                    'Samples per timed MAF inverse (theirs: 3920 MADE passes).')
_PROPOSALS = flags.DEFINE_integer('proposals', 5000,
                                  'Ours only: one batch of SIR proposals from the MAF, timed.')

_torch = None
_device = None


def _import_torch():
  """Imports torch (the benchmarks extra) and picks its device: cuda if available."""
  global _torch, _device
  if _torch is None:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    _torch = torch
    _device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  return _torch


def _sync():
  if _device is not None and _device.type == 'cuda':
    _torch.cuda.synchronize()


def _timed(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  out = fn()
  jax.block_until_ready(out)
  _sync()
  return time.perf_counter() - start


def _stats(values: list[float]) -> dict:
  return {'median': statistics.median(values), 'min': min(values), 'max': max(values),
          'values': values}


def paired(ours: Callable[[], object], theirs: Callable[[], object], units_ours: float,
           units_theirs: float, repeats: int) -> dict:
  """Rates (units/s) of ``ours`` and ``theirs``, alternating, after one warm-up call each."""
  _timed(ours)
  _timed(theirs)
  rate_ours, rate_theirs, ratio = [], [], []
  for _ in range(repeats):
    rate_ours.append(units_ours / _timed(ours))
    rate_theirs.append(units_theirs / _timed(theirs))
    ratio.append(rate_ours[-1] / rate_theirs[-1])
  return {'ours': _stats(rate_ours), 'theirs': _stats(rate_theirs), 'ratio': _stats(ratio)}


# --- our side: the engine's training step and the density's sampling -------------------------

class Ours:
  """One JAX flow density: ``train(n)`` runs n engine steps from the same initial state."""

  def __init__(self, flow, event_shape, data: np.ndarray, batch_size: int, optimizer,
               num_steps: int, variables_fn=None):
    self.density = densities.FlowDensity(flow, densities.StandardNormal(tuple(event_shape)))
    data = jnp.asarray(data)
    variables = self.density.init(jax.random.PRNGKey(1), data[:batch_size])
    if variables_fn is not None:
      variables = variables_fn(variables)
    self.variables = variables
    run_ = fitting.init_fit_run(engine.add_replica_axis(variables), optimizer)
    step_fn = fitting.GradientStep(fitting.nll_objective(self.density), optimizer)
    data_r, keys = data[None], jax.random.PRNGKey(2)[None]
    kwargs = dict(step_fn=step_fn, batch_size=batch_size, num_steps=num_steps, guard=False)
    self.num_steps = num_steps
    self.train = lambda: engine.dispatch(run_, data_r, keys, **kwargs)
    compiled = engine.dispatch.lower(run_, data_r, keys, **{**kwargs, 'num_steps': 1}).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    self.flops_per_step = float(cost.get('flops', float('nan')))
    self._samplers = {}

  def sampler(self, num_samples: int) -> Callable[[], object]:
    if num_samples not in self._samplers:
      density, variables = self.density, self.variables
      self._samplers[num_samples] = jax.jit(lambda key: density.apply(
          variables, key, num_samples, method=type(density).sample))
    fn = self._samplers[num_samples]
    return lambda: fn(jax.random.PRNGKey(3))


# --- their side: a generic PyTorch training loop ------------------------------------------------

class Theirs:
  """A PyTorch model's training loop: ``train()`` runs n steps of ``loss_fn(batch)``."""

  def __init__(self, model, loss_fn, optimizer, data: np.ndarray, batch_size: int,
               num_steps: int, reset_state: bool = False):
    torch = _import_torch()
    self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
    self.data = torch.as_tensor(np.asarray(data), dtype=torch.float32, device=_device)
    self.batch_size, self.num_steps = batch_size, num_steps
    self.generator = torch.Generator(device='cpu').manual_seed(0)
    self.initial = ({k: v.clone() for k, v in model.state_dict().items()}
                    if reset_state else None)
    self.optimizer_initial = optimizer.state_dict() if reset_state else None

  def step(self):
    torch = _torch
    idx = torch.randint(0, self.data.shape[0], (self.batch_size,), generator=self.generator)
    batch = self.data[idx.to(_device)]
    self.optimizer.zero_grad()
    loss = self.loss_fn(batch)
    loss.backward()
    self.optimizer.step()
    return loss

  def train(self):
    self.model.train()
    if self.initial is not None:
      self.model.load_state_dict(self.initial)
      self.optimizer.load_state_dict(self.optimizer_initial)
    loss = None
    for _ in range(self.num_steps):
      loss = self.step()
    return float(loss.detach())

  def flops_per_step(self) -> float:
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=import-outside-toplevel
    state = {k: v.clone() for k, v in self.model.state_dict().items()}
    optimizer_state = self.optimizer.state_dict()
    with FlopCounterMode(display=False) as counter:
      self.step()
    self.model.load_state_dict(state)
    self.optimizer.load_state_dict(optimizer_state)
    return float(counter.get_total_flops())


def _normal_log_prob_sum(z):
  torch = _torch
  return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(-1)


# --- AlignFlow's Real NVP (after ermongroup/alignflow models/real_nvp) -------------------------

def _torch_squeeze(x, reverse=False):
  b, c, h, w = x.shape
  if not reverse:
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)
  x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
  return x.reshape(b, c // 4, h * 2, w * 2)


def _alignflow_torch(in_channels: int, mid_channels: int, num_blocks: int, num_scales: int):
  torch = _import_torch()
  nn, F = torch.nn, torch.nn.functional
  weight_norm = nn.utils.parametrizations.weight_norm

  def wn_conv(cin, cout, k, pad, bias=True):
    return weight_norm(nn.Conv2d(cin, cout, k, padding=pad, bias=bias))

  class Block(nn.Module):  # pre-activation residual block: BN, ReLU, WN conv, twice
    def __init__(self, c):
      super().__init__()
      self.n1, self.c1 = nn.BatchNorm2d(c), wn_conv(c, c, 3, 1, bias=False)
      self.n2, self.c2 = nn.BatchNorm2d(c), wn_conv(c, c, 3, 1)

    def forward(self, x):
      return x + self.c2(F.relu(self.n2(self.c1(F.relu(self.n1(x))))))

  class STNet(nn.Module):  # in conv, residual blocks each with a 1x1 skip, BN, ReLU, 1x1 out
    def __init__(self, cin, mid, cout):
      super().__init__()
      self.inp, self.skip0 = wn_conv(cin, mid, 3, 1), wn_conv(mid, mid, 1, 0)
      self.blocks = nn.ModuleList([Block(mid) for _ in range(num_blocks)])
      self.skips = nn.ModuleList([wn_conv(mid, mid, 1, 0) for _ in range(num_blocks)])
      self.norm, self.out = nn.BatchNorm2d(mid), wn_conv(mid, cout, 1, 0)

    def forward(self, x):
      x = self.inp(x)
      skip = self.skip0(x)
      for block, s in zip(self.blocks, self.skips):
        x = block(x)
        skip = skip + s(x)
      return self.out(F.relu(self.norm(skip)))

  class Coupling(nn.Module):
    def __init__(self, c, mid, checkerboard, flip):
      super().__init__()
      self.checkerboard, self.flip = checkerboard, flip
      if checkerboard:
        self.norm = nn.BatchNorm2d(c, affine=False)
        self.net = STNet(2 * c + 1, mid, 2 * c)
      else:
        self.norm = nn.BatchNorm2d(c // 2, affine=False)
        self.net = STNet(c, mid, c)
      self.s_scale = nn.Parameter(torch.ones(1))
      self.s_shift = nn.Parameter(torch.zeros(1))

    def forward(self, x, sldj, reverse=False):
      if self.checkerboard:
        h, w = x.shape[2:]
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        b = (((ii + jj) % 2) == int(self.flip)).to(x).view(1, 1, h, w)
        xb = 2.0 * self.norm(x * b)
        b = b.expand(x.shape[0], -1, -1, -1)
        s, t = self.net(F.relu(torch.cat([xb, -xb, b], 1))).chunk(2, 1)
        s = (self.s_scale * torch.tanh(s) + self.s_shift) * (1 - b)
        t = t * (1 - b)
        if reverse:
          return x * torch.exp(-s) - t, sldj
        return (x + t) * torch.exp(s), sldj + s.flatten(1).sum(-1)
      if self.flip:
        x_id, x_change = x.chunk(2, 1)
      else:
        x_change, x_id = x.chunk(2, 1)
      st = self.norm(x_id)
      s, t = self.net(F.relu(torch.cat([st, -st], 1))).chunk(2, 1)
      s = self.s_scale * torch.tanh(s) + self.s_shift
      if reverse:
        x_change = x_change * torch.exp(-s) - t
      else:
        x_change = (x_change + t) * torch.exp(s)
        sldj = sldj + s.flatten(1).sum(-1)
      parts = (x_id, x_change) if self.flip else (x_change, x_id)
      return torch.cat(parts, 1), sldj

  class Scale(nn.Module):
    def __init__(self, index, c, mid):
      super().__init__()
      self.last = index == num_scales - 1
      self.inc = nn.ModuleList([Coupling(c, mid, True, f) for f in (False, True, False)])
      if self.last:
        self.inc.append(Coupling(c, mid, True, True))
      else:
        self.outc = nn.ModuleList([Coupling(4 * c, 2 * mid, False, f)
                                   for f in (False, True, False)])
        self.next = Scale(index + 1, 2 * c, 2 * mid)

    def forward(self, x, sldj, reverse=False):
      if not reverse:
        for c in self.inc:
          x, sldj = c(x, sldj)
        if not self.last:
          x = _torch_squeeze(x)
          for c in self.outc:
            x, sldj = c(x, sldj)
          x, x_split = x.chunk(2, 1)
          x, sldj = self.next(x, sldj)
          x = _torch_squeeze(torch.cat([x, x_split], 1), reverse=True)
        return x, sldj
      if not self.last:
        x, x_split = _torch_squeeze(x).chunk(2, 1)
        x, sldj = self.next(x, sldj, True)
        x = torch.cat([x, x_split], 1)
        for c in reversed(self.outc):
          x, sldj = c(x, sldj, True)
        x = _torch_squeeze(x, reverse=True)
      for c in reversed(self.inc):
        x, sldj = c(x, sldj, True)
      return x, sldj

  class RealNVP(nn.Module):
    def __init__(self):
      super().__init__()
      self.flows = Scale(0, in_channels, mid_channels)
      self.constraint = 0.9

    def forward(self, x):  # x in [-1, 1]: un-normalise, de-quantise, logit (with its ldj)
      x = x * 0.5 + 0.5
      x = (x * 255.0 + torch.rand_like(x)) / 256.0
      y = ((2 * x - 1) * self.constraint + 1) / 2
      y = y.log() - (1.0 - y).log()
      c = self.constraint
      ldj = F.softplus(y) + F.softplus(-y) - math.log1p(-c) + math.log(c)
      return self.flows(y, ldj.flatten(1).sum(-1))

    def sample(self, n, shape):
      z = torch.randn(n, *shape, device=_device)
      return torch.sigmoid(self.flows(z, None, True)[0])

  model = RealNVP().to(_device)
  for m in model.modules():  # their 'normal' initialiser: N(0, 0.02) convs, N(1, 0.02) BN
    if isinstance(m, nn.Conv2d):
      nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)
  return model


def row_alignflow(repeats: int, quick: bool) -> dict:
  torch = _import_torch()
  size, channels, batch = (16, 3, 16) if quick else (32, 3, 16)
  steps = 1  # ~100 GFLOP per step at 32x32 (both sides): one step per timed run
  repeats = min(repeats, 3)
  rng = np.random.default_rng(0)
  data = np.clip(rng.normal(0, 0.5, (256, size, size, channels)), -1, 1).astype(np.float32)
  num_levels, hidden, num_blocks = 3, 32, 4
  flow = bijectors.Chain([
      bijectors.ScaleShift(scale=0.5, shift=0.5), bijectors.Logit(alpha=0.05),
      bijectors.realnvp_image(num_levels=num_levels, hidden_channels=hidden,
                              num_blocks=num_blocks, num_checkerboard=3, num_channelwise=3,
                              num_final=4)])
  optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(2e-4, b1=0.5, b2=0.999))
  ours = Ours(flow, (size, size, channels), data, batch, optimizer, steps)
  model = _alignflow_torch(channels, hidden, num_blocks, num_levels)
  norm = [p for n, p in model.named_parameters() if n.endswith('original0')]
  other = [p for n, p in model.named_parameters() if not n.endswith('original0')]
  opt = torch.optim.Adam([{'params': norm, 'weight_decay': 5e-5}, {'params': other}],
                         lr=2e-4, betas=(0.5, 0.999))
  num_dims = size * size * channels

  def loss_fn(x):  # their RealNVPLoss: -(log N(z) - D log 256 + sldj), batch mean
    z, sldj = model(x)
    return -(_normal_log_prob_sum(z) - num_dims * math.log(256) + sldj).mean()

  theirs = Theirs(model, loss_fn, opt, data.transpose(0, 3, 1, 2), batch, steps)
  result = {'name': f'AlignFlow Real NVP {channels}x{size}x{size}, 3 scales, 4 res. blocks, '
                    f'32 ch, batch {batch}',
            'train': paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}
  sample_ours = ours.sampler(batch)

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch, (channels, size, size)).sum().item()

  result['sample'] = paired(sample_ours, sample_theirs, batch, batch, repeats)
  return result


# --- MAF 784-D (after f-dre / kamenbliznashki MADE and MAF) -----------------------------------

def _maf_torch(dim: int, hidden: int, num_blocks: int):
  torch = _import_torch()
  nn, F = torch.nn, torch.nn.functional

  class MaskedLinear(nn.Linear):
    def __init__(self, n_in, n_out, mask):
      super().__init__(n_in, n_out)
      self.register_buffer('mask', mask)

    def forward(self, x):
      return F.linear(x, self.weight * self.mask, self.bias)

  class MADE(nn.Module):
    def __init__(self, degrees_in):
      super().__init__()
      self.degrees_in = degrees_in
      degrees_hidden = torch.arange(hidden) % (dim - 1)
      m1 = (degrees_hidden[:, None] >= degrees_in[None, :]).float()
      m2 = (degrees_in[:, None] > degrees_hidden[None, :]).float()
      self.net_input = MaskedLinear(dim, hidden, m1)
      self.net = nn.Sequential(nn.ReLU(), MaskedLinear(hidden, 2 * dim, m2.repeat(2, 1)))

    def forward(self, x):
      m, loga = self.net(self.net_input(x)).chunk(2, 1)
      return (x - m) * torch.exp(-loga), -loga

    def inverse(self, u):  # one full MADE pass per input degree, as the original
      x = torch.zeros_like(u)
      for i in torch.argsort(self.degrees_in):
        m, loga = self.net(self.net_input(x)).chunk(2, 1)
        x[:, i] = u[:, i] * torch.exp(loga[:, i]) + m[:, i]
      return x, loga

  class BatchNorm(nn.Module):
    def __init__(self, momentum=0.9, eps=1e-5):
      super().__init__()
      self.momentum, self.eps = momentum, eps
      self.log_gamma = nn.Parameter(torch.zeros(dim))
      self.beta = nn.Parameter(torch.zeros(dim))
      self.register_buffer('running_mean', torch.zeros(dim))
      self.register_buffer('running_var', torch.ones(dim))

    def forward(self, x):
      if self.training:
        mean, var = x.mean(0), x.var(0)
        with torch.no_grad():
          self.running_mean.mul_(self.momentum).add_(mean.detach() * (1 - self.momentum))
          self.running_var.mul_(self.momentum).add_(var.detach() * (1 - self.momentum))
      else:
        mean, var = self.running_mean, self.running_var
      y = self.log_gamma.exp() * (x - mean) / torch.sqrt(var + self.eps) + self.beta
      return y, self.log_gamma - 0.5 * torch.log(var + self.eps)

    def inverse(self, y):
      mean, var = self.running_mean, self.running_var
      x = (y - self.beta) * torch.exp(-self.log_gamma) * torch.sqrt(var + self.eps) + mean
      return x, -self.log_gamma + 0.5 * torch.log(var + self.eps)

  class MAF(nn.Module):
    def __init__(self):
      super().__init__()
      layers, degrees = [], torch.arange(dim)
      for _ in range(num_blocks):
        layers += [MADE(degrees), BatchNorm()]
        degrees = degrees.flip(0)
      self.layers = nn.ModuleList(layers)

    def log_prob(self, x):
      total = 0
      for layer in self.layers:
        x, ldj = layer(x)
        total = total + ldj
      return (-0.5 * x.pow(2) - 0.5 * math.log(2 * math.pi) + total).sum(1)

    def sample(self, n):
      x = torch.randn(n, dim, device=_device)
      for layer in reversed(self.layers):
        x, _ = layer.inverse(x)
      return x

  return MAF().to(_device)


def row_maf(repeats: int, quick: bool) -> dict:
  torch = _import_torch()
  dim, hidden, num_blocks, batch = (196, 256, 5, 100) if quick else (784, 1024, 5, 100)
  steps = 5 if quick else 20
  data = np.random.default_rng(0).normal(size=(2000, dim)).astype(np.float32)
  optimizer = optax.chain(optax.add_decayed_weights(1e-6), optax.adam(1e-4))
  ours = Ours(bijectors.maf(num_blocks, (hidden,), batch_norm=True), (dim,), data, batch,
              optimizer, steps)
  model = _maf_torch(dim, hidden, num_blocks)
  opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-6)
  theirs = Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data, batch, steps)
  result = {'name': f'MAF {dim}-D, 5 MADE x 1 hidden of {hidden}, batch norm, batch {batch}',
            'train': paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}
  n = _MAF_SAMPLES.value

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(n).sum().item()

  result['sample'] = paired(ours.sampler(n), sample_theirs, n, n, max(2, repeats // 2))
  result['sample_batch'] = n
  if not quick and _PROPOSALS.value:
    proposals = ours.sampler(_PROPOSALS.value)
    _timed(proposals)
    result['ours_proposals_seconds'] = _timed(proposals)
    result['ours_proposals'] = _PROPOSALS.value
  return result


# --- FFJORD 2-D (LRMF's variant; torchdiffeq as rtqichen/ffjord uses it) -----------------------

def _ffjord_torch(jax_params: list[dict], hidden, dim: int, rtol: float, atol: float):
  torch = _import_torch()
  import torchdiffeq  # pylint: disable=import-outside-toplevel
  nn = torch.nn

  class ODEFunc(nn.Module):
    def __init__(self, params):
      super().__init__()
      widths = [dim + 1, *hidden, dim]
      self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
      with torch.no_grad():
        for index, layer in enumerate(self.layers):
          dense = params[f'Dense_{index}']
          layer.weight.copy_(torch.as_tensor(np.array(dense['kernel']).T))
          layer.bias.copy_(torch.as_tensor(np.array(dense['bias'])))
      self.nfe = 0

    def net(self, t, z):
      h = torch.cat([z, t.expand(z.shape[0], 1).to(z)], 1)
      for index, layer in enumerate(self.layers):
        h = layer(h)
        if index < len(self.layers) - 1:
          h = torch.tanh(h)
      return h

    def forward(self, t, states):  # FFJORD's ODEfunc with the brute-force divergence
      self.nfe += 1
      z = states[0]
      with torch.set_grad_enabled(True):
        z.requires_grad_(True)
        dz = self.net(t, z)
        divergence = 0.0
        for i in range(dim):
          divergence += torch.autograd.grad(dz[:, i].sum(), z, create_graph=True)[0][:, i]
      return dz, -divergence.view(-1, 1)

  class CNF(nn.Module):
    def __init__(self, params):
      super().__init__()
      self.func = ODEFunc(params)

    def forward(self, z, logpz, reverse=False):
      times = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0]).to(z)
      z_t, logpz_t = torchdiffeq.odeint_adjoint(self.func, (z, logpz), times, rtol=rtol,
                                                atol=atol, method='dopri5')
      return z_t[-1], logpz_t[-1]

  class Stack(nn.Module):
    def __init__(self):
      super().__init__()
      self.blocks = nn.ModuleList([CNF(p) for p in jax_params])

    def log_prob(self, x):
      delta = torch.zeros(x.shape[0], 1, device=x.device)
      for block in self.blocks:
        x, delta = block(x, delta)
      return _normal_log_prob_sum(x) - delta.view(-1)

    def sample(self, n):
      z = torch.randn(n, dim, device=_device)
      delta = torch.zeros(n, 1, device=_device)
      for block in reversed(self.blocks):
        z, delta = block(z, delta, reverse=True)
      return z

  return Stack().to(_device)


def row_ffjord(repeats: int, quick: bool) -> dict:
  torch = _import_torch()
  batch, hidden, rtol, atol = 256, (16, 16, 16), 1e-5, 1e-5
  steps = 2 if quick else 5
  data, _ = sk_datasets.make_moons(n_samples=2000, noise=0.05, random_state=0)
  data = ((data - data.mean(0)) / data.std(0)).astype(np.float32)

  def nonzero(variables):  # zero-initialised output layers would give f = 0 (no ODE to solve)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
    leaves = [jax.random.normal(k, x.shape, x.dtype) * (0.6 / math.sqrt(x.shape[0])
                                                          if x.ndim == 2 else 0.1)
              for k, x in zip(keys, leaves)]
    return jax.tree.unflatten(tree, leaves)

  ours = Ours(bijectors.ffjord(2, hidden, 'exact', rtol=rtol, atol=atol), (2,), data, batch,
              optax.adam(1e-3), steps, variables_fn=nonzero)
  params = ours.variables['params']['flow']
  jax_params = [params[f'layers_{i}']['dynamics'] for i in range(2)]
  model = _ffjord_torch(jax_params, hidden, 2, rtol, atol)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  theirs = Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data, batch, steps,
                  reset_state=True)
  nfe_before = sum(b.func.nfe for b in model.blocks)
  theirs.train()
  nfe = (sum(b.func.nfe for b in model.blocks) - nfe_before) / steps
  # our log-likelihood at the start equals theirs (same ODE, same tolerances)
  x0 = data[:batch]
  ours_ll = float(jnp.mean(ours.density.apply(ours.variables, jnp.asarray(x0),
                                              method=type(ours.density).log_prob)))
  model.load_state_dict(theirs.initial)
  theirs_ll = float(model.log_prob(torch.as_tensor(x0, device=_device)).mean().detach())
  result = {'name': f'FFJORD 2-D, 2 blocks, tanh [16,16,16], exact trace, dopri5 rtol=atol=1e-5, '
                    f'batch {batch}',
            'train': paired(ours.train, theirs.train, steps, steps, repeats),
            'theirs_nfe_per_step': nfe, 'log_prob_ours': ours_ll, 'log_prob_theirs': theirs_ll}

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch).sum().item()

  model.load_state_dict(theirs.initial)
  result['sample'] = paired(ours.sampler(batch), sample_theirs, batch, batch, repeats)
  return result


# --- Glow (after kamenbliznashki/normalizing_flows, as in f-dre) -------------------------------

def _glow_torch(in_channels: int, size: int, width: int, depth: int, num_levels: int):
  torch = _import_torch()
  nn, F = torch.nn, torch.nn.functional

  class ActNorm(nn.Module):
    def __init__(self, c):
      super().__init__()
      self.scale = nn.Parameter(torch.ones(1, c, 1, 1))
      self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
      self.register_buffer('initialized', torch.tensor(0))

    def forward(self, x):
      if not self.initialized:
        with torch.no_grad():
          self.bias.copy_(-x.mean((0, 2, 3), keepdim=True))
          self.scale.copy_(1 / (x.std((0, 2, 3), keepdim=True) + 1e-6))
          self.initialized.fill_(1)
      logdet = self.scale.abs().log().sum() * x.shape[2] * x.shape[3]
      return (x + self.bias) * self.scale, logdet

    def inverse(self, y):
      return y / self.scale - self.bias, -self.scale.abs().log().sum() * y.shape[2] * y.shape[3]

  class InvConvLU(nn.Module):
    def __init__(self, c):
      super().__init__()
      w = torch.linalg.qr(torch.randn(c, c))[0]
      p, lower, upper = torch.linalg.lu(w)
      s = upper.diag()
      self.register_buffer('p', p)
      self.register_buffer('sign_s', s.sign())
      self.register_buffer('l_mask', torch.tril(torch.ones(c, c), -1))
      self.register_buffer('eye', torch.eye(c))
      self.lower = nn.Parameter(lower)
      self.upper = nn.Parameter(torch.triu(upper, 1))
      self.log_s = nn.Parameter(s.abs().log())

    def weight(self):
      lower = self.lower * self.l_mask + self.eye
      upper = self.upper * self.l_mask.T + torch.diag(self.sign_s * self.log_s.exp())
      return self.p @ lower @ upper

    def forward(self, x):
      w = self.weight()
      return F.conv2d(x, w.view(*w.shape, 1, 1)), self.log_s.sum() * x.shape[2] * x.shape[3]

    def inverse(self, y):
      w = torch.inverse(self.weight())
      return F.conv2d(y, w.view(*w.shape, 1, 1)), -self.log_s.sum() * y.shape[2] * y.shape[3]

  class ZeroConv(nn.Conv2d):  # zero-initialised 3x3 conv with a learned output log-scale
    def __init__(self, cin, cout):
      super().__init__(cin, cout, 3, padding=1)
      nn.init.zeros_(self.weight)
      nn.init.zeros_(self.bias)
      self.log_scale = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x):
      return super().forward(x) * (self.log_scale * 3).exp()

  class Coupling(nn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv1 = nn.Conv2d(c // 2, width, 3, padding=1, bias=False)
      self.norm1 = ActNorm(width)
      self.conv2 = nn.Conv2d(width, width, 1, bias=False)
      self.norm2 = ActNorm(width)
      self.conv3 = ZeroConv(width, c)

    def net(self, x):
      h = F.relu(self.norm1(self.conv1(x))[0])
      h = F.relu(self.norm2(self.conv2(h))[0])
      return self.conv3(h)

    def forward(self, x):
      xa, xb = x.chunk(2, 1)
      h = self.net(xb)
      t, s = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
      return torch.cat([(xa + t) * s, xb], 1), s.log().flatten(1).sum(1)

    def inverse(self, y):
      ya, yb = y.chunk(2, 1)
      h = self.net(yb)
      t, s = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
      return torch.cat([ya / s - t, yb], 1), -s.log().flatten(1).sum(1)

  class Steps(nn.Module):
    def __init__(self, c):
      super().__init__()
      self.layers = nn.ModuleList()
      for _ in range(depth):
        self.layers.extend([ActNorm(c), InvConvLU(c), Coupling(c)])

    def forward(self, x):
      total = 0
      for layer in self.layers:
        x, ld = layer(x)
        total = total + ld
      return x, total

    def inverse(self, y):
      total = 0
      for layer in reversed(self.layers):
        y, ld = layer.inverse(y)
        total = total + ld
      return y, total

  class Gaussianize(nn.Module):  # learned conditional prior of a factored-out half
    def __init__(self, c):
      super().__init__()
      self.net = ZeroConv(c, 2 * c)

    def forward(self, x1, x2):
      h = self.net(x1)
      m, logs = h[:, 0::2], h[:, 1::2]
      return (x2 - m) * torch.exp(-logs), -logs.flatten(1).sum(1)

    def inverse(self, x1, z2):
      h = self.net(x1)
      m, logs = h[:, 0::2], h[:, 1::2]
      return m + z2 * torch.exp(logs), logs.flatten(1).sum(1)

  class Glow(nn.Module):
    def __init__(self):
      super().__init__()
      c = in_channels
      self.levels, self.splits = nn.ModuleList(), nn.ModuleList()
      for _ in range(num_levels - 1):
        self.levels.append(Steps(4 * c))
        self.splits.append(Gaussianize(2 * c))
        c = 2 * c
      self.final = Steps(4 * c)
      self.final_channels = 4 * c
      self.gaussianize = Gaussianize(4 * c)

    def log_prob(self, x):
      total, zs = 0, []
      for level, split in zip(self.levels, self.splits):
        x, ld = level(_torch_squeeze(x))
        x1, x2 = x.chunk(2, 1)
        z2, ld2 = split(x1, x2)
        total, x = total + ld + ld2, x1
        zs.append(z2)
      x, ld = self.final(_torch_squeeze(x))
      z, ld2 = self.gaussianize(torch.zeros_like(x), x)
      zs.append(z)
      return sum(_normal_log_prob_sum(z) for z in zs) + total + ld + ld2

    def sample(self, n):
      s = size // 2**num_levels
      z = torch.randn(n, self.final_channels, s, s, device=_device)
      x, _ = self.gaussianize.inverse(torch.zeros_like(z), z)
      x = _torch_squeeze(self.final.inverse(x)[0], reverse=True)
      for level, split in zip(reversed(self.levels), reversed(self.splits)):
        x2, _ = split.inverse(x, torch.randn_like(x))
        x = _torch_squeeze(level.inverse(torch.cat([x, x2], 1))[0], reverse=True)
      return x

  return Glow().to(_device)


def row_glow(repeats: int, quick: bool, big: bool) -> dict:
  torch = _import_torch()
  if big:
    size, channels, num_levels, depth, width, batch = 32, 3, 3, 4, 64, 16
  else:
    size, channels, num_levels, depth, width, batch = 16, 1, 2, 4, 64, 64
  if quick:
    depth, width = 2, 16
  steps = 2 if quick else 3
  data = np.random.default_rng(0).normal(size=(256, size, size, channels)).astype(np.float32)
  ours = Ours(bijectors.glow(num_levels=num_levels, steps_per_level=depth,
                             hidden_channels=width), (size, size, channels), data, batch,
              optax.adam(1e-3), steps)
  model = _glow_torch(channels, size, width, depth, num_levels)
  data_t = data.transpose(0, 3, 1, 2)
  with torch.no_grad():  # ActNorm's data-dependent initialisation on a first batch
    model.log_prob(torch.as_tensor(data_t[:batch], device=_device))
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  theirs = Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data_t, batch, steps)
  result = {'name': f'Glow {channels}x{size}x{size}, {num_levels} levels x {depth} steps, '
                    f'{width} filters, batch {batch}',
            'train': paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch).sum().item()

  result['sample'] = paired(ours.sampler(batch), sample_theirs, batch, batch, repeats)
  return result


# --- main ---------------------------------------------------------------------------------------

def jax_matmul_gflops(size: int, repeats: int) -> float:
  """float32 GFLOP/s of a jitted ``size x size`` matmul chain (as ``benchmarks/flows.py``)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  step = jax.jit(lambda a, b: jax.lax.fori_loop(0, 4, lambda _, x: (x @ b) * 1e-3, a))
  _timed(lambda: step(a, b))
  return 2 * size**3 * 4 / statistics.median(_timed(lambda: step(a, b))
                                              for _ in range(repeats)) / 1e9


def torch_matmul_gflops(size: int, repeats: int) -> float:
  torch = _import_torch()
  a = torch.randn(size, size, device=_device)
  b = torch.randn(size, size, device=_device)

  def chain():
    x = a
    for _ in range(4):
      x = (x @ b) * 1e-3
    return x

  chain()
  _sync()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    chain()
    _sync()
    times.append(time.perf_counter() - start)
  return 2 * size**3 * 4 / statistics.median(times) / 1e9


def _fmt(s: dict, digits: int = 3) -> str:
  return f"{s['median']:.{digits}g} ({s['min']:.{digits}g}-{s['max']:.{digits}g})"


def table(results: dict) -> str:
  peak = results['matmul_gflops_jax']
  lines = ['| row | measurement | ours | theirs (PyTorch) | ratio ours/theirs (median, min-max) '
           '| % of matmul peak, ours / theirs |', '|---|---|---|---|---|---|']
  for r in results['rows'].values():
    for kind, unit in (('train', 'steps/s'), ('sample', 'samples/s')):
      if kind not in r:
        continue
      m = r[kind]
      share = ''
      if kind == 'train' and 'flops_ours' in r:
        ours = r['flops_ours'] * m['ours']['median'] / 1e9 / peak
        theirs = r['flops_theirs'] * m['theirs']['median'] / 1e9 / peak
        share = (f"{100 * ours:.1f}% ({r['flops_ours'] / 1e9:.2f} GFLOP/step) / "
                 f"{100 * theirs:.1f}% ({r['flops_theirs'] / 1e9:.2f} GFLOP/step)")
      label = 'training' if kind == 'train' else 'sampling'
      if kind == 'sample' and 'sample_batch' in r:
        label += f" ({r['sample_batch']} at once)"
      lines.append(f"| {r['name']} | {label} ({unit}) | {_fmt(m['ours'])} | "
                   f"{_fmt(m['theirs'])} | {_fmt(m['ratio'])} | {share} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  torch = _import_torch()
  quick = _QUICK.value
  repeats = 2 if quick else _REPEATS.value
  results = {
      'command': 'python -m benchmarks.originals ' + ' '.join(
          f'--{k}={v}' for k, v in (('rows', ','.join(_ROWS.value)), ('repeats', repeats))),
      'date': time.strftime('%Y-%m-%d %H:%M'),
      'machine': f'{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}',
      'jax_devices': [str(d) for d in jax.devices()], 'jax': jax.__version__,
      'torch_device': str(_device), 'torch': torch.__version__,
      'torch_threads': torch.get_num_threads(), 'repeats': repeats, 'quick': quick, 'rows': {}}
  print(f"JAX devices: {results['jax_devices']}   torch device: {_device} "
        f"({torch.get_num_threads()} threads)   {results['machine']}", flush=True)
  size = 512 if quick else 2048
  results['matmul_gflops_jax'] = jax_matmul_gflops(size, 5)
  results['matmul_gflops_torch'] = torch_matmul_gflops(size, 5)
  print(f"float32 matmul {size}^2: JAX {results['matmul_gflops_jax']:.1f} GFLOP/s, "
        f"PyTorch {results['matmul_gflops_torch']:.1f} GFLOP/s", flush=True)
  runners = {'alignflow': row_alignflow, 'maf': row_maf, 'ffjord': row_ffjord,
             'glow16': lambda r, q: row_glow(r, q, big=False),
             'glow32': lambda r, q: row_glow(r, q, big=True)}
  for name in _ROWS.value:
    start = time.perf_counter()
    results['rows'][name] = runners[name](repeats, quick)
    results['rows'][name]['wall_seconds'] = time.perf_counter() - start
    print(json.dumps({name: {k: (v['ratio']['median'] if isinstance(v, dict) and 'ratio' in v
                                  else v) for k, v in results['rows'][name].items()}},
                     default=str), flush=True)
    if _OUT.value:
      with open(_OUT.value, 'w') as f:
        json.dump(results, f, indent=2)
  print()
  print(table(results))
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
