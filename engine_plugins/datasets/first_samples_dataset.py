"""A view of the first samples of any dataset."""
from typing import Union

from torch.utils.data import Dataset

from engine_plugins.registry import DATASETS


@DATASETS.register_module()
class FirstSamplesDataset(Dataset):
    """The first ``num_samples`` samples of ``dataset``, in order, repeated
    ``times`` times.

    Used by ``tools/train.py --overfit-batches``; works for mmengine
    ``BaseDataset`` subclasses and plain torch datasets alike. Repeating
    inside one epoch matters: mmengine's iteration loop sleeps 2 s at every
    epoch end, which would dominate a run over a handful of batches.

    Args:
        dataset: The dataset, or its config.
        num_samples: How many samples to keep.
        times: How often the kept samples repeat in one epoch.

    Example:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='FirstSamplesDataset', num_samples=32,
        ...     dataset=dict(type='CocoDataset', ...)))
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 num_samples: int,
                 times: int = 1) -> None:
        if num_samples < 1 or times < 1:
            raise ValueError('num_samples and times must be >= 1, got '
                             f'{num_samples} and {times}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.num_samples = min(num_samples, len(self.dataset))
        self.times = times

    @property
    def metainfo(self) -> dict:
        return dict(getattr(self.dataset, 'metainfo', {}))

    def __len__(self) -> int:
        return self.num_samples * self.times

    def __getitem__(self, idx: int):
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} '
                             'samples')
        return self.dataset[idx % self.num_samples]
