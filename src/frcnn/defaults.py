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
