"""A tiny regression task for testing the engine itself (tools, resume,
DDP, mim): a two-layer MLP fit to ``y = x @ w + b`` on synthetic data."""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from engine_plugins.registry import DATASETS, HOOKS, METRICS, MODELS


@DATASETS.register_module()
class ToyRegressionDataset(Dataset):
    """``num_samples`` pairs ``(x, y)`` with ``y = x @ w + 0.5``, where
    ``w = [1, -2, 3, ...]``; deterministic for a given ``seed``."""

    def __init__(self,
                 num_samples: int = 64,
                 in_features: int = 4,
                 seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, in_features, generator=gen)
        signs = torch.tensor([(-1.0)**i for i in range(in_features)])
        w = torch.arange(1, in_features + 1, dtype=torch.float32) * signs
        self.y = self.x @ w + 0.5
        self.metainfo = dict(task='toy_regression')

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> Dict[str, torch.Tensor]:
        return dict(inputs=self.x[idx], targets=self.y[idx])


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """MLP regressor with an MSE loss."""

    required_inputs = ('inputs', 'targets')
    loss_keys = ('loss_mse', )

    def __init__(self,
                 in_features: int = 4,
                 hidden: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self,
                inputs: torch.Tensor,
                targets: Optional[torch.Tensor] = None,
                mode: str = 'loss'):
        pred = self.net(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss_mse=((pred.float() - targets)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


@METRICS.register_module()
class ToyMSEMetric(BaseMetric):
    """Mean squared error over the dataset."""

    default_prefix = 'toy'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(
                (float(sample['pred']) - float(sample['target']))**2)

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        return dict(mse=sum(results) / len(results))


@HOOKS.register_module()
class ToyProbeHook(Hook):
    """Records what the engine tests need to check after a run: the
    optimizer state at ``before_train`` (i.e. right after a resume) in
    ``ToyProbeHook.records``, and each rank's final weights in
    ``work_dir/weights_rank{rank}.pth``."""

    records: List[dict] = []

    def before_train(self, runner) -> None:
        ToyProbeHook.records.append(
            dict(
                iter=runner.iter,
                optimizer=copy.deepcopy(
                    runner.optim_wrapper.optimizer.state_dict())))

    def after_run(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        rank, world_size = get_dist_info()
        torch.save(
            dict(
                state_dict=model.state_dict(),
                world_size=world_size,
                iter=runner.iter),
            osp.join(runner.work_dir, f'weights_rank{rank}.pth'))
