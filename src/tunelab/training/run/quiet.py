"""Lines that Lightning and torch print in every run but that tell a tunelab user nothing, kept out of the terminal
and train.log, so that a warning that does reach them is worth reading.

- Lightning's "💡 Tip: ... install litlogger" advert, printed when no LitLogger is in use, and its note that the
  callbacks hold a model summary already (tunelab's, without an empty FLOPs column).
- Lightning's own `_pytree` code under torch 2.13: "`isinstance(treespec, LeafSpec)` is deprecated", a
  FutureWarning about Lightning's internals that nothing in a run can act on.
- A second copy of each of Lightning's info lines on stderr: the `lightning` package gives its logger a
  console handler of its own, while its records also reach the root logger, which a Hydra job has set up
  (the console and train.log). Where the root logger has handlers, Lightning's own is removed.
The first two are dropped by matching their own text, so anything else those libraries say still shows.
"""

from __future__ import annotations

import logging
import warnings

ADVERT = "💡 Tip:"
OWN_SUMMARY = "Trainer already configured with model summary callbacks"  # tunelab's (callbacks/model_summary.py)
LEAF_SPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# The loggers that print the advert: rank_zero_info's, under both of Lightning's package names.
LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class DropAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith((ADVERT, OWN_SUMMARY))


def quiet_third_party() -> None:
    """Install the filters (once per process, however often called)."""
    warnings.filterwarnings("ignore", message=LEAF_SPEC, category=FutureWarning)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropAdvert) for f in logger.filters):
            logger.addFilter(DropAdvert())
    lightning = logging.getLogger("lightning")
    if logging.getLogger().handlers and lightning.propagate:
        for handler in [h for h in lightning.handlers if type(h) is logging.StreamHandler]:
            lightning.removeHandler(handler)
