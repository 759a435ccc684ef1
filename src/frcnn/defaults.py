"""Defaults shared by the command line, the Python API and the configuration: one home each,
so they cannot drift apart."""

# Score threshold for precision/recall/F1, the confusion matrix and kept predictions.
CONF = 0.25
# Fraction of a tile shared with its neighbour (tiled training and prediction).
TILE_OVERLAP = 0.2
# Fraction of the training data held out for validation when no validation data is given.
VAL_SPLIT = 0.2
# Images per batch for training, evaluation and prediction.
BATCH_SIZE = 4
# How several models (or test-time views) are fused, and the IoU that clusters their boxes.
ENSEMBLE_METHODS = ("wbf", "nms", "soft-nms", "nmw")
ENSEMBLE_IOU = 0.55
# Test-time augmentation: these input scales, plus a left-right flip at scale 1.
TTA_SCALES = (1.0, 1.2)

# The error types of the breakdown (evaluation/errors.py), for options that name one.
ERROR_TYPES = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")

# Score calibrations `frcnn calibrate` fits (evaluation/calibration.py).
CALIBRATION_METHODS = ("temperature", "isotonic")

# What `frcnn export` writes (deploy/export.py) and `frcnn benchmark` times (deploy/benchmark.py).
EXPORT_FORMATS = ("onnx", "torchscript", "openvino")
# Precisions of an export: fp32 exact; fp16 (--half, ONNX) and int8 (--int8, ONNX and OpenVINO)
# heavy layers.
EXPORT_PRECISIONS = ("fp32", "fp16", "int8")
BENCHMARK_FORMATS = (
    "pytorch",
    "pytorch-bf16",
    "onnx",
    "onnx-int8",
    "onnx-fp16",
    "torchscript",
    "openvino",
    "openvino-int8",
)
# `frcnn benchmark`'s defaults (the timed images are the model's own input size unless given).
BENCHMARK_DEFAULT_FORMATS = ("pytorch", "onnx")
BENCHMARK_IMAGES = 20
# What PyTorch inference computes in (deploy/precision.py): fp32 exact, bf16 behind a flag.
PRECISIONS = ("fp32", "bf16")
# Decoded images a tiled dataset keeps for their other tiles, MB per process.
TILE_CACHE_MB = 1024
