"""Environments (wrappers), preprocessing (transformers) and action distributions (policies)."""
