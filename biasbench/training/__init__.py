"""Training: tensors in memory, models, the trainer loop, metrics, checkpoints."""
