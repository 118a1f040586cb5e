"""Task models: YOLO (PSALM), RT-DETR, audio LM, RIS DoA."""
from .yolo import YOLOv8DetLoss

__all__ = ['YOLOv8DetLoss']
