"""Dataset loading for the search engine: built-ins, image folders, zips and .npz, split and normalised."""

from search.data.base import DatasetError, DatasetSplits
from search.data.builtins import dataset_names
from search.data.load import load_dataset

__all__ = ["DatasetError", "DatasetSplits", "dataset_names", "load_dataset"]
