"""Why global channel pruning's bounds cannot come from an untrained student (docs/BENCHMARKS.md,
"Microcontrollers"): in one conv layer at a time, one filter is kept strong and the others are made
faint, as training may leave them; the globally pruned model is then compared with the same pruning
of a fresh untrained student, the bound used before 7405c76.

    python benchmarks/global_bound_probe.py
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from autocompress._tf import keras  # noqa: E402
from autocompress.compress import prune  # noqa: E402
from autocompress.models import build_model  # noqa: E402

SHAPE, CLASSES, WIDTH, SPARSITY = (32, 32, 3), 10, 0.5, 0.5


def main() -> None:
    below = cases = 0
    for student in ("cnn", "dscnn", "resnet8", "mobilenetv2"):
        for which in ("conv", "all"):
            convs = [layer.name for layer in build_model(student, SHAPE, CLASSES, width=WIDTH).layers
                     if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D)]
            for name in convs[1:]:
                model = build_model(student, SHAPE, CLASSES, width=WIDTH)
                layer = model.get_layer(name)
                kernel, *rest = layer.get_weights()
                kernel = kernel.copy()
                kernel[..., 1:] *= 1e-3
                layer.set_weights([kernel, *rest])
                actual = prune.prune_channels(model, SPARSITY, "global", which).count_params()
                old_bound = prune.prune_channels(build_model(student, SHAPE, CLASSES, width=WIDTH), SPARSITY,
                                                 "global", which).count_params()
                cases += 1
                below += actual < old_bound
                print(f"{student} {which} {name}: old bound {old_bound}, pruned {actual}"
                      + (" (below the bound)" if actual < old_bound else ""))
    print(f"{below} of {cases} pruned models had fewer weights than the old bound")


if __name__ == "__main__":
    main()
