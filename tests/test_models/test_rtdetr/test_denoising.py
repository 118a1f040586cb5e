"""Denoising queries: group layout, attention mask, noise bounds."""
import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy

from engine_plugins.models.rtdetr.denoising import DenoisingQueryGenerator


def test_mask_blocks_other_groups_and_hides_denoising_from_matching():
    # 2 groups of 2 queries (1 gt: positive, negative), then 3 matching
    # queries. Row = query, column = key, 1 = blocked.
    mask = DenoisingQueryGenerator.attention_mask(2, 2, 3, 'cpu')
    expected = torch.tensor([
        [0, 0, 1, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
    ]).bool()
    assert torch.equal(mask, expected)


def _gts():
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    boxes = [
        torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.4]]),
        torch.tensor([[0.5, 0.5, 0.4, 0.2]])
    ]
    return labels, boxes


def test_groups_and_positive_slots():
    gen = DenoisingQueryGenerator(3, 8, num_denoising=10)
    dn = gen(*_gts(), num_queries=5)
    # max 2 gts: 10 // 2 = 5 groups of 2 x 2 = 4 queries.
    assert dn.num_groups == 5
    assert dn.label_queries.shape == (2, 20, 8)
    assert dn.ref_boxes_unact.shape == (2, 20, 4)
    assert dn.attn_mask.shape == (25, 25)
    assert dn.positive_idx[0].tolist() == [0, 1, 4, 5, 8, 9, 12, 13, 16, 17]
    # Image 1 has one gt: slot 1 of each group's positives is padding.
    assert dn.positive_idx[1].tolist() == [0, 4, 8, 12, 16]


def test_box_noise_is_within_bounds_positive_and_negative():
    torch.manual_seed(0)
    gen = DenoisingQueryGenerator(
        3, 8, num_denoising=400, label_noise_ratio=0.0, box_noise_scale=1.0)
    labels, boxes = _gts()
    dn = gen(labels, boxes, num_queries=5)
    noised = bbox_cxcywh_to_xyxy(dn.ref_boxes_unact[0].sigmoid())
    clean = bbox_cxcywh_to_xyxy(boxes[0]).repeat(2 * dn.num_groups, 1)
    half = boxes[0][:, 2:].repeat(1, 2).repeat(2 * dn.num_groups, 1) / 2
    moved = (noised - clean).abs() / half  # in half-sizes
    negative = (torch.arange(len(moved)) % 4) >= 2
    unclipped = (noised > 1e-4).all(1) & (noised < 1 - 1e-4).all(1)
    # A negative whose edges crossed has a negative size, which the
    # inverse sigmoid clamps to 0 (as in RT-DETR): leave those out.
    uncrossed = (noised[:, 2:] - noised[:, :2] > 1e-3).all(1)
    # Positives move each edge by < 1 half-size; negatives by [1, 2),
    # unless clipped at the image border.
    assert (moved[~negative] < 1 + 1e-4).all()
    keep = negative & unclipped & uncrossed
    assert keep.sum() > 50
    assert (moved[keep] >= 1 - 1e-4).all() and (moved[keep] < 2 + 1e-4).all()
    assert moved[~negative].max() > 0.5  # the noise is really there


def test_label_noise_flips_about_a_quarter_and_never_padding():
    torch.manual_seed(0)
    gen = DenoisingQueryGenerator(
        5, 8, num_denoising=4000, label_noise_ratio=0.5, box_noise_scale=0)
    labels = [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    boxes = [torch.tensor([[0.5, 0.5, 0.2, 0.2]]), torch.zeros(0, 4)]
    dn = gen(labels, boxes, num_queries=5)
    table = gen.label_embedding.weight
    used = (dn.label_queries[0][:, None] == table[None]).all(-1)
    assert used.sum(1).eq(1).all()  # every query is one embedding row
    flipped = (used.float().argmax(1) != 0).float().mean()
    # flip with p = 0.25 to a random class (1/5 of flips land on 0 again):
    # P(changed) = 0.25 * 4/5 = 0.2.
    assert abs(float(flipped) - 0.2) < 0.03
    # The image without gts is all padding (the zero row).
    assert dn.label_queries[1].abs().sum() == 0


def test_no_gts_or_no_denoising_gives_none():
    labels = [torch.zeros(0, dtype=torch.long)]
    boxes = [torch.zeros(0, 4)]
    assert DenoisingQueryGenerator(3, 8)(labels, boxes, 5) is None
    assert DenoisingQueryGenerator(3, 8, num_denoising=0)(*_gts(), 5) is None
