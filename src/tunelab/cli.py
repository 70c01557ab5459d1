"""Command-line shims that Hydra's override grammar needs for this project's config groups."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Groups whose option names are numbers (precision=32, precision=64). Hydra parses `precision=64` as
# the integer 64 and refuses it as a group choice, so such values are quoted before Hydra sees them.
NUMERIC_GROUPS = ("precision",)


def quote_numeric_choices(argv: Sequence[str]) -> list[str]:
    """`precision=64` -> `precision='64'`; `precision=32,64` -> `precision='32','64'` (a sweep)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("~+") in NUMERIC_GROUPS and re.fullmatch(r"\d+(,\d+)*", value):
            arg = f"{key}=" + ",".join(f"'{v}'" for v in value.split(","))
        out.append(arg)
    return out
