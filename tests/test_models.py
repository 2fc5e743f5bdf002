"""Model families and the paper's presets."""

from __future__ import annotations

import pytest

from autocompress.errors import UserError
from autocompress.models import ARCHITECTURES, PRESETS, build_model


@pytest.mark.parametrize("name, shape, expected, tolerance", [
    ("paper-mnist-student", (28, 28, 1), 20_490, 0),
    ("paper-cifar-student", (32, 32, 3), 343_626, 0),
    ("paper-mnist-teacher", (28, 28, 1), 1_550_000, 0.02),
    ("paper-mnist-assistant", (28, 28, 1), 176_000, 0.02),
    ("paper-cifar-teacher", (32, 32, 3), 1_370_000, 0.02),
    ("paper-cifar-assistant", (32, 32, 3), 1_110_000, 0.02),
])
def test_paper_presets_match_the_papers_parameter_counts(name, shape, expected, tolerance):
    params = build_model(name, shape, 10).count_params()
    assert abs(params - expected) <= tolerance * expected


@pytest.mark.parametrize("family", ["cnn", "resnet8", "dscnn", "mobilenetv2"])
def test_width_scales_a_family_from_kilobytes_to_hundreds(family):
    small = build_model(family, (32, 32, 3), 10, width=0.25).count_params()
    large = build_model(family, (32, 32, 3), 10, width=2.0).count_params()
    assert small < 20_000 and large > 8 * small


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (48, 40, 3)])
def test_every_architecture_takes_raw_pixels_and_outputs_logits(shape):
    for name in ARCHITECTURES:
        if name in PRESETS and shape[-1] != (1 if "mnist" in name else 3):
            continue
        model = build_model(name, shape, 7)
        assert model.input_shape == (None, *shape)
        assert model.output_shape == (None, 7)
        assert model.layers[1].name == "normalize"  # normalisation lives inside the model


def test_unknown_architecture_and_bad_width_are_user_errors():
    with pytest.raises(UserError, match="unknown architecture"):
        build_model("vgg99", (28, 28, 1), 10)
    with pytest.raises(UserError, match="width must be > 0"):
        build_model("cnn", (28, 28, 1), 10, width=0)
