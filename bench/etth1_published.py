"""Published ETTh1 test numbers the tables stand beside, with their sources and input lengths, and the targets.

Only results where every test window is scored: papers whose test loader drops the last partial batch
report flattered numbers and are not listed (SegRNN's and SparseTSF's repositories reran theirs after the fix).
"""

from __future__ import annotations

from typing import NamedTuple


class Published(NamedTuple):
    """ETTh1 test numbers for H = 96 / 192 / 336 / 720 (MAE where the source gives it), with where they are from."""

    mse: tuple[float, ...]
    mae: tuple[float, ...] | None
    source: str
    lookback: str  # the input length L, or how it was chosen


# Multivariate (M) at L = 96: the first table's comparison.
AT_96 = {
    # Not in the arXiv paper (its main tables use longer inputs): the SegRNN repository's README, "Comparison
    # Results for Lookback L = 96" (2024-06), one run per horizon of scripts/SegRNN/Lookback_96/etth1.sh
    # (GRU-512 at every horizon) after its test loader stopped dropping the last batch.
    "SegRNN": Published(
        (0.368, 0.408, 0.444, 0.446),
        (0.395, 0.419, 0.440, 0.457),
        "Lin et al. 2023 (arXiv 2308.11200), the L = 96 numbers from github.com/lss-1138/SegRNN's README "
        "(2024-06 rerun with every test window scored; one run per horizon, GRU-512 at every horizon)",
        "96",
    ),
    "CycleNet/Linear": Published(
        (0.379, 0.427, 0.464, 0.462), None, "Lin et al., NeurIPS 2024, mean of 5 seeds (MSE only here)", "96"
    ),
    "iTransformer": Published(
        (0.386, 0.441, 0.487, 0.503), (0.405, 0.436, 0.458, 0.491), "Liu et al., ICLR 2024", "96"
    ),
    "PatchTST": Published(
        (0.414, 0.460, 0.501, 0.500),
        (0.419, 0.445, 0.466, 0.488),
        "Nie et al., ICLR 2023, at L = 96 as in the iTransformer paper",
        "96",
    ),
    "DLinear": Published(
        (0.386, 0.437, 0.481, 0.519),
        (0.400, 0.432, 0.459, 0.516),
        "Zeng et al., AAAI 2023, at L = 96 as in the iTransformer paper",
        "96",
    ),
}

# Multivariate at any input length: the lookback table's comparison (MSE).
ANY_LOOKBACK = {
    "SegRNN (IoT-J)": Published(
        (0.351, 0.392, 0.423, 0.466), None, "Lin et al., IEEE Internet of Things Journal version, Table II", "720"
    ),
    "SegRNN (SparseTSF rerun)": Published(
        (0.351, 0.390, 0.449, 0.492), None, "SegRNN rerun in github.com/lss-1138/SparseTSF's README", "720"
    ),
    "DUET": Published(
        (0.352, 0.398, 0.414, 0.429), None, "Qiu et al., KDD 2025 (TFB protocol), lookback searched", "96/336/512"
    ),
    "SparseTSF/Linear": Published((0.362, 0.404, 0.435, 0.426), None, "Lin et al., journal version", "720"),
}

# Univariate (S, OT) at any input length.
S_ANY_LOOKBACK = {
    "NLinear": Published(
        (0.053, 0.069, 0.081, 0.080),
        None,
        "Zeng et al., AAAI 2023 (published before its test loader was fixed, so slightly flattered)",
        "336",
    ),
}

# Test MSE targets of the segment recipes as issue 32 sets them: about 1% below the best honest result at each
# horizon (.360 at M, L = 96, H = 96 is stricter: 2% below SegRNN's .368).
TARGETS = {
    "M at L = 96": (0.360, 0.404, 0.439, 0.441),
    "M, lookback chosen": (0.348, 0.386, 0.410, 0.422),
    "S, lookback chosen": (0.053, 0.069, 0.081, 0.080),
}
# Issue 46: the test MSE the searched recipes aim at (3-seed means), by setting
SEARCH_TARGETS = {"s96": 0.053, "s192": 0.069, "s336": 0.081, "s720": 0.080, "m96": 0.351}
