"""The ``glow16`` / ``glow32`` rows: Glow (after kamenbliznashki/normalizing_flows, as in f-dre).

The PyTorch version written here and ``row_glow``, which times it against ours with
:mod:`benchmarks.originals.timing`.
"""

from __future__ import annotations

import numpy as np
import optax

from benchmarks.originals import timing
from nflax import bijectors


def _glow_torch(in_channels: int, size: int, width: int, depth: int, num_levels: int):
  torch = timing.import_torch()
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
        x, ld = level(timing.torch_squeeze(x))
        x1, x2 = x.chunk(2, 1)
        z2, ld2 = split(x1, x2)
        total, x = total + ld + ld2, x1
        zs.append(z2)
      x, ld = self.final(timing.torch_squeeze(x))
      z, ld2 = self.gaussianize(torch.zeros_like(x), x)
      zs.append(z)
      return sum(timing.normal_log_prob_sum(z) for z in zs) + total + ld + ld2

    def sample(self, n):
      s = size // 2**num_levels
      z = torch.randn(n, self.final_channels, s, s, device=timing.device)
      x, _ = self.gaussianize.inverse(torch.zeros_like(z), z)
      x = timing.torch_squeeze(self.final.inverse(x)[0], reverse=True)
      for level, split in zip(reversed(self.levels), reversed(self.splits)):
        x2, _ = split.inverse(x, torch.randn_like(x))
        x = timing.torch_squeeze(level.inverse(torch.cat([x, x2], 1))[0], reverse=True)
      return x

  return Glow().to(timing.device)


def row_glow(repeats: int, quick: bool, big: bool) -> dict:
  torch = timing.import_torch()
  if big:
    size, channels, num_levels, depth, width, batch = 32, 3, 3, 4, 64, 16
  else:
    size, channels, num_levels, depth, width, batch = 16, 1, 2, 4, 64, 64
  if quick:
    depth, width = 2, 16
  steps = 2 if quick else 3
  data = np.random.default_rng(0).normal(size=(256, size, size, channels)).astype(np.float32)
  ours = timing.Ours(bijectors.glow(num_levels=num_levels, steps_per_level=depth,
                                    hidden_channels=width), (size, size, channels), data, batch,
                     optax.adam(1e-3), steps)
  model = _glow_torch(channels, size, width, depth, num_levels)
  data_t = data.transpose(0, 3, 1, 2)
  with torch.no_grad():  # ActNorm's data-dependent initialisation on a first batch
    model.log_prob(torch.as_tensor(data_t[:batch], device=timing.device))
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  theirs = timing.Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data_t, batch, steps)
  result = {'name': f'Glow {channels}x{size}x{size}, {num_levels} levels x {depth} steps, '
                    f'{width} filters, batch {batch}',
            'train': timing.paired(ours.train, theirs.train, steps, steps, repeats),
            'flops_ours': ours.flops_per_step, 'flops_theirs': theirs.flops_per_step()}

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch).sum().item()

  result['sample'] = timing.paired(ours.sampler(batch), sample_theirs, batch, batch, repeats)
  return result
