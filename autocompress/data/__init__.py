"""Datasets: load a known dataset or a user's files, split off validation, feed ``tf.data``.

TensorFlow is imported only when a pipeline is built or a download is needed.
"""

from autocompress.data.cache import default_cache_dir
from autocompress.data.dataset import Dataset, dataset_name, load_dataset
from autocompress.data.pipeline import make_tf_dataset
from autocompress.data.registry import KNOWN_DATASETS, data_dirs, locate_dataset

__all__ = [
    "KNOWN_DATASETS",
    "Dataset",
    "data_dirs",
    "dataset_name",
    "default_cache_dir",
    "load_dataset",
    "locate_dataset",
    "make_tf_dataset",
]
