"""Labelled images (CIFAR-10, Fashion-MNIST): read safely, split, batched and augmented on the device."""
