from .yolov8_tal_assigner import TALTargets, YOLOv8TaskAlignedAssigner

__all__ = ['TALTargets', 'YOLOv8TaskAlignedAssigner']
