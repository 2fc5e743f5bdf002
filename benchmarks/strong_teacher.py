"""The airbench-style CIFAR-10 teacher (autocompress/strong_teacher.py), trained as the built-in recipe does.

    python benchmarks/strong_teacher.py --epochs 10 --out /tmp/airbench10.keras

Prints the training time, the validation accuracy on 2,000 validation images after each epoch, and
the test accuracy of the trained Keras model plain and with airbench's level-2 test-time views
(mirror and one-pixel translations).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from autocompress import strong_teacher
from autocompress._tf import keras
from autocompress.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--out", default="airbench.keras")
    args = parser.parse_args()
    data = load_dataset("cifar10", data_dir=args.data_dir)
    keras.utils.set_random_seed(0)
    model = strong_teacher.build_airbench(data.input_shape, 10, width=args.width, decay=strong_teacher.decay_for(1024))
    started = time.perf_counter()

    class Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            predicted = self.model.predict(data.x_val[:2000].astype(np.float32), verbose=0, batch_size=500)
            print(f"epoch {epoch + 1} {time.perf_counter() - started:.0f}s loss {logs['loss']:.3f} "
                  f"train {logs['accuracy']:.4f} val {np.mean(predicted.argmax(1) == data.y_val[:2000]):.4f}", flush=True)

    strong_teacher.train_airbench(model, data.x_train, data.y_train, 10, epochs=args.epochs, callbacks=[Log()])
    train_seconds = time.perf_counter() - started
    model.save(args.out)
    plain = model.predict(data.x_test.astype(np.float32), verbose=0, batch_size=500)
    views_started = time.perf_counter()
    tta = strong_teacher.tta_logits(model, data.x_test)
    print(json.dumps({"train_s": round(train_seconds), "test_plain": float(np.mean(plain.argmax(1) == data.y_test)),
                      "test_tta": float(np.mean(tta.argmax(1) == data.y_test)),
                      "tta_s": round(time.perf_counter() - views_started)}), flush=True)


if __name__ == "__main__":
    main()
