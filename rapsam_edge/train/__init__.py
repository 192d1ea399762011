"""Training side (needs torch): matcher, losses, co-training loop with torch.distributed."""
