"""Step 5: how the base model is stored (4-bit, 8-bit or 16-bit) and the adapter's shape."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.widgets import Static

from tuiwiz.ui.widgets.field_row import FieldRow
from tuiwiz.ui.wizard.base import StepScreen
from tuiwiz.ui.wizard.lora_counts import trainable_line

FOUR_BIT_ONLY = (
    "quantization.bnb_4bit_quant_type",
    "quantization.bnb_4bit_use_double_quant",
    "quantization.bnb_4bit_compute_dtype",
)


class QuantLoraStep(StepScreen):
    STEP = "quantlora"
    DEFAULT_CSS = """
    QuantLoraStep #scale, QuantLoraStep #trainable { height: auto; margin-top: 1; }
    """

    def compose_form(self) -> ComposeResult:
        yield Static("Quantization of the base model", classes="section-title")
        yield FieldRow("quantization.mode")
        yield FieldRow("quantization.bnb_4bit_quant_type", "4-bit type")
        yield FieldRow("quantization.bnb_4bit_use_double_quant", "Double quantization")
        yield FieldRow("quantization.bnb_4bit_compute_dtype", "Compute dtype")
        yield FieldRow("quantization.upcast_unquantized", "Upcast to float32")
        yield Static("LoRA adapter", classes="section-title")
        yield FieldRow("lora.r", "Rank r")
        yield FieldRow("lora.lora_alpha", "Alpha")
        yield FieldRow("lora.lora_dropout", "Dropout")
        yield FieldRow("lora.use_rslora", "rsLoRA")
        yield FieldRow("lora.use_dora", "DoRA")
        yield Static("", id="scale", classes="derived")
        yield Static("", id="trainable")

    def on_mount(self) -> None:
        self.query_one("#f-quantization-mode Select").focus()

    def refresh_derived(self) -> None:
        four_bit = self.draft.get("quantization.mode") == "4-bit"
        for key in FOUR_BIT_ONLY:
            self.query_one("#f-" + key.replace(".", "-")).disabled = not four_bit
        quantized = self.draft.get("quantization.mode") != "none"
        self.query_one("#f-quantization-upcast_unquantized").disabled = not quantized
        r, alpha = self.draft.get("lora.r"), self.draft.get("lora.lora_alpha")
        scale = self.query_one("#scale", Static)
        try:
            if self.draft.get("lora.use_rslora"):
                value, how = alpha / math.sqrt(r), f"alpha / sqrt(r) = {alpha} / sqrt({r})"
            else:
                value, how = alpha / r, f"alpha / r = {alpha} / {r}"
            scale.update(f"Adapter scaling {how} = {value:.3g}")
        except (TypeError, ZeroDivisionError, ValueError):
            scale.update("")
        self.query_one("#trainable", Static).update(trainable_line(self.app, self.draft))
