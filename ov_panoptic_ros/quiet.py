"""Quiet by default: silence what dependencies print that a user cannot act on.

Applied when the package is imported (the node, the CLI, the tests): spconv's use of a deprecated torch.amp
API (FutureWarning at its import), torch.fx's notice about is_fx_tracing, and open_clip's warning that our
own tiny test models (the `ov-` configs) are randomly initialised, which they are on purpose. Anything else
still shows. `ov-panoptic --verbose` undoes it.
"""
from __future__ import annotations

import logging
import warnings

_DEPRECATED_AMP = r"`torch\.cuda\.amp\.custom_(fwd|bwd)\(args\.\.\.\)` is deprecated"
_FX_LOGGER = "torch.fx._symbolic_trace"


class _OwnRandomModels(logging.Filter):
    """Drops open_clip's 'No pretrained weights loaded' for the package's own ov-* model configs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded for model 'ov-")


_FILTER = _OwnRandomModels()


def quiet_dependencies() -> None:
    warnings.filterwarnings("ignore", message=_DEPRECATED_AMP, category=FutureWarning)
    logging.getLogger(_FX_LOGGER).setLevel(logging.ERROR)
    logging.getLogger().addFilter(_FILTER)


def verbose() -> None:
    """Show everything again, and the package's own INFO logs."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    logging.getLogger(_FX_LOGGER).setLevel(logging.NOTSET)
    logging.getLogger().removeFilter(_FILTER)
    logging.basicConfig(level=logging.INFO)
