"""Two more models for the digits, to bring to a run with ``run(..., model=...)``.

Any ``nn.Module`` that maps a batch of inputs to ``(n, num_classes)`` class
scores can be trained: these two are small examples, next to the built-in MLP
(:class:`~fedasync_lib.core.model.AsyncModel`).

* :class:`LogisticRegression`: one linear layer, ``scores = W x + b``;
  a convex problem, the simplest baseline.
* :class:`DigitsCNN`: a small convolutional network for the 8x8 digits,
  which sees the pixels as an image rather than as 64 unrelated numbers.

Both draw their initial weights under ``seed`` without touching the global
random state, so a run stays a function of its config and seeds.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: ``scores = W x + b`` on flattened inputs."""

    def __init__(self, in_features: int = 64, num_classes: int = 10, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 grey images, given as ``(n, 64)`` rows or ``(n, 1, 8, 8)``.

        conv 3x3, 1 -> c channels, ReLU, max-pool 2   (8x8 -> 4x4)
        conv 3x3, c -> 2c channels, ReLU, max-pool 2  (4x4 -> 2x2)
        linear 2c * 2 * 2 -> num_classes

    With ``channels=8``: 1,898 parameters (the built-in MLP on the digits has 4,810).
    """

    def __init__(self, num_classes: int = 10, channels: int = 8, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = nn.Sequential(
                nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            )
            self.classifier = nn.Linear(2 * channels * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, 1, 8, 8)  # rows of 64 pixels, or images already
        return self.classifier(self.features(images).flatten(1))
