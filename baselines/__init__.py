"""Debiasing methods, one module per method, registered by name."""
