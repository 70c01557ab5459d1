"""CIFAR-10: the archive reader's guarantees, the device-side augmentations, and a real short training run."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import time

import pytest
import torch
from cifar_fixture import CLASSES, batch_bytes, write_archive
from conftest import QUIET, compose_cfg, event_dir, read_metrics, run_app, run_dirs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tunelab.data import CIFAR10DataModule
from tunelab.data.images import image_augment as A
from tunelab.data.images.cifar_archive import load_cifar10, safe_extract
from tunelab.data.images.device_batches import Augment, DeviceBatches
from tunelab.errors import UserError


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    batches = write_archive(path)
    return path, batches


def test_pixels_and_labels_read_back_exactly(archive):
    path, batches = archive
    data = load_cifar10(path.parent, md5=md5(path), url=None)
    assert data["classes"] == CLASSES
    assert data["train_images"].dtype == torch.uint8 and data["train_images"].shape == (1000, 3, 32, 32)
    rows, labels = batches["data_batch_3"]
    got = data["train_images"][400:600]
    assert torch.equal(got.reshape(200, 3072), torch.from_numpy(rows))  # channel-major rows
    assert torch.equal(got[7, 1], torch.from_numpy(rows[7, 1024:2048].reshape(32, 32)))  # green plane, row-major
    assert data["train_labels"][400:600].tolist() == labels
    assert data["test_labels"].tolist() == batches["test_batch"][1]


def test_cache_reloads_fast_and_follows_the_archive(archive):
    path, _ = archive
    first = load_cifar10(path.parent, md5=None, url=None)
    assert (path.parent / "cifar10_uint8.pt").is_file()
    started = time.perf_counter()
    again = load_cifar10(path.parent, md5=None, url=None)
    assert time.perf_counter() - started < 1.0
    assert torch.equal(first["train_images"], again["train_images"])
    write_archive(path, seed=5)  # a different archive in place: parsed again
    assert not torch.equal(load_cifar10(path.parent, md5=None, url=None)["train_images"], first["train_images"])


def test_wrong_checksum_is_refused_and_leaves_no_cache(archive):
    path, _ = archive
    with pytest.raises(UserError, match="md5"):
        load_cifar10(path.parent, md5="0" * 32, url=None)
    assert sorted(p.name for p in path.parent.iterdir()) == ["cifar-10-python.tar.gz"]


@pytest.mark.parametrize("member", ["../escape.txt", "/tmp/absolute.txt", "cifar-10-batches-py/../../escape.txt"])
def test_member_outside_the_target_is_refused(tmp_path, member):
    path = tmp_path / "evil.tar.gz"
    write_archive(path, per_batch=2, n_test=2, extra={member: b"gotcha"})
    target = tmp_path / "out"
    with pytest.raises(UserError, match="outside"):
        safe_extract(path, target)
    assert not (tmp_path / "escape.txt").exists() and list(target.iterdir()) == []


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_links_and_devices_are_refused(tmp_path, kind):
    path = tmp_path / "links.tar.gz"
    write_archive(path, per_batch=2, n_test=2)
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for member, payload in members:
            tar.addfile(member, None if payload is None else __import__("io").BytesIO(payload))
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_6")
        link.type, link.linkname = kind, "cifar-10-batches-py/data_batch_1"
        tar.addfile(link)
    target = tmp_path / "out"
    with pytest.raises(UserError, match="links and devices"):
        safe_extract(path, target)
    assert list(target.iterdir()) == []


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_batch_that_would_call_a_function_is_refused(tmp_path):
    evil = pickle.dumps({b"data": Exploit(), b"labels": [0]}, protocol=2)
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    write_archive(path, per_batch=2, n_test=2, extra={})
    # replace data_batch_2 by the crafted pickle
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for member, payload in members:
            if member.name.endswith("data_batch_2"):
                payload, member.size = evil, len(evil)
            tar.addfile(member, None if payload is None else __import__("io").BytesIO(payload))
    with pytest.raises(UserError, match="refused to unpickle"):
        load_cifar10(path.parent, md5=None, url=None)
    assert not (tmp_path / "pwned").exists() and not (path.parent / "cifar10_uint8.pt").exists()


def test_a_batch_with_wrong_shape_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (folder / name).write_bytes(batch_bytes(torch.zeros(4, 100, dtype=torch.uint8).numpy(), [0] * 4, name))
    with pytest.raises(UserError, match="3072"):
        load_cifar10(tmp_path, md5=None, url=None)


# -- augmentations ---------------------------------------------------------------------------------------
def batch(n: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_augmentations_keep_shape_and_dtype():
    x, gen = batch(), torch.Generator().manual_seed(1)
    outputs = [
        A.random_crop(x, 4, gen),
        A.flip(x, torch.rand(16) < 0.5),
        A.cutout(x, 8, gen),
        A.random_affine(x, 15.0, (0.9, 1.1), 0.1, gen),
    ]
    for out in outputs:
        assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()


def test_flip_twice_is_identity():
    x, mask = batch(), torch.rand(16) < 0.5
    assert torch.equal(A.flip(A.flip(x, mask), mask), x)
    assert torch.equal(A.flip(x, mask)[~mask], x[~mask])


def test_crops_are_windows_of_the_padded_image():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    out = A.random_crop(x, 4, torch.Generator().manual_seed(3))
    for i in range(2):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_cutout_zeroes_one_square_per_image():
    out = A.cutout(torch.ones(8, 3, 32, 32), 6, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 36).all()


def loader(augment, **kwargs) -> DeviceBatches:
    images = (batch(64) * 255).to(torch.uint8)
    return DeviceBatches(
        images, torch.arange(64) % 10, 16, torch.full((3,), 0.5), torch.full((3,), 0.25), augment=augment, **kwargs
    )


def test_eval_batches_are_only_normalised():
    plain = loader(None)
    x, y = next(iter(plain))
    assert torch.equal(x, (plain.images[:16].float() / 255 - 0.5) / 0.25) and torch.equal(y, torch.arange(16) % 10)


def test_alternate_flip_mirrors_every_other_epoch():
    epoch = [0]
    aug = loader(Augment(flip="alternate"), epoch=lambda: epoch[0])
    first = next(iter(aug))[0]
    epoch[0] = 1
    second = next(iter(aug))[0]
    assert torch.equal(second, first.flip(-1))


def test_ddp_shards_are_disjoint_and_equal():
    shards = [loader(None, shuffle=True, rank=r, world_size=3) for r in range(3)]
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert len({len(s) for s in seen}) == 1 and len(shards[0]) == 2  # 21 images each, batches of 16
    order = [shard._indices(torch.Generator().manual_seed(0)) for shard in shards]
    assert len(set(torch.cat(order).tolist())) == 63


@pytest.mark.parametrize("n_images", [50, 250])
def test_training_batches_are_full_and_hold_every_image_each_epoch(n_images):
    """Issue 44, defect 2: the last partial training batch was dropped (58 of 250 images unseen every epoch; a set
    below one batch trained nothing). It is filled up from the start of the epoch's order instead."""
    images = torch.zeros(n_images, 1, 4, 4, dtype=torch.uint8)
    labelled = (images, torch.arange(n_images))
    plain = DeviceBatches(*labelled, 64, torch.zeros(1), torch.ones(1), shuffle=True, fill_last=True)
    labels = [y for _, y in plain]
    assert len(labels) == len(plain) == -(-n_images // 64) and {len(y) for y in labels} == {64}
    assert set(torch.cat(labels).tolist()) == set(range(n_images))


def test_datamodule_split_is_seeded(archive):
    path, _ = archive
    dm = CIFAR10DataModule(root=str(path.parent), val_size=0.2, md5=None, url=None)
    dm.setup()
    assert [len(dm.splits[s][0]) for s in ("train", "val", "test")] == [800, 200, 200]
    again = CIFAR10DataModule(root=str(path.parent), val_size=0.2, md5=None, url=None)
    again.setup()
    assert torch.equal(dm.splits["val"][1], again.splits["val"][1])


# -- training --------------------------------------------------------------------------------------------
def test_forecasting_model_on_images_is_refused(archive, tmp_path):
    path, _ = archive
    cfg = compose_cfg(
        ["data=cifar10", f"data.root={path.parent}", "data.md5=null", "data.val_size=100", "model=lstm"], tmp_path
    )
    from tunelab.train import train

    with pytest.raises(UserError, match="classify model"):
        train(cfg)


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_short_training_on_separable_classes(archive, tmp_path, model):
    path, _ = archive
    extra = ["model.net.width=8"] if model == "resnet" else []
    result = run_app(
        [
            "data=cifar10",
            f"data.root={path.parent}",
            "data.md5=null",
            f"model={model}",
            *extra,
            "data.batch_size=32",
            "optimizer=adam",
            "trainer.max_epochs=4",
            "early_stopping=none",
            f"paths.log_dir={tmp_path / 'logs'}",
            "data.val_size=200",
            *QUIET,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "logs")
    metrics = read_metrics(run_dir)["metrics"]
    assert metrics["test/acc"] > 0.5 and metrics["val/acc"] > 0.5  # chance is 0.1
    assert {f"test/acc_{c}" for c in CLASSES} <= set(metrics)
    events = EventAccumulator(str(event_dir(run_dir)), size_guidance={"images": 0})
    events.Reload()
    assert "test/confusion_matrix" in events.Tags()["images"]
    assert {"val/acc", "test/acc", "train/loss"} <= set(events.Tags()["scalars"])


@pytest.mark.parametrize("tta", ["flip", "flip_shift"])
def test_tta_is_mirror_invariant_and_keeps_shapes(tta):
    from tunelab.models import SmallCNN
    from tunelab.tasks import ClassifyTask

    task = ClassifyTask(SmallCNN(), optimizer=None, scheduler={}, classes=CLASSES, tta=tta).eval()
    x = batch(4)
    with torch.no_grad():
        logits = task.predict_logits(x)
        assert logits.shape == (4, 10) and torch.allclose(logits.exp().sum(-1), torch.ones(4), atol=1e-5)
        assert torch.allclose(logits, task.predict_logits(x.flip(-1)), atol=1e-5)
