"""Data modules: each turns a source on disk (or a generator) into Lightning dataloaders."""

from tunelab.data.cifar10 import CIFAR10DataModule
from tunelab.data.fashion_mnist import FashionMNISTDataModule
from tunelab.data.timeseries import SyntheticSeriesDataModule, TimeSeriesDataModule

__all__ = ["CIFAR10DataModule", "FashionMNISTDataModule", "SyntheticSeriesDataModule", "TimeSeriesDataModule"]
