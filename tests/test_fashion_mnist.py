"""Fashion-MNIST: idx files (gzip or plain) read exactly, malformed ones refused in one line, Debian's copy."""

from __future__ import annotations

import gzip
import hashlib
import math
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch
from conftest import QUICK, ROOT, compose_cfg
from fmnist_fixture import idx_bytes, write_set

from tunelab.data import FashionMNISTDataModule
from tunelab.data.images.fashion_mnist import FILES, IMAGES, LABELS, load_fashion_mnist, read_idx
from tunelab.errors import UserError
from tunelab.models import AirbenchNet
from tunelab.tasks import ClassifyTask
from tunelab.train import train

REAL = ROOT.parent / "shared" / "data" / "fashion-mnist"  # beside the checkout on the project's machines only


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_read_back_exactly(tmp_path, gz):
    arrays = write_set(tmp_path, gz=gz)
    data = load_fashion_mnist(tmp_path, checksums=False, url=None, debian_dir=None)
    assert data["train_images"].shape == (60, 1, 28, 28) and data["train_images"].dtype == torch.uint8
    assert torch.equal(data["train_images"][:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert data["test_labels"].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert data["classes"][9] == "Ankle boot"


def test_debian_folder_is_used_when_root_lacks_the_files(tmp_path):
    arrays = write_set(tmp_path / "debian")
    data = load_fashion_mnist(tmp_path / "empty", checksums=False, url=None, debian_dir=tmp_path / "debian")
    assert data["test_labels"].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    with pytest.raises(UserError, match=r"no train-images-idx3-ubyte\(.gz\) in .*empty"):
        load_fashion_mnist(tmp_path / "empty", checksums=False, url=None, debian_dir=tmp_path / "nowhere")


def test_the_checksum_is_of_the_decompressed_bytes(tmp_path):
    write_set(tmp_path)
    stem = "train-images-idx3-ubyte"
    path = tmp_path / f"{stem}.gz"
    decompressed = gzip.decompress(path.read_bytes())
    md5 = hashlib.md5(decompressed).hexdigest()
    path.write_bytes(gzip.compress(decompressed, compresslevel=1))  # recompressed (as Debian does): same content
    assert read_idx(path, IMAGES, md5).shape == (60, 28, 28)
    with pytest.raises(UserError, match=rf"{stem}.gz: md5 of the decompressed bytes is {md5}, expected 0+"):
        read_idx(path, IMAGES, "0" * 32)


def malformed(data: bytes) -> dict[str, bytes]:
    """Broken versions of a valid idx image file."""
    return {
        "wrong magic": LABELS.to_bytes(4, "big") + data[4:],
        "truncated": data[:-5],
        "padded": data + b"\0",
        "count too high": data[:4] + (61).to_bytes(4, "big") + data[8:],
        "no header": data[:6],
        "zero-width images": data[:12] + (0).to_bytes(4, "big") + data[16:],
    }


@pytest.mark.parametrize("case", list(malformed(b"\0" * 16)))
def test_a_malformed_image_file_is_refused_naming_it(tmp_path, case):
    write_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(malformed(path.read_bytes())[case])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte: ") as err:
        load_fashion_mnist(tmp_path, checksums=False, url=None, debian_dir=None)
    assert "\n" not in str(err.value)


def test_garbled_gzip_labels_out_of_range_and_count_mismatch_are_refused(tmp_path):
    write_set(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    good = labels.read_bytes()
    labels.write_bytes(good[:20] + b"garbage" + good[27:])
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte\.gz: not a readable idx file"):
        load_fashion_mnist(tmp_path, checksums=False, url=None, debian_dir=None)
    labels.write_bytes(gzip.compress(idx_bytes(np.full(60, 10, dtype=np.uint8))))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte: label 10 is not a class"):
        load_fashion_mnist(tmp_path, checksums=False, url=None, debian_dir=None)
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(59, dtype=np.uint8))))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte: 59 labels for 60 images"):
        load_fashion_mnist(tmp_path, checksums=False, url=None, debian_dir=None)


def test_the_data_module_sizes_the_nets_for_one_channel_28_by_28(tmp_path):
    write_set(tmp_path / "fashion_mnist", n_train=400, n_test=100)
    cfg = compose_cfg(
        ["data=fashion_mnist", "data.checksums=false", "data.val_size=100", "model=cnn", *QUICK], tmp_path
    )
    cfg.paths.data_dir = str(tmp_path)
    dm = FashionMNISTDataModule(root=str(tmp_path / "fashion_mnist"), checksums=False, url=None, val_size=100)
    dm.setup()
    assert dm.net_dims() == {"in_channels": 1, "num_classes": 10, "image_size": [28, 28]}
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [300, 100, 100]
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1 and math.isfinite(metrics["val/loss"])


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real Fashion-MNIST files are not at {REAL}")
def test_the_real_files_pass_their_checksums_gzip_and_plain(tmp_path):
    data = load_fashion_mnist(REAL, url=None, debian_dir=None)
    assert data["train_images"].shape == (60000, 1, 28, 28) and data["test_images"].shape == (10000, 1, 28, 28)
    assert torch.bincount(data["test_labels"]).tolist() == [1000] * 10
    for stem in FILES:  # decompressed copies carry the same checksums
        (tmp_path / stem).write_bytes(gzip.decompress((REAL / f"{stem}.gz").read_bytes()))
    plain = load_fashion_mnist(tmp_path, url=None, debian_dir=None)
    assert torch.equal(plain["train_images"], data["train_images"])


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real Fashion-MNIST files are not at {REAL}")
@pytest.mark.slow(reason="reads and standardises the real 70,000 images for each recipe (10-25 s)")
@pytest.mark.parametrize("recipe", [p.stem for p in sorted((ROOT / "conf" / "experiment").glob("fmnist_*.yaml"))])
def test_the_recipes_run_a_short_fit_on_the_real_images(recipe, tmp_path):
    # 2 x 25 steps of 128 images: enough for airbench, whose lr starts low and whose logits are scaled
    # down, to leave chance (10 steps of its own 512 do not); 1,000 test images make the accuracy meaningful
    short = ["data.batch_size=128", "data.eval_batch_size=500", "trainer.limit_train_batches=25"]
    short += ["trainer.limit_val_batches=1", "trainer.limit_test_batches=2"]
    cfg = compose_cfg([f"experiment={recipe}", f"data.root={REAL}", *QUICK, *short, "logger=none"], tmp_path)
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.5  # chance is 0.1: 50 batches of real photos teach these nets


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_data_puts_the_net_weights_in_nhwc_too(tmp_path, channels_last):
    # oneDNN's CPU convolutions follow the weights' layout: NHWC batches alone leave them in NCHW
    write_set(tmp_path, n_train=200, n_test=50)
    dm = FashionMNISTDataModule(
        root=str(tmp_path), checksums=False, url=None, val_size=50, batch_size=50, channels_last=channels_last
    )
    net = AirbenchNet(1, widths=(4, 8, 8), image_size=(28, 28))
    task = ClassifyTask(net, partial(torch.optim.SGD, lr=0.01), {"name": "constant"}, classes=list("abcdefghij"))
    L.Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False, enable_model_summary=False).fit(task, dm)
    weights = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert all(w.is_contiguous(memory_format=layout) for w in weights)
    assert any(w.is_contiguous() != channels_last for w in weights)  # (a 1-channel stem is both layouts)
    assert all(torch.isfinite(w).all() for w in weights)
