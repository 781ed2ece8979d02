"""Cleaning a folder: which files, where outputs go, reading/cleaning/writing them on threads."""
