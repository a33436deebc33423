"""Batches by index from tensors already in memory, with resumable randomness.

The order of samples is a pure function of (seed, epoch): epoch e's order is
a permutation (or, when resampling, a weighted draw with replacement) from a
generator seeded with (seed, e). The sampler's whole state is therefore two
integers, which makes resuming from a checkpoint exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return g


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on `device`; to CUDA through pinned memory without blocking the host."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class IndexStream:
    """An endless stream of index batches, epoch after epoch.

    The order is drawn on the CPU (the same batches on every device); with a
    CUDA `device`, each epoch's order is copied there once, so a step's
    indices are a slice on the device and no step waits on a copy.
    """

    def __init__(self, n: int, batch_size: int, seed: int, weights: torch.Tensor | None = None,
                 device: torch.device | None = None):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.weights = None if weights is None else weights.double()
        self.device = device
        self.epoch, self.offset = 0, 0
        self._order = self._make_order(0)

    def _make_order(self, epoch: int) -> torch.Tensor:
        g = _epoch_generator(self.seed, epoch)
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
        return order if self.device is None else to_device(order, self.device)

    def next(self) -> torch.Tensor:
        parts, need = [], self.batch_size
        while need:
            take = self._order[self.offset : self.offset + need]
            parts.append(take)
            need -= len(take)
            self.offset += len(take)
            if self.offset == self.n:
                self.epoch, self.offset = self.epoch + 1, 0
                self._order = self._make_order(self.epoch)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def set_weights(self, weights: torch.Tensor | None, new_epoch: bool) -> None:
        """Draw from now on with these weights; `new_epoch` starts a fresh epoch (a method's stage change)."""
        self.weights = None if weights is None else weights.double()
        if new_epoch:
            self.epoch, self.offset = self.epoch + 1, 0
        self._order = self._make_order(self.epoch)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._order = self._make_order(self.epoch)


class Preprocess:
    """uint8 (B, C, H, W) -> float input: resize, augment (train only), scale, normalise.

    Augmentation runs on whole batches of tensors on the data's device, with
    its own generator so that it is reproducible and resumable.
    """

    def __init__(self, image_size: int, augment: tuple[str, ...], normalize, seed: int, device: torch.device,
                 memory_format: torch.memory_format = torch.channels_last, input_divisor: float = 1.0):
        self.image_size, self.augment = image_size, tuple(augment)
        self.input_divisor = float(input_divisor)
        self.memory_format = memory_format
        self.device = device
        self.generator = torch.Generator()
        self.generator.manual_seed((seed * 7_919 + 17) % (2**63))
        if normalize is None:
            self.mean = self.std = None
        else:
            self.mean = torch.tensor(normalize[0], device=device).view(1, -1, 1, 1)
            self.std = torch.tensor(normalize[1], device=device).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor, train: bool) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True).float().div_(255.0)
        if self.input_divisor != 1.0:  # LfF's and DisEnt's MLP divide their [0, 1] input by 255 again
            x = x.div_(self.input_divisor)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        if train and "crop4" in self.augment:
            x = self._random_crop(x, 4)
        if train and "flip" in self.augment:
            flip = torch.rand(len(x), generator=self.generator) < 0.5
            x = torch.where(to_device(flip, x.device).view(-1, 1, 1, 1), x.flip(-1), x)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.contiguous(memory_format=self.memory_format)

    def _random_crop(self, x: torch.Tensor, pad: int) -> torch.Tensor:
        """Zero-pad by `pad` and cut a random HxW window per image (two gathers)."""
        b, c, h, w = x.shape
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = to_device(torch.randint(0, 2 * pad + 1, (b,), generator=self.generator), x.device)
        ox = to_device(torch.randint(0, 2 * pad + 1, (b,), generator=self.generator), x.device)
        rows = oy[:, None] + torch.arange(h, device=x.device)[None, :]
        cols = ox[:, None] + torch.arange(w, device=x.device)[None, :]
        x = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
        return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

