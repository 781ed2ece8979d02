"""Kinds of noise: specs and their simulation (NumPy), and telling which noise an image has."""
