"""Datasets stage: source folders, downloads, synthetic generators and the normalized build."""
