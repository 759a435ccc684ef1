"""`frcnn explain`: every stage of a detector on one image, drawn."""
