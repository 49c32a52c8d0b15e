"""The ledger application: its commands (imports, corrections, payments, recoveries) and its
point-in-time queries, with typed results: the one application layer every entry point uses.

It holds the log (the library's recorder, with the ledger's additions named in `domain.ports`)
and, where a store has them, the views (`ReadModel`), which it catches up before it reads them.
"Today" is given to it as a function (the edge decides it, in Asia/Shanghai); the actor is an
argument of every command. Its methods are grouped by subject in the classes it is made of:

- `domain.ledger_base.LedgerBase`: the store, the views, the clock and the aggregates it reads;
- `domain.imports.RegisterCommands`: `import_register` (an import or a correction);
- `domain.money_moves.MoneyCommands`: `record_payment`, `record_recovery`;
- `domain.policy_commands.PolicyCommands`: `adopt_policy`, `policy_versions`, `policy_version`;
- `domain.designations.DesignationCommands`: `import_designations`, `revoke_designation`;
- `domain.holds.HoldCommands`: `place_hold`, `lift_hold`, `import_holds`;
- `domain.appropriations.AppropriationCommands`: `set_appropriation`, `adjust_appropriation`,
  `budget`, `require_release`;
- `domain.batches.BatchCommands` (on top of it): `propose_batch`, `approve_batch`,
  `publish_batch`, `object_to_batch`, `release_batch`, `batch`, `batches`, `batch_orders`;
- `domain.subsidy_commands.SubsidyCommands`: (九) hires' social insurance: `import_hires`,
  `import_contributions`; on top of it `domain.subsidy_money.SubsidyMoney`: `si_claims`,
  `record_si_payment`; and `domain.person_commands.PersonCommands`: `person`, `erase_person`;
- `domain.forecast.ForecastQueries`: `forecast`;
- `domain.city_progress.ProgressQueries` (on `domain.pipeline.PipelineQueries` and
  `domain.below_scale.BelowScaleCommands`): `import_below_scale`, `pipeline`, `conversion`,
  `progress`;
- `domain.queries.PointInTimeQueries`: `point`, `awards`, `totals`, `windows`, `register`,
  `register_sizes`, `imported_years`, `payments`, `revocations`, `enterprise`, `explain`,
  `audit_trail`, `reconciliations`.
"""

from __future__ import annotations

from domain.batches import BatchCommands
from domain.city_progress import ProgressQueries
from domain.designations import DesignationCommands
from domain.forecast import ForecastQueries
from domain.holds import HoldCommands
from domain.imports import RegisterCommands
from domain.money_moves import MoneyCommands
from domain.person_commands import PersonCommands
from domain.policy_commands import PolicyCommands
from domain.queries import PointInTimeQueries
from domain.subsidy_money import SubsidyMoney


class Ledger(
    RegisterCommands,
    MoneyCommands,
    PolicyCommands,
    DesignationCommands,
    HoldCommands,
    BatchCommands,
    SubsidyMoney,
    PersonCommands,
    ForecastQueries,
    ProgressQueries,
    PointInTimeQueries,
):
    """The scale-up award ledger. Commands append events; queries answer at a point in time."""

    name = "ledger"
