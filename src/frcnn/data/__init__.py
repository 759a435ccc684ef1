"""Datasets: readers for COCO, YOLO, Pascal VOC, CSV and Hugging Face sources, checks,
conversion, augmentation, batching, tiling and the built-in synthetic data."""

from .check import DataReport, check_dataset
from .records import DetectionDataset, ImageRecord
from .sources import detect_format, list_splits, read_all_splits, read_dataset
from .synth import write_synth
from .write import write_dataset

__all__ = [
    "DataReport",
    "DetectionDataset",
    "ImageRecord",
    "check_dataset",
    "detect_format",
    "list_splits",
    "read_all_splits",
    "read_dataset",
    "write_dataset",
    "write_synth",
]
