"""Statistics every reported number carries: intervals (:mod:`.intervals`), tests against chance and Holm's
correction (:mod:`.chance`), paired comparisons (:mod:`.paired`) and the report they make (:mod:`.report`)."""

from dsbias.stats.chance import binomial_p, holm, permutation_p
from dsbias.stats.intervals import bootstrap_totals, wilson_ci
from dsbias.stats.paired import paired_gain
from dsbias.stats.report import (
    ALPHA,
    DEFF_SHOWN,
    classification_report,
    confusion_matrix,
    format_p,
    format_table,
    mean_std,
    primary_value,
    verdict,
    verdict_line,
)

__all__ = ["ALPHA", "DEFF_SHOWN", "binomial_p", "bootstrap_totals", "classification_report", "confusion_matrix",
           "format_p", "format_table", "holm", "mean_std", "paired_gain", "permutation_p", "primary_value",
           "verdict", "verdict_line", "wilson_ci"]
