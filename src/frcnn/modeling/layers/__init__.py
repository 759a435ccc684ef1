"""Building blocks shared by backbones and necks."""
