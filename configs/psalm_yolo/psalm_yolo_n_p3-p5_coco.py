# PSALM YOLO, n size, without the stride-4 level: P3-P5 (8400 anchors at
# 640 instead of 34000). One line: the neck, fusion and head follow.
_base_ = './psalm_yolo_n_coco.py'

model = dict(backbone=dict(out_indices=(2, 3, 4)))
