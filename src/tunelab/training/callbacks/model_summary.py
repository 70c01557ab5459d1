"""Lightning's rich model summary, less its FLOPs column and row where they say nothing.

Lightning counts FLOPs only with an `example_input_array`, which tunelab's tasks do not set (it would run a
forward pass before training, compiled nets included), and prints a FLOPs column of zeros and "Total FLOPs: 0"
all the same, with no switch to leave them out. So the table is drawn here without them in that case; with a
count, Lightning's own table is drawn.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count


class ModelTable(RichModelSummary):
    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            RichModelSummary.summarize(
                summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                total_flops, **summarize_kwargs,
            )  # fmt: skip
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]  # the first: the row numbers
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(
                name, style="dim" if name == " " else None, justify="right" if "Params" in name else "left"
            )
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = Table.grid()
        counts = (trainable_parameters, total_parameters - trainable_parameters, total_parameters)
        for label, count in zip(("Trainable", "Non-trainable", "Total"), counts, strict=True):
            totals.add_row(f"[bold]{label} params[/]: {get_human_readable_count(int(count))}")
        totals.add_row(f"[bold]Total estimated model params size (MB)[/]: {model_size:.3f}")
        totals.add_row(f"[bold]Modules in train mode[/]: {total_training_modes['train']}")
        totals.add_row(f"[bold]Modules in eval mode[/]: {total_training_modes['eval']}")
        console = get_console()
        console.print(table)
        console.print(totals)
