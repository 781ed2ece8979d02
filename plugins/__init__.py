"""The built-in dataset loaders (mnist, fashion-mnist, folder), installed as `denoise_plugins`.

They are registered through the entry-point group `denoise.datasets` in pyproject.toml exactly as a third-party
package registers its own, and import only the public contract in `denoise.datasets`.
"""
