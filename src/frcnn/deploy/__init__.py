"""Deployment: exported models (ONNX) that run without frcnn, checked against PyTorch."""
