"""The networks: Keras layers, architectures, losses, and .keras files with denoise's metadata."""
