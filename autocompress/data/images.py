"""Image-folder datasets: ``ROOT/{train,test}/<class>/*.png|jpg``, decoded with Pillow to one common mode."""

from __future__ import annotations

import io

import numpy as np

from autocompress.data._errors import reason
from autocompress.data.arrays import Arrays, join
from autocompress.data.tree import FileTree
from autocompress.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# image folders


def _natural_mode(mode: str, info: dict) -> str:
    """The plainest of L / LA / RGB / RGBA that holds an image of Pillow ``mode`` without loss of meaning."""
    if mode in ("1", "L", "F") or mode.startswith("I"):  # bilevel, grey, float grey, integer grey
        return "L"
    if mode == "LA":
        return mode
    if mode in ("RGBA", "PA") or "transparency" in info:
        return "RGBA"
    return "RGB"


def _common_mode(modes: set[str]) -> str:
    """The mode every image is converted to: grey stays grey, alpha is kept when any image has it."""
    if modes <= {"L"}:
        return "L"
    if modes <= {"L", "LA"}:
        return "LA"
    return "RGBA" if modes & {"LA", "RGBA"} else "RGB"


def _list_images(tree: FileTree, root: str) -> dict[str, dict[str, list[str]]]:
    """split -> class -> sorted image files, for the train/<class>/<image> layout under ``root``."""
    layout: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "test"):
        folder = join(root, split)
        if folder not in tree.dirs:
            raise UserError(f"{tree.where} has no {split}/ folder; put images in train/<class>/ and test/<class>/")
        classes = tree.children(folder)[0]
        if not classes:
            raise UserError(f"{tree.describe(folder)} has no class folders; put its images in {split}/<class>/")
        layout[split] = {c: [] for c in classes}
    prefix = join(root, "")
    for name in tree.files:
        parts = name[len(prefix):].split("/") if name.startswith(prefix) else []
        if len(parts) == 3 and parts[0] in layout and parts[2].lower().endswith(IMAGE_SUFFIXES):
            layout[parts[0]][parts[1]].append(name)
    train, test = set(layout["train"]), set(layout["test"])
    if train != test:
        only = (("train", train - test), ("test", test - train))
        diff = "; ".join(f"only in {split}: {', '.join(sorted(c))}" for split, c in only if c)
        raise UserError(f"{tree.where}: train/ and test/ class folders differ ({diff}); give both the same classes")
    for split, classes in layout.items():
        for cls, names in classes.items():
            if not names:
                folder = tree.describe(join(root, f"{split}/{cls}"))
                raise UserError(f"{folder} holds no .png/.jpg/.jpeg images; add some or delete it")
            names.sort()
    return layout


def _decode(tree: FileTree, rel: str, first: tuple[str, tuple[int, int]] | None):
    """Open and decode one image; its size is checked against ``first`` (name, size) before decoding."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(tree.read(rel)))
        if first and image.size != first[1]:
            (w, h), (fw, fh) = image.size, first[1]
            raise UserError(
                f"{tree.describe(rel)} is {w}x{h} but {tree.describe(first[0])} is {fw}x{fh}; "
                "resize all images to one size"
            )
        image.load()
    except UserError:
        raise
    except Exception as e:  # Pillow signals bad images with many exception types
        raise UserError(f"{tree.describe(rel)} is not a readable image ({reason(e)}); fix or remove it") from e
    return image


def read_images(tree: FileTree, root: str) -> Arrays:
    layout = _list_images(tree, root)
    class_names = tuple(layout["train"])
    decoded = {}
    first = None
    for split, classes in layout.items():
        images, labels = [], []
        for label, cls in enumerate(class_names):
            for rel in classes[cls]:
                image = _decode(tree, rel, first)
                first = first or (rel, image.size)
                images.append((rel, image))
                labels.append(label)
        decoded[split] = (images, np.array(labels, dtype=np.int64))
    mode = _common_mode({_natural_mode(im.mode, im.info) for images, _ in decoded.values() for _, im in images})
    x = {split: _stack(tree, images, mode) for split, (images, _) in decoded.items()}
    return Arrays(x["train"], decoded["train"][1], x["test"], decoded["test"][1], class_names)


def _stack(tree: FileTree, images: list, mode: str) -> np.ndarray:
    """One (n, H, W, C) uint8 array from same-sized Pillow images, each converted to ``mode``."""
    pixels = []
    for rel, image in images:
        try:
            pixels.append((image if image.mode == mode else image.convert(mode)).tobytes())
        except (ValueError, OSError) as e:
            raise UserError(
                f"{tree.describe(rel)} cannot be converted to {mode} ({reason(e)}); save it as RGB or greyscale"
            ) from e
    width, height = images[0][1].size
    return np.frombuffer(b"".join(pixels), np.uint8).reshape(len(images), height, width, len(mode))
