"""A tiny ``LightningModule`` on random 28x28 pictures, and a trainer for it (fast: a few batches on the CPU)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TinyNet(pl.LightningModule):
    """conv (4 filters), max pool, linear; counts the forward passes run without gradients (the callback's probes)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(4 * 14 * 14, 10)
        self.probe_passes = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.probe_passes += not torch.is_grad_enabled()
        return self.head(self.pool(torch.relu(self.conv(x))).flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(batches: int, batch_size: int = 4) -> DataLoader:
    """``batches`` batches of random pictures and labels (the same at every call)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batches * batch_size, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (batches * batch_size,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def trainer(root, callbacks, **options) -> pl.Trainer:
    """A quiet CPU trainer writing under ``root`` (its TensorBoardLogger: ``root/lightning_logs/version_N``)."""
    defaults = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False, "enable_model_summary": False, "max_epochs": 2}
    return pl.Trainer(default_root_dir=str(root), callbacks=callbacks, **{**defaults, **options})
