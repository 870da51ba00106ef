"""Training: datasets and encoders, layers, the trainer, checkpoints and the export to the IR."""
