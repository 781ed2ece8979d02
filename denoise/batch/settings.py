"""The defaults of a batch run: files per model call, read-ahead and write-behind memory, writer threads.

Free of NumPy and TensorFlow, so the CLI shows them in --help for free.
"""

DEFAULT_BATCH_SIZE = 8
# Float pixels read ahead or waiting to be written, whatever the batch size and image sizes (see threads.py).
DEFAULT_BUFFER_BYTES = 512 * 2**20
# Writers mostly wait for fsync (two per file: the file, then its folder), so more of them than cores pay off.
DEFAULT_WRITERS = 4
# Images this large are cleaned alone: the model already gets a full batch from one, and alone it may be cleaned
# in place (RunSettings.reuse_input), which a failed batch could not then retry file by file.
ALONE_PIXELS = 1_000_000
