"""Classification: cross-entropy with label smoothing, accuracy overall and per class, optional TTA."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torchmetrics import ConfusionMatrix, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from tunelab.errors import UserError
from tunelab.tasks.base import TrainingTask

TTA_MODES = ("none", "flip", "flip_shift")


class ClassifyTask(TrainingTask):
    """Train `net` on (image, label) batches; `val/acc`, `test/acc`, `test/acc_<class>`, a confusion matrix.

    `tta`: test-time augmentation for val/test, averaging the softmax of the image and its mirror
    (`flip`), plus one-pixel shifts of both (`flip_shift`). A net with an `init_from_data(images)`
    method (AirbenchNet's whitening stem) gets 5000 training images before fit, unless fine-tuning loaded
    the parts it sets (its `data_init_parts`); `compile` runs the
    net through `torch.compile` (state-dict keys unchanged, so checkpoints stay loadable).
    """

    kind = "classify"
    optimized_metric = "val/loss"

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Mapping,
        classes: Sequence[str],
        label_smoothing: float = 0.0,
        tta: str = "none",
        bias_lr_scale: float = 1.0,
        compile: bool = False,
    ) -> None:
        super().__init__(net, optimizer, scheduler, bias_lr_scale)
        self.compile_net = compile
        self.data_init = True  # the net's init_from_data at the fit's setup (fine-tuning turns it off, finetune.py)
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"model.label_smoothing must be in [0, 1); got {label_smoothing}")
        if tta not in TTA_MODES:
            raise UserError(f"model.tta must be one of {', '.join(TTA_MODES)}; got '{tta}'")
        self.classes, self.label_smoothing, self.tta = list(classes), label_smoothing, tta
        n = len(self.classes)
        # Accuracy is the share of correct predictions (micro). torchmetrics' default macro average sums
        # per-class shares in float32 weights of 1/n, which reports 1.0000001 for a perfect classifier.
        self.val_acc = MulticlassAccuracy(num_classes=n, average="micro")
        self.test_acc = MetricCollection({"acc": MulticlassAccuracy(num_classes=n, average="micro")}, prefix="test/")
        self.test_per_class = MulticlassAccuracy(num_classes=n, average=None)
        self.confusion = ConfusionMatrix(task="multiclass", num_classes=n)
        self.val_metric_names = ("val/loss", "val/acc")

    def setup(self, stage: str) -> None:
        if getattr(self.trainer.datamodule, "channels_last", False):
            # NHWC weights too, not only NHWC batches: oneDNN's CPU convolutions follow the weights' layout
            # (airbench at 28x28 on 2 cores: 1.5 ms per training image against 2.5 with NHWC batches alone).
            self.net.to(memory_format=torch.channels_last)
        # Before Lightning restores a checkpoint, so a resumed run keeps its trained stem.
        init = getattr(self.net, "init_from_data", None)
        if stage == "fit" and init is not None and self.data_init:
            init(self.trainer.datamodule.train_sample(5000))
        if self.compile_net:
            self.net.compile()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x).float(), y, label_smoothing=self.label_smoothing)
        self.log_train_loss(loss, len(x))
        return loss

    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Log of the TTA-averaged softmax (plain logits when tta=none)."""
        if self.tta == "none":
            return self(x).float()
        views = [x, x.flip(-1)]
        if self.tta == "flip_shift":
            views += [torch.roll(v, shifts=s, dims=d) for v in views[:2] for s, d in ((1, -1), (-1, -1))]
        probs = torch.stack([self(v).float().softmax(-1) for v in views]).mean(0)
        return probs.clamp_min(1e-12).log()

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.predict_logits(x)
        self.log_eval_loss("val", F.cross_entropy(logits, y), len(x))
        self.val_acc.update(logits, y)
        self.log("val/acc", self.val_acc, prog_bar=True, batch_size=len(x))

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.predict_logits(x)
        self.log_eval_loss("test", F.cross_entropy(logits, y), len(x))
        self.test_acc.update(logits, y)
        self.log_dict(self.test_acc, batch_size=len(x))
        self.test_per_class.update(logits, y)
        self.confusion.update(logits, y)

    def on_test_epoch_end(self) -> None:
        per_class = self.test_per_class.compute()
        self.log_dict({f"test/acc_{name}": acc for name, acc in zip(self.classes, per_class, strict=True)})
        self.log_figure("test/confusion_matrix", confusion_figure(self.confusion.compute().cpu(), self.classes))
        self.test_per_class.reset()
        self.confusion.reset()

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.predict_logits(batch[0]).argmax(-1)


def confusion_figure(matrix: torch.Tensor, classes: Sequence[str]) -> plt.Figure:
    """Counts of true (rows) against predicted (columns) classes, annotated."""
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in zip(
        torch.cartesian_prod(torch.arange(len(classes)), torch.arange(len(classes))).tolist(),
        matrix.flatten().tolist(),
        strict=True,
    ):
        ax.text(
            j,
            i,
            str(int(count)),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > matrix.max() / 2 else "black",
        )
    fig.tight_layout()
    return fig
