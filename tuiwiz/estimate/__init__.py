"""Peak GPU memory of a training run, from the model's config.json alone (no weights, no data,
no GPU), with every term explained; and the changes that would make it fit.

    from tuiwiz.estimate import estimate, suggest
    est = estimate(resolved_config)          # Estimate: .total, .components, .to_json()
    suggest(resolved_config, free_bytes)     # [Suggestion(overrides, total_bytes, ...)]
"""

from tuiwiz.estimate.advice import Suggestion, suggest
from tuiwiz.estimate.core import Component, Estimate, estimate

__all__ = ["Component", "Estimate", "Suggestion", "estimate", "suggest"]
