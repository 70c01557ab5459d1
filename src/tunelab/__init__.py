"""tunelab: tune recurrent and convolutional networks with Lightning and Hydra."""

__version__ = "0.1.0"
