# PSALM YOLO, n size (YOLOv8n widths and depths), P2-P5, COCO at 640.
_base_ = './psalm_yolo_base.py'

model = dict(
    backbone=dict(deepen_factor=0.33, widen_factor=0.25, max_channels=1024))
