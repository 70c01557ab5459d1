"""Data modules: each turns a source on disk (or a generator) into Lightning dataloaders."""

from tunelab.data.images.cifar10 import CIFAR10DataModule
from tunelab.data.images.fashion_mnist import FashionMNISTDataModule
from tunelab.data.series.timeseries import SyntheticSeriesDataModule, TimeSeriesDataModule

__all__ = ["CIFAR10DataModule", "FashionMNISTDataModule", "SyntheticSeriesDataModule", "TimeSeriesDataModule"]
