"""The bundled demo: a tiny model built on first use (build), its task and data (data), and what a
run of it learned (compare). Works offline on a CPU; nothing is downloaded.

Light at import (the TUI imports it at start-up): torch and transformers load inside the
functions that need them.
"""

from tuiwiz.demo.build import (
    DEMO_MODEL_DIRNAME,
    demo_model_dir,
    ensure_demo_model,
    is_demo_model_built,
)
from tuiwiz.demo.data import (
    DEMO_INSTRUCTION,
    alpaca_user_content,
    demo_dataset_path,
    demo_heldout_path,
    load_jsonl,
)

__all__ = [
    "DEMO_INSTRUCTION",
    "DEMO_MODEL_DIRNAME",
    "alpaca_user_content",
    "demo_dataset_path",
    "demo_heldout_path",
    "demo_model_dir",
    "ensure_demo_model",
    "is_demo_model_built",
    "load_jsonl",
]
