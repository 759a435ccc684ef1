"""Backbone pretraining as an image classifier (``frcnn pretrain-backbone``)."""
