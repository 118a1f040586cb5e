"""Bugs in RIS DoA training code users write: a dataset that stores its
labels in half precision."""
import torch

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.registry import DATASETS


@DATASETS.register_module()
class MutHalfLabelsRISDataset(RISDoADataset):
    """Stores the label covariance as complex32 "to halve the memory"."""

    def __getitem__(self, idx: int) -> dict:
        item = super().__getitem__(idx)
        item['data_samples']['cov_true'] = \
            item['data_samples']['cov_true'].to(torch.complex32)
        return item
