"""The broken zoo: one small model per failure class the engine exists to
catch (silent failures of real training runs), each with a ``broken``
switch. The broken variant reproduces the bug; the fixed twin is the same
model with the bug removed, and must train. The case numbers (000-004)
name the tests in ``test_broken_zoo.py``.

=======================  ====  =========================================
case                     case  bug
=======================  ====  =========================================
ZooUndecodedHead         000   raw head maps never decoded: empty preds
ZooDFLHead               001   DFL targets in absolute pixel coordinates
ZooAudioLM               002   a signature filter drops label_ids
DualFFNAudioLM           002   the real audio LM behind case 002's
 (zoo_audio_lm_filter_           trainer filter (label_ids, audio_out_ids,
 collate)                        label_audio_ids dropped)
ZooQueryDetector         003   pixel boxes fed to a normalized criterion;
                               background encoded as id == num_classes
ZooCovarianceNet         004   eigh loss on a bf16 covariance
ZooLeafLoss              —     loss rebuilt as a fresh leaf tensor
=======================  ====  =========================================
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.dataset import default_collate
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import FUNCTIONS
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

from engine_plugins.registry import DATASETS, MODELS

IMG = 128  # image side in pixels
STRIDE = 32  # one feature level, 4x4 anchors


def _square(idx: int) -> torch.Tensor:
    """A bright square at a position that depends on ``idx``; its pixel
    xyxy box."""
    x1 = 16 + (idx * 20) % 48
    y1 = 24 + (idx * 12) % 40
    return torch.tensor([x1, y1, x1 + 48, y1 + 40], dtype=torch.float32)


def _image(box: torch.Tensor) -> torch.Tensor:
    img = torch.zeros(3, IMG, IMG)
    x1, y1, x2, y2 = box.long().tolist()
    img[:, y1:y2, x1:x2] = 1.0
    return img


@DATASETS.register_module()
class ZooBoxDataset(Dataset):
    """Images with one square each. ``as_data_samples`` packs targets in a
    ``DetDataSample`` (pixel xyxy, like mmdet's ``PackDetInputs``);
    ``label`` is the class of every box."""

    def __init__(self, num_samples: int = 128, label: int = 1,
                 as_data_samples: bool = False) -> None:
        self.num_samples = num_samples
        self.label = label
        self.as_data_samples = as_data_samples

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, idx: int) -> dict:
        box = _square(idx)
        if not self.as_data_samples:
            return dict(inputs=_image(box), boxes=box)
        sample = DetDataSample(
            metainfo=dict(img_shape=(IMG, IMG), img_path=f'zoo_{idx}.png'))
        sample.gt_instances = InstanceData(
            bboxes=box[None], labels=torch.tensor([self.label]))
        return dict(inputs=_image(box), data_samples=sample)


class _ConvHead(BaseModel):
    """A 2-conv network giving one 4x4 map with ``out`` channels."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.AvgPool2d(8), nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU())
        self.head = nn.Conv2d(16, out, 3, stride=2, padding=1)
        # anchor centres (pixels) of the 4x4 grid, row-major.
        ys, xs = torch.meshgrid(
            torch.arange(4.0), torch.arange(4.0), indexing='ij')
        self.register_buffer(
            'anchors',
            torch.stack([xs, ys], -1).reshape(-1, 2).add(0.5) * STRIDE,
            persistent=False)

    def raw(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, out, 4, 4) -> (B, 16 anchors, out)."""
        return self.head(self.backbone(inputs)).flatten(2).transpose(1, 2)

    def _positive(self, boxes: torch.Tensor) -> torch.Tensor:
        """Index of the anchor nearest each box centre."""
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        return torch.cdist(centre, self.anchors).argmin(-1)


@MODELS.register_module()
class ZooUndecodedHead(_ConvHead):
    """Case 000. The broken variant expects decoded ``pred_bboxes`` that the
    head never produces, gets empty tensors and returns all-zero losses."""

    def __init__(self, broken: bool = True) -> None:
        super().__init__(out=5)  # 4 box offsets + 1 objectness logit
        self.broken = broken

    def forward(self, inputs, boxes=None, mode='loss'):
        raw = self.raw(inputs)
        outputs = dict(prototype_boxes=raw)  # what the head returns
        if self.broken:
            pred = outputs.get('pred_bboxes', raw.new_zeros(0, 4))
            target = boxes.new_zeros(0, 4)
            return dict(
                loss_bbox=F.l1_loss(pred, target, reduction='sum'),
                loss_cls=F.binary_cross_entropy_with_logits(
                    pred[:, 0], target[:, 0], reduction='sum'),
                loss_dfl=pred.sum())
        # Fixed: dense assignment over all anchors.
        pos = self._positive(boxes)
        batch = torch.arange(len(boxes))
        objectness = torch.zeros_like(raw[..., 4])
        objectness[batch, pos] = 1.0
        centre = self.anchors[pos]
        ltrb = torch.cat([centre - boxes[:, :2], boxes[:, 2:] - centre], -1)
        return dict(
            loss_bbox=F.l1_loss(raw[batch, pos, :4], ltrb / STRIDE),
            loss_cls=F.binary_cross_entropy_with_logits(
                raw[..., 4], objectness))


@MODELS.register_module()
class ZooDFLHead(_ConvHead):
    """Case 001. A DFL box branch (4 sides x ``reg_max`` bins) whose
    distance loss is clamped at 10 for "stability". The broken variant
    feeds absolute pixel coordinates as targets: the loss sits at the
    clamp, where it has no gradient."""

    reg_max = 16
    loss_clamp_limits = dict(loss_dfl=10.0)
    expected_loss_ranges = dict(loss_dfl=(0.5, 8.0))

    def __init__(self, broken: bool = True) -> None:
        super().__init__(out=4 * self.reg_max)
        self.broken = broken

    def forward(self, inputs, boxes=None, mode='loss'):
        raw = self.raw(inputs)
        pos = self._positive(boxes)
        dist = raw[torch.arange(len(boxes)), pos].view(-1, 4, self.reg_max)
        expected = dist.softmax(-1) @ torch.arange(float(self.reg_max))
        if self.broken:
            target = boxes  # absolute pixel x1, y1, x2, y2
        else:
            centre = self.anchors[pos]
            target = torch.cat([centre - boxes[:, :2], boxes[:, 2:] - centre],
                               -1).div(STRIDE).clamp(0, self.reg_max - 1.01)
        loss = F.smooth_l1_loss(expected, target)
        return dict(loss_dfl=loss.clamp(max=10.0))


@DATASETS.register_module()
class ZooTokenDataset(Dataset):
    """Text tokens with text labels and 8-codebook audio labels, the keys a
    Higgs-style audio LM needs. Labels are a fixed function of each token,
    so a per-token model can learn them."""

    def __init__(self, num_samples: int = 128, length: int = 6) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 20, (num_samples, length), generator=gen)
        self.labels = (self.ids * 7 + 3) % 20
        self.audio = (self.ids[..., None] + torch.arange(8)) % 10

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, idx: int) -> Dict[str, torch.Tensor]:
        return dict(
            input_ids=self.ids[idx],
            attention_mask=torch.ones_like(self.ids[idx]),
            label_ids=self.labels[idx],
            label_audio_ids=self.audio[idx])


@FUNCTIONS.register_module()
def zoo_signature_filter_collate(batch: List[dict]) -> dict:
    """Case 002's trainer: keep only the keys named in the model's forward
    signature (``input_ids, attention_mask, **kwargs``)."""
    batch = default_collate(batch)
    return {k: v for k, v in batch.items() if k in ('input_ids',
                                                    'attention_mask')}


@FUNCTIONS.register_module()
def zoo_audio_lm_filter_collate(batch: List[dict]) -> dict:
    """Case 002's trainer around the real audio collate: it removes the
    keys it took for PEFT's ``labels`` before calling the model."""
    from engine_plugins.datasets.audio import audio_lm_collate
    return {
        k: v
        for k, v in audio_lm_collate(batch).items() if k not in (
            'label_ids', 'label_audio_ids', 'labels', 'audio_out_ids')
    }


@MODELS.register_module()
class ZooAudioLM(BaseModel):
    """Case 002. Text and audio heads over a token embedding."""

    required_inputs = ('input_ids', 'attention_mask', 'label_ids',
                       'label_audio_ids')

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.text_head = nn.Linear(16, 20)
        self.audio_head = nn.Linear(16, 8 * 10)

    def forward(self, input_ids, attention_mask, mode='loss', **kwargs):
        hidden = self.embed(input_ids) * attention_mask[..., None]
        text = F.cross_entropy(
            self.text_head(hidden).flatten(0, 1),
            kwargs['label_ids'].flatten())
        audio_logits = self.audio_head(hidden).view(-1, 8, 10)
        audio = F.cross_entropy(
            audio_logits.transpose(1, 2),
            kwargs['label_audio_ids'].reshape(-1, 8))
        return dict(loss_text=text, loss_audio=audio)


@MODELS.register_module()
class ZooDetPreprocessor(BaseDataPreprocessor):
    """Stacks images; converts gt boxes to normalized cxcywh once, unless
    ``convert=False`` (case 003's bug: the conversion was forgotten)."""

    def __init__(self, convert: bool = True) -> None:
        super().__init__()
        self.convert = convert

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        inputs = torch.stack(data['inputs'])
        samples = data['data_samples']
        if self.convert:
            for sample in samples:
                h, w = sample.metainfo['img_shape']
                x1, y1, x2, y2 = sample.gt_instances.bboxes.unbind(-1)
                sample.gt_instances.bboxes = torch.stack(
                    [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w,
                     (y2 - y1) / h], -1)
        return dict(inputs=inputs, data_samples=samples)


@MODELS.register_module()
class ZooQueryDetector(BaseModel):
    """Case 003. One query per image predicting a normalized cxcywh box and
    class logits; the criterion works on normalized boxes."""

    box_format = 'cxcywh_normalized'
    num_classes = 3

    def __init__(self,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or
                         dict(type='ZooDetPreprocessor'))
        self.net = nn.Sequential(
            nn.AvgPool2d(8),
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(8, 4 + self.num_classes))

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.net(inputs)
        boxes = torch.cat([s.gt_instances.bboxes for s in data_samples])
        labels = torch.cat([s.gt_instances.labels for s in data_samples])
        return dict(
            loss_bbox=F.l1_loss(out[:, :4].sigmoid(), boxes),
            loss_cls=F.cross_entropy(out[:, 4:], labels))


@DATASETS.register_module()
class ZooSignalDataset(Dataset):
    """A target direction per sample for the covariance net."""

    def __len__(self) -> int:
        return 128

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=torch.tensor([0.6, 0.8]))


