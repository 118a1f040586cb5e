from .yolov8_det_loss import YOLOv8DetLoss

__all__ = ['YOLOv8DetLoss']
