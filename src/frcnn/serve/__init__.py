"""``frcnn serve``: a model behind HTTP (FastAPI + uvicorn, the ``serve`` extra)."""
