"""Data modules: each turns a source on disk (or a generator) into Lightning dataloaders."""

from tunelab.data.timeseries import SyntheticSeriesDataModule, TimeSeriesDataModule

__all__ = ["SyntheticSeriesDataModule", "TimeSeriesDataModule"]
