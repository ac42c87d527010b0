"""Names that refer to what tuiwiz bundles: the demo model and the demo dataset.

Presets say `name_or_path = "tuiwiz:demo-model"` and `path = "tuiwiz:demo-data"`; they resolve to
the model built on first use in the cache and to the dataset shipped inside the package.
"""

from __future__ import annotations

from collections.abc import Callable

DEMO_MODEL = "tuiwiz:demo-model"
DEMO_DATA = "tuiwiz:demo-data"


def resolve_model(ref: str, progress: Callable[[str], None] | None = None) -> str:
    if ref != DEMO_MODEL:
        return ref
    from tuiwiz.demo import ensure_demo_model

    return str(ensure_demo_model(progress))


def resolve_data(ref: str) -> str:
    if ref != DEMO_DATA:
        return ref
    from tuiwiz.demo import demo_dataset_path

    return str(demo_dataset_path())
