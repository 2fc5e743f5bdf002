"""The names of the model architectures, without TensorFlow: what a configuration may ask for.

:mod:`autocompress.models` builds them (and checks that it builds exactly these).
"""

FAMILIES = ("cnn", "resnet8", "dscnn", "mobilenetv2")  # scaled by a width multiplier
PRESETS = ("paper-mnist-teacher", "paper-mnist-assistant", "paper-mnist-student", "paper-cifar-teacher",
           "paper-cifar-assistant", "paper-cifar-student")  # the paper's fixed models
ARCHITECTURES = (*FAMILIES, *PRESETS)
