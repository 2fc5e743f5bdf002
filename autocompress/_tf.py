"""Import TensorFlow the way TFMOT needs it: Keras 2 (``tf_keras``), quiet logs.

Every module that touches TensorFlow imports ``tf`` and ``keras`` from here, so the
``TF_USE_LEGACY_KERAS`` switch is always set before TensorFlow is first imported.
"""

import os

from autocompress.quiet import native_stderr_dropped

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

with native_stderr_dropped():
    import tensorflow as tf
    import tf_keras as keras

    tf.config.list_physical_devices()  # initialise the device platforms (and their CUDA lines) here

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]