@MODELS.register_module()
class ZooCovarianceNet(BaseModel):
    """Case 004. Learns two orthogonal snapshot streams ``X`` (2 x 64) whose
    powers differ by 0.2%; the loss aligns the principal eigenvector of
    ``R = X X^T / T`` with a target direction. Under bf16 autocast the
    covariance matmul rounds both powers to 1.0: ``eigh`` sees a repeated
    eigenvalue and its backward returns NaN, while the loss is finite.
    An FP32 loss region around ``loss_by_feat`` fixes it."""

    def __init__(self, snapshots: int = 64) -> None:
        super().__init__()
        alternating = torch.tensor([(-1.0)**t for t in range(snapshots)])
        base = torch.stack([torch.ones(snapshots), alternating])
        self.X = nn.Parameter(base * torch.tensor([[1.0], [1.002]]))

    def loss_by_feat(self, X: torch.Tensor,
                     target: torch.Tensor) -> Dict[str, torch.Tensor]:
        R = X @ X.T / X.shape[1]
        _, vectors = torch.linalg.eigh(R.float())
        align = (vectors[:, -1] @ target.T)**2
        return dict(loss_subspace=(1 - align).mean())

    def forward(self, inputs, mode='loss'):
        return self.loss_by_feat(self.X * 1.0, inputs)


@MODELS.register_module()
class ZooLeafLoss(BaseModel):
    """A loss re-wrapped as ``torch.tensor(value, requires_grad=True)``:
    finite, requires grad, and disconnected from every parameter."""

    def __init__(self, broken: bool = True) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.broken = broken

    def forward(self, inputs, mode='loss'):
        loss = (self.net(inputs) - 1).pow(2).mean()
        if self.broken:
            loss = torch.tensor(loss.item(), requires_grad=True)
        return dict(loss_main=loss)


@DATASETS.register_module()
class ZooVectorDataset(Dataset):

    def __len__(self) -> int:
        return 128

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=torch.full((4, ), idx / 128.0))
