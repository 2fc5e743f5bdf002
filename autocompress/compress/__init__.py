"""Compression stages: distil, prune, quantize, measure, and the pipeline that runs them."""
