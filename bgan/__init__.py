"""Learned blur (BGAN) and the deblurring network (DBGAN) trained on blurgen pairs."""
