"""Names the dead-code check (vulture, `make lint`) cannot see used, each with why.

Not imported by anything: vulture reads it as code that uses these names.
"""

# ruff: noqa: B018, F821
# Attributes set on library objects, which the library reads.
_.decoder  # tokenizers.Tokenizer
_.post_processor  # tokenizers.Tokenizer
_.encode_special_tokens  # tokenizers.Tokenizer (tuiwiz.data.encode._backend)
_.max_length  # transformers.GenerationConfig
_.model_max_length  # a transformers tokenizer
_.justify  # rich table columns
_.no_wrap  # rich table columns
_._stdin  # textual-serve's AppService (tuiwiz.serve.server overrides how it starts apps)
_._open_app_process  # textual-serve's AppService calls it

# Dataclass fields written to JSON (a run's data report, the estimate's terms, GPU readings).
_.dropped_fully_masked
_.residual_grad
_.quant_type
_.utilization_memory

# The wizard's steps, imported by name (tuiwiz.ui.app.SCREENS).
DatasetStep
ModelStep
QuantLoraStep
ReviewStep
StartStep
TargetsStep
TrainingStep
