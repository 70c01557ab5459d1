"""CIFAR-10 for a classifier: the official archive, 50,000 training images split into train/val, 10,000 for test."""

from __future__ import annotations

from tunelab.data.images.base import ImageDataModule
from tunelab.data.images.cifar_archive import MD5, URL, load_cifar10


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 from `root` (the archive is fetched when missing; `md5` None skips its check, `url` None the fetch)."""

    def __init__(self, root: str, md5: str | None = MD5, url: str | None = URL, **settings) -> None:
        super().__init__(root, **settings)
        self.md5, self.url = md5, url

    def load(self) -> dict:
        return load_cifar10(self.root, md5=self.md5, url=self.url)
