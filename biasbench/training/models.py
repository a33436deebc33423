"""Models of the common protocol, registered by name.

Every model exposes `features(x)` (the penultimate representation) and `fc`
(the classifier), so methods that work on features (DisEnt, LfF variants)
need no model-specific code.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from biasbench.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = fn
        return fn

    return wrap


def names() -> list[str]:
    return sorted(_MODELS)


def create(name: str, num_classes: int, in_channels: int = 3, image_size: int = 28, width: int = 64) -> nn.Module:
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(names())}")
    return _MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size, width=width)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class SimpleCNN(nn.Module):
    """REST's CMNIST model (zhao1402072392/REST:simple_model.py as PROTOCOL.md describes it).

    3 x [Conv 4x4 stride 2 pad 1, no bias -> BatchNorm -> ReLU] with 64, 128,
    256 channels, global average pool, Linear(256, classes): 0.661 M params.
    """

    def __init__(self, num_classes: int, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in (64, 128, 256):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(256, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class MLP(nn.Module):
    """A ReLU MLP over the flattened image; `hidden` are the hidden layers' widths.

    LfF's CMNIST model has (100, 100, 100) (alinlab/LfF:module/mlp.py);
    DisEnt's has (100, 100, 16), both its `MLP` and the encoders of its
    `MLP_DISENTANGLE` (kakaoenterprise/Learning-Debiased-Disentangled:module/mlp.py).
    """

    def __init__(self, num_classes: int, in_features: int, hidden: tuple[int, ...] = (100, 100, 100)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip((in_features, *hidden[:-1]), hidden):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(hidden[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with a variable width; stages of w, 2w, 4w, 8w channels.

    stem "imagenet" (the default, `resnet18`): 7x7 stride-2 conv + 3x3
    stride-2 max-pool at every input size, as REST's `resnet18vw`
    (zhao1402072392/REST:variable_width_resnet.py, which REST trains on
    CIFAR-10-C and BFFHQ) and DisEnt's torchvision resnet18 do; at 32x32 the
    last feature map is 1x1 and a forward pass at width 64 is 7.4e7 FLOPs.
    stem "cifar" (`resnet18_cifar`, an option no reference uses here): 3x3
    stride-1 conv, no pool; 1.1e9 FLOPs at 32x32 and a 4x4 last map.
    Init as both references: convs kaiming-normal (fan_out, ReLU), BN weight 1
    and bias 0, the classifier torch's default.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, stem: str = "imagenet"):
        super().__init__()
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
            )
        elif stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            raise ValueError(f"unknown ResNet stem {stem!r} (imagenet or cifar)")
        stages, c_in = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2**i
            stages += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@register("simple_cnn")
def _simple_cnn(num_classes: int, in_channels: int, image_size: int, width: int) -> nn.Module:
    return SimpleCNN(num_classes, in_channels)


@register("mlp")
def _mlp(num_classes: int, in_channels: int, image_size: int, width: int) -> nn.Module:
    return MLP(num_classes, in_channels * image_size * image_size)


@register("mlp_disent")
def _mlp_disent(num_classes: int, in_channels: int, image_size: int, width: int) -> nn.Module:
    return MLP(num_classes, in_channels * image_size * image_size, hidden=(100, 100, 16))


@register("resnet18")
def _resnet18(num_classes: int, in_channels: int, image_size: int, width: int) -> nn.Module:
    return ResNet18(num_classes, in_channels, width=width, stem="imagenet")


@register("resnet18_cifar")
def _resnet18_cifar(num_classes: int, in_channels: int, image_size: int, width: int) -> nn.Module:
    return ResNet18(num_classes, in_channels, width=width, stem="cifar")
