"""The YOLOv8 box coder: boxes as anchor-to-edge distances in stride units,
predicted as distributions over ``reg_max`` bins."""
import torch
from mmdet.models.task_modules.coders import DistancePointBBoxCoder
from mmdet.structures.bbox import distance2bbox

from engine_plugins.engine.sanity.health import HealthStat
from engine_plugins.registry import TASK_UTILS

# Published by every encode in a training step, whichever loss calls it.
AT_CLAMP = HealthStat(
    'health/dfl_targets_at_clamp',
    low=0.0,
    high=0.3,
    cause='target_units',
    meaning='most DFL targets saturate the [0, reg_max - 1] range, where '
    'they carry no gradient: the targets are not anchor-to-edge distances '
    'in stride units (pixels not divided by the stride, or absolute '
    'coordinates)')


@TASK_UTILS.register_module()
class DFLBoxCoder(DistancePointBBoxCoder):
    """Encode xyxy boxes as clamped ``(l, t, r, b)`` distances; decode
    ``4 * reg_max`` logits (side-major: 4 sides x ``reg_max`` bins) by
    their softmax expectation.

    All coordinates are in *stride units*: anchor points are cell centres
    in grid units (``x + 0.5``) and boxes are pixel boxes divided by the
    level's stride. Targets are clamped to ``[0, reg_max - 1 - 0.01]`` so
    that the two DFL bins around each target exist. For example:
    anchor (200, 200) px and box (100, 100, 300, 300) px at stride 8 is
    point (25, 25) and box (12.5, 12.5, 37.5, 37.5), so every distance is
    12.5 bins.

    Args:
        reg_max: Number of bins per side. Defaults to 16.

    Example:
        >>> coder = TASK_UTILS.build(dict(type='DFLBoxCoder', reg_max=16))
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__(clip_border=False)
        self.reg_max = reg_max

    def encode(self, points: torch.Tensor,
               gt_bboxes: torch.Tensor) -> torch.Tensor:
        """``(N, 2)`` points and ``(N, 4)`` boxes → ``(N, 4)`` targets."""
        targets = super().encode(
            points, gt_bboxes, max_dis=self.reg_max - 1, eps=0.01)
        top = self.reg_max - 1 - 0.01
        AT_CLAMP.publish(((targets >= top - 1e-4) | (targets <= 0)).sum(),
                         count=targets.numel())
        return targets

    def expectation(self, pred_dist: torch.Tensor) -> torch.Tensor:
        """``(..., 4 * reg_max)`` logits → ``(..., 4)`` expected distances."""
        bins = pred_dist.unflatten(-1, (4, self.reg_max)).softmax(-1)
        return bins @ torch.arange(
            self.reg_max, dtype=bins.dtype, device=bins.device)

    def decode(self, points: torch.Tensor,
               pred_dist: torch.Tensor) -> torch.Tensor:
        """``(..., A, 2)`` points, ``(..., A, 4 * reg_max)`` logits →
        ``(..., A, 4)`` xyxy boxes in stride units."""
        return distance2bbox(points, self.expectation(pred_dist))
