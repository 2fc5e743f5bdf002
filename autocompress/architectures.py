"""The names of the model architectures, without TensorFlow: what a configuration may ask for.

:mod:`autocompress.models` builds them (and checks that it builds exactly these).
"""

FAMILIES = ("cnn", "resnet8", "dscnn", "mobilenetv2")  # scaled by a width multiplier
PRESETS = ("paper-mnist-teacher", "paper-mnist-assistant", "paper-mnist-student", "paper-cifar-teacher",
           "paper-cifar-assistant", "paper-cifar-student")  # the paper's fixed models
ARCHITECTURES = (*FAMILIES, *PRESETS)
OWN_MODEL = "model"  # the user's own trained model (``--model PATH``), compressed from its weights


def is_user_family(name: str) -> bool:
    """Whether ``name`` names a student family of the user's, as ``package.module:function``."""
    module, _, function = name.partition(":")
    return bool(module.strip() and function.strip())
