"""The ``maf`` row: MAF 784-D (after f-dre / kamenbliznashki MADE and MAF).

The PyTorch version written here and ``row_maf``, which times it against ours with
:mod:`benchmarks.originals.timing`.
"""

from __future__ import annotations

import math

import numpy as np
import optax

from benchmarks.originals import timing
from nflax import bijectors


def _maf_torch(dim: int, hidden: int, num_blocks: int):
  torch = timing.import_torch()
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
      x = torch.randn(n, dim, device=timing.device)
      for layer in reversed(self.layers):
        x, _ = layer.inverse(x)
      return x

  return MAF().to(timing.device)


def row_maf(repeats: int, quick: bool, num_samples: int, num_proposals: int) -> dict:
  """``num_samples`` per timed inverse (``--maf_samples``); ``num_proposals``: ours only,
  one batch of SIR proposals from the MAF, timed (``--proposals``; 0 or quick: none)."""
  torch = timing.import_torch()
  dim, hidden, num_blocks, batch = (196, 256, 5, 100) if quick else (784, 1024, 5, 100)
  steps = 5 if quick else 20
  data = np.random.default_rng(0).normal(size=(2000, dim)).astype(np.float32)
  optimizer = optax.chain(optax.add_decayed_weights(1e-6), optax.adam(1e-4))
  ours = timing.Ours(bijectors.maf(num_blocks, (hidden,), batch_norm=True), (dim,), data,
                     batch, optimizer, steps)
  model = _maf_torch(dim, hidden, num_blocks)
  opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-6)
  theirs = timing.Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data, batch, steps)
  result = {'name': f'MAF {dim}-D, 5 MADE x 1 hidden of {hidden}, batch norm, batch {batch}',
            'train': timing.paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}
  n = num_samples

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(n).sum().item()

  result['sample'] = timing.paired(ours.sampler(n), sample_theirs, n, n, max(2, repeats // 2))
  result['sample_batch'] = n
  if not quick and num_proposals:
    proposals = ours.sampler(num_proposals)
    timing.timed(proposals)
    result['ours_proposals_seconds'] = timing.timed(proposals)
    result['ours_proposals'] = num_proposals
  return result
