"""Running a model on images of any size, and choosing the shipped model for each image."""
