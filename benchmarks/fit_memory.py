"""What one process keeps after each ``model.fit``: why the search replaces its worker processes.

    python benchmarks/fit_memory.py                       # 8 fits on 5,000 and on 20,000 images
    python benchmarks/fit_memory.py --quick               # 4 fits on 1,000 images

Each round builds a fresh x0.5 dscnn, trains it one epoch (plain tf_keras ``fit`` on numpy
arrays, and our ``training.train``), then frees what it can (``release_memory``: clear_session,
gc, malloc_trim) and prints the resident memory against the first round's. Generated 28x28
images: the leak does not depend on the pixels.
"""

from __future__ import annotations

import argparse

import numpy as np

from autocompress._tf import keras
from autocompress.models import build_model
from autocompress.search.study._native import release_memory
from autocompress.training import TrainingConfig, train


def resident_mb() -> float:
    status = open("/proc/self/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def plain_fit(x: np.ndarray, y: np.ndarray) -> None:
    model = build_model("dscnn", x.shape[1:], 10, width=0.5)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x.astype(np.float32), y, batch_size=128, epochs=1, verbose=0)


def our_train(x: np.ndarray, y: np.ndarray) -> None:
    train(build_model("dscnn", x.shape[1:], 10, width=0.5), x, y, 10, TrainingConfig(epochs=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--images", type=int, nargs="+", default=[5_000, 20_000])
    parser.add_argument("--quick", action="store_true", help="4 rounds on 1,000 images")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.images = 4, [1_000]
    rng = np.random.default_rng(0)
    for count in args.images:
        x = rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8)
        y = rng.integers(0, 10, size=count)
        for name, fit in (("plain model.fit", plain_fit), ("training.train", our_train)):
            fit(x, y)  # the first round traces and allocates what every later one reuses
            release_memory()
            base = resident_mb()
            grown = []
            for _ in range(args.rounds):
                fit(x, y)
                release_memory()
                grown.append(resident_mb() - base)
            print(f"{name}, {count:,} images: +{grown[-1]:.0f} MB after {args.rounds} more fits "
                  f"(+{grown[-1] / args.rounds:.1f} MB per fit; after each: "
                  + ", ".join(f"{g:+.0f}" for g in grown) + ")", flush=True)


if __name__ == "__main__":
    main()
