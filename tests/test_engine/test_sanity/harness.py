"""A sanity-engine set-up without a Runner: a small BaseModel trained by
its own ``train_step`` (mmengine's code path), with the monitor attached
through the probe and the grad-sanity optim wrapper."""
from typing import Callable, Optional

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModel

from engine_plugins.engine import GradSanityOptimWrapper
from engine_plugins.engine.sanity.events import SanityEvents
from engine_plugins.engine.sanity.monitor import SanityMonitor
from engine_plugins.engine.sanity.probe import TrainStepProbe

MMLogger.get_instance('sanity_harness')


class Net(BaseModel):
    """backbone (2x3) and head (1x4) weights, no biases; ``loss_fn(model,
    inputs)`` returns the loss dict."""

    def __init__(self, loss_fn: Callable) -> None:
        super().__init__()
        self.backbone = nn.Linear(3, 2, bias=False)
        self.head = nn.Linear(4, 1, bias=False)
        self.loss_fn = loss_fn

    def forward(self, inputs, mode='loss'):
        return self.loss_fn(self, inputs)


class Engine:
    """A model, an optim wrapper and a monitor, stepped one iteration at a
    time."""

    def __init__(self,
                 model: nn.Module,
                 wrapper_cls=GradSanityOptimWrapper,
                 lr: float = 0.1,
                 optimizer: Optional[torch.optim.Optimizer] = None,
                 schedulers=(),
                 **monitor_args) -> None:
        monitor_args.setdefault('strict_iters', 1)
        monitor_args.setdefault('update_iters', 0)
        self.model = model
        self.wrapper = wrapper_cls(
            optimizer=optimizer or torch.optim.SGD(model.parameters(), lr=lr))
        self.events = SanityEvents()
        self.monitor = SanityMonitor(self.events, **monitor_args)
        self.probe = TrainStepProbe(model, self.monitor)
        self.monitor.bind(
            model,
            self.wrapper.optimizer,
            schedulers=schedulers,
            probe=self.probe)
        self.monitor.autocast = self.wrapper.rerun_autocast
        self.probe.attach()
        self.wrapper.sanity = self.monitor
        self.iteration = 0

    def step(self, inputs=None):
        self.iteration += 1
        self.monitor.start_iter(self.iteration)
        inputs = torch.ones(1) if inputs is None else inputs
        return self.model.train_step(dict(inputs=inputs), self.wrapper)

    def kinds(self, kind: str):
        return [e for e in self.events.events if e['kind'] == kind]


def params(model: nn.Module):
    return [p.detach().clone() for p in model.parameters()]
