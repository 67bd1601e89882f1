"""The ``alignflow`` row: AlignFlow's Real NVP (after ermongroup/alignflow models/real_nvp).

The PyTorch version written here and ``row_alignflow``, which times it against ours with
:mod:`benchmarks.originals.timing`.
"""

from __future__ import annotations

import math

import numpy as np
import optax

from benchmarks.originals import timing
from nflax import bijectors


def _alignflow_torch(in_channels: int, mid_channels: int, num_blocks: int, num_scales: int):
  torch = timing.import_torch()
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
          x = timing.torch_squeeze(x)
          for c in self.outc:
            x, sldj = c(x, sldj)
          x, x_split = x.chunk(2, 1)
          x, sldj = self.next(x, sldj)
          x = timing.torch_squeeze(torch.cat([x, x_split], 1), reverse=True)
        return x, sldj
      if not self.last:
        x, x_split = timing.torch_squeeze(x).chunk(2, 1)
        x, sldj = self.next(x, sldj, True)
        x = torch.cat([x, x_split], 1)
        for c in reversed(self.outc):
          x, sldj = c(x, sldj, True)
        x = timing.torch_squeeze(x, reverse=True)
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
      z = torch.randn(n, *shape, device=timing.device)
      return torch.sigmoid(self.flows(z, None, True)[0])

  model = RealNVP().to(timing.device)
  for m in model.modules():  # their 'normal' initialiser: N(0, 0.02) convs, N(1, 0.02) BN
    if isinstance(m, nn.Conv2d):
      nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)
  return model


def row_alignflow(repeats: int, quick: bool) -> dict:
  torch = timing.import_torch()
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
  ours = timing.Ours(flow, (size, size, channels), data, batch, optimizer, steps)
  model = _alignflow_torch(channels, hidden, num_blocks, num_levels)
  norm = [p for n, p in model.named_parameters() if n.endswith('original0')]
  other = [p for n, p in model.named_parameters() if not n.endswith('original0')]
  opt = torch.optim.Adam([{'params': norm, 'weight_decay': 5e-5}, {'params': other}],
                         lr=2e-4, betas=(0.5, 0.999))
  num_dims = size * size * channels

  def loss_fn(x):  # their RealNVPLoss: -(log N(z) - D log 256 + sldj), batch mean
    z, sldj = model(x)
    return -(timing.normal_log_prob_sum(z) - num_dims * math.log(256) + sldj).mean()

  theirs = timing.Theirs(model, loss_fn, opt, data.transpose(0, 3, 1, 2), batch, steps)
  result = {'name': f'AlignFlow Real NVP {channels}x{size}x{size}, 3 scales, 4 res. blocks, '
                    f'32 ch, batch {batch}',
            'train': timing.paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}
  sample_ours = ours.sampler(batch)

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch, (channels, size, size)).sum().item()

  result['sample'] = timing.paired(sample_ours, sample_theirs, batch, batch, repeats)
  return result
