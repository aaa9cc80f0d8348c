"""Runs and their folders: launching locally and on Slurm, resume, watch, doctor."""
