"""`denoise train`: the checked configuration, the tf.data stream of noisy patches, the fit loop."""
