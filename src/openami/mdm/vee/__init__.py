"""VEE: validation, estimation and editing of interval reads, as the AEIC guideline and
commercial MDMS (Oracle Utilities MDM, Itron, Siemens EnergyIP) do it, vectorised.

A pass over one day of a set of meters (a partition):

1. ``grid``: the raw reads are scattered into a dense long grid, one row per meter and
   interval slot, the four channels side by side (why long and dense: ``grid``'s docstring);
2. ``rules``: every enabled rule of the rule table (``rules.toml``, ``config``) is a Polars
   expression over the grid; hits become quality flags (``flags``: one bit each, read out
   as IEC 61968-9 ReadingQuality codes);
3. ``gap_policy``: missing intervals are asked for again (individual collection) and only
   estimated once the policy gives up waiting;
4. ``estimate``: linear interpolation for short gaps, the meter's reference-day profile for
   long ones, prorated to the registers' change when it is known;
5. ``engine.new_versions``: what changed becomes a new version in the validated store
   (``openami.store.validated``), raw reads stay untouched; ``edit`` adds audited manual
   edits.

``engine.validate_partition`` is the pure pass (no I/O: in-process or on a Dask worker);
``run.run_day`` drives it over a day of the lake, chunk by chunk of meters.
"""

from openami.mdm.vee.config import RuleConfig, VeeConfig, default_config, load_config
from openami.mdm.vee.edit import EditError, edit_reads
from openami.mdm.vee.engine import GAP_SCHEMA, PartitionResult, new_versions, validate_partition
from openami.mdm.vee.estimate import estimate
from openami.mdm.vee.flags import Quality, cim_codes, describe, espi_quality, from_cim_codes
from openami.mdm.vee.gap_policy import Gap, GapAction, GapPolicy, GapState
from openami.mdm.vee.grid import GridBuilder, GridInfo
from openami.mdm.vee.history import daily_stats, reference_profile, trailing_stats
from openami.mdm.vee.rules import RULES, Rule, evaluate, flagged
from openami.mdm.vee.run import RunSummary, run_day

__all__ = [
    "GAP_SCHEMA",
    "RULES",
    "EditError",
    "Gap",
    "GapAction",
    "GapPolicy",
    "GapState",
    "GridBuilder",
    "GridInfo",
    "PartitionResult",
    "Quality",
    "Rule",
    "RuleConfig",
    "RunSummary",
    "VeeConfig",
    "cim_codes",
    "daily_stats",
    "default_config",
    "describe",
    "edit_reads",
    "espi_quality",
    "estimate",
    "evaluate",
    "flagged",
    "from_cim_codes",
    "load_config",
    "new_versions",
    "reference_profile",
    "run_day",
    "trailing_stats",
    "validate_partition",
]
