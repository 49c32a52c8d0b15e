"""`subsidy-ledger demo`: a synthetic Shanxi imported, paid and summarised in a fresh SQLite ledger."""

from __future__ import annotations

import random
import shlex
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from adapters.bootstrap import open_store, today_in_shanghai
from adapters.cli.output import EXIT_OK, EXIT_REFUSED, emit_json, fail, pad, width
from adapters.demo.below_scale import print_below_scale, run_below_scale
from adapters.demo.hires import PAID_MONTHS, run_hires
from adapters.demo.synthetic import SyntheticProvince, designations, generate, holds
from adapters.demo.workflow import WORKFLOW_REASON, run_workflow
from adapters.files.designations_csv import read_designations, write_designations
from adapters.files.holds_csv import read_holds, write_holds
from adapters.files.register_csv import CsvRegister, write_register
from adapters.files.treasury_csv import write_treasury
from domain.application import Ledger
from domain.codes import cities
from domain.money import yuan
from domain.policy import DesignationKind, load_policy
from domain.progress import stage

DEFAULT_DIRECTORY = "demo"
LEDGER_FILE = "demo-ledger.db"
TREASURY_FILE = "treasury-payments.csv"
REGISTERS_DIRECTORY = "registers"
MARKER_FILE = ".subsidy-ledger-demo"
"""Says a directory holds a demo, which the next demo may replace."""
ACTOR = "demo"
# 一 总体要求: more than 10,000 above-scale industrial enterprises by the end of 2025.
GOAL_FIRMS = 10_000
GOAL_YEAR = 2025
# The baseline is the last register before 晋办发〔2020〕38号 took effect; the 2026 register, the
# first since 晋财规建〔2025〕1号, ends the data.
FIRST_YEAR, LAST_YEAR = 2020, 2026
POLICY_2025 = Path(str(resources.files("domain").joinpath("policies", "jincaiguijian-2025-1.toml")))
"""The 2025 version, adopted by the demo before the first register it governs is imported."""
ADOPTION_REASON = "晋财规建〔2025〕1号 施行 (2025-06-01): governs the 2025 cohort on"
DESIGNATIONS_DIRECTORY = "designations"
HOLDS_FILE = "holds.csv"
PERSON_SECRET_FILE = "person.secret"  # noqa: S105 - the file's name, not the secret
"""The (九) vault's secret (mode 0600): the README's commands on the demo name it."""
MIN_SCALE, MAX_SCALE = 0.005, 10.0

# How the treasury settles awards due in a past fiscal year: most in one payment, some in two
# instalments, some left unpaid (DOMAIN.md, "awards decided but left unpaid" is what auditors find).
PAID_IN_FULL, PAID_IN_TWO = 0.80, 0.10
# Awards due in the fiscal year after the last register year: the year is under way.
PAID_IN_CURRENT_YEAR = 0.55
FIRST_INSTALMENT = (2, 5)  # 40% first, the rest later (a pattern seen in other provinces)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            pad(cell, w, right=i >= right_from)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in [header, *rows]
    ]


def _prepare(out: str) -> Path | str:
    """The directory for the demo, emptied if it holds an earlier demo; or why it cannot be used.
    A directory that holds anything but a demo is left alone."""
    d = Path(out).expanduser()
    if d.exists() and not d.is_dir():
        return f"--out {d} is not a directory; nothing was changed"
    if d.exists() and any(d.iterdir()):
        if not (d / MARKER_FILE).is_file():
            return (
                f"--out {d} holds files that are not a demo's (no {MARKER_FILE}); nothing was "
                "changed: give a new or empty directory, or an earlier demo's, which is replaced"
            )
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    (d / MARKER_FILE).write_text(
        "Written by `subsidy-ledger demo`; the next demo into this directory replaces all of it.\n",
        encoding="utf-8",
    )
    return d


def _url(d: Path) -> str:
    return f"sqlite:///{d / LEDGER_FILE}"


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def _pay(
    ledger: Ledger, seed: int, last_year: int, today: date, workflow_year: int
) -> dict[str, int]:
    """Record treasury payments through the ledger's own command, as the finance bureau would;
    the awards of `workflow_year` on go through a payment batch instead (`_workflow`)."""
    # Its own stream, so the payments do not shift when the generator's draws change.
    rng = random.Random(f"subsidy-ledger-demo-payments-{seed}")  # noqa: S311 - demo data, not secrets
    awards = ledger.awards()
    on_hold = ledger.views.holds(None)
    vouchers: dict[int, int] = defaultdict(int)
    recorded = amount_paid = after_today = held_back = 0
    with stage("record payments", total=len(awards), unit="awards") as bar:
        for award in awards:
            bar.advance()
            if award.due_fiscal_year >= workflow_year:
                continue
            plan = _plan(rng, award.due_fiscal_year, award.amount_fen, last_year, today)
            for part, paid_on in plan:
                if paid_on > today:
                    # Only when the demo runs before the end of its own data: not yet paid.
                    after_today += 1
                    continue
                if any(h.in_force(paid_on) for h in on_hold.get(award.uscc, ())):
                    held_back += 1  # the ledger would refuse it: the treasury holds it back
                    continue
                vouchers[paid_on.year] += 1
                ref = f"GK{paid_on.year}{vouchers[paid_on.year]:06d}"
                ledger.record_payment(award.entitlement_id, ref, part, paid_on, actor=ACTOR)
                recorded += 1
                amount_paid += part
    return {
        "recorded": recorded,
        "amount_fen": amount_paid,
        "awards": len(awards),
        "planned_after_today": after_today,
        "held_back": held_back,
    }


def _plan(
    rng: random.Random, fy: int, amount: int, last_year: int, today: date
) -> list[tuple[int, date]]:
    """How the treasury pays one award due in fiscal year `fy`: (amount, date) per payment."""
    draw = rng.random()
    plan: list[tuple[int, date]] = []
    # Paid from the budget of the due fiscal year (DOMAIN.md default 3), in its working months.
    if fy <= last_year:
        if draw < PAID_IN_FULL:
            plan = [(amount, _random_day(rng, date(fy, 3, 1), date(fy, 11, 30)))]
        elif draw < PAID_IN_FULL + PAID_IN_TWO:
            first = amount * FIRST_INSTALMENT[0] // FIRST_INSTALMENT[1]
            plan = [
                (first, _random_day(rng, date(fy, 3, 1), date(fy, 6, 30))),
                (amount - first, _random_day(rng, date(fy, 7, 1), date(fy, 11, 30))),
            ]
    elif fy == last_year + 1 and draw < PAID_IN_CURRENT_YEAR and today.year >= fy:
        # The fiscal year under way: paid so far, never after today (the ledger refuses a
        # future date, Asia/Shanghai).
        last = min(date(fy, 11, 30), today)
        plan = [(amount, _random_day(rng, min(date(fy, 3, 1), last), last))]
    return plan


def _summary(
    ledger: Ledger, province: SyntheticProvince, d: Path, payments: dict[str, int]
) -> dict[str, Any]:
    sizes = ledger.register_sizes()
    counts = {r.year: r.counts for r in ledger.imported_years()}
    by_city: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
    register: list[dict[str, Any]] = []
    for year in province.years:
        rows = [r for r in sizes if r.year == year]
        for r in rows:
            by_city[year][r.city_code] = {"size": r.size, "first_entries": r.first_entries}
        register.append(
            {
                "year": year,
                "size": sum(r.size for r in rows),
                "first_entries": sum(r.first_entries for r in rows),
                "re_entries": sum(r.re_entries for r in rows),
                "left": counts.get(year, {}).get("left", 0),
                "by_city": by_city[year],
            }
        )
    fiscal: dict[int, dict[str, Any]] = {}
    for t in ledger.totals(by="kind", basis="due"):
        fy = fiscal.setdefault(
            t.fiscal_year,
            {
                "fiscal_year": t.fiscal_year,
                "count": 0,
                "entitled_fen": 0,
                "paid_fen": 0,
                "outstanding_fen": 0,
                "by_kind": {},
            },
        )
        for key in ("count", "entitled_fen", "paid_fen", "outstanding_fen"):
            fy[key] += getattr(t, key)
        fy["by_kind"][t.group] = {
            "count": t.count,
            "entitled_fen": t.entitled_fen,
            "paid_fen": t.paid_fen,
        }
    goal_size = next((r["size"] for r in register if r["year"] == GOAL_YEAR), None)
    # The province's goal, scaled like every count of the synthetic province.
    target = max(1, round(GOAL_FIRMS * province.scale))
    goal: dict[str, Any] = {
        "year": GOAL_YEAR,
        "province_target": GOAL_FIRMS,
        "target": target,
        "register_size": goal_size,
    }
    if goal_size is not None:
        goal["percent"] = round(100 * goal_size / target, 1)
        goal["met"] = goal_size > target  # "超过1万户": more than, not as many as
    url = _url(d)
    return {
        "seed": province.seed,
        "scale": province.scale,
        "years": [province.first_year, province.last_year],
        "register_sizes": {str(r["year"]): r["size"] for r in register},
        "first_entries": {str(r["year"]): r["first_entries"] for r in register},
        "register": register,
        "fiscal_years": [fiscal[y] for y in sorted(fiscal)],
        "payments": payments,
        "goal": goal,
        "directory": str(d),
        "ledger_path": str(d / LEDGER_FILE),
        "ledger_url": url,
        "query": f"subsidy-ledger awards --db {shlex.quote(url)}",
        "environment": environment(url, d / PERSON_SECRET_FILE),
    }


def _print(doc: dict[str, Any]) -> None:
    names = {code: c.name for code, c in cities().items()}
    years = [r["year"] for r in doc["register"]]
    first, last = doc["years"]
    print(
        f"Synthetic Shanxi (seed {doc['seed']}, scale {doc['scale']:g}): registers {first}-{last} "
        f"imported, {doc['payments']['recorded']:,} payments recorded, "
        f"{doc['payments']['held_back']:,} held back by the holds of {doc['holds_file']}."
    )
    print()
    print("Register size, with first entries (+N), by city and year")
    header = ["city", *map(str, years)]
    body = []
    for code in sorted(names):
        cells = []
        for r in doc["register"]:
            c = r["by_city"].get(code, {"size": 0, "first_entries": 0})
            cells.append(f"{c['size']:,} +{c['first_entries']:,}")
        body.append([names[code], *cells])
    body.append(
        ["全省 total", *(f"{r['size']:,} +{r['first_entries']:,}" for r in doc["register"])]
    )
    body.append(["re-entered", *(f"{r['re_entries']:,}" for r in doc["register"])])
    body.append(["left", *(f"{r['left']:,}" for r in doc["register"])])
    print("\n".join(_table(header, body)))
    print(
        f"({first} is the baseline: its +N are the firms the register says first entered in {first}.)"
    )
    print()
    print("Awards by due fiscal year (basis due; amounts in yuan)")
    kinds = sorted({k for fy in doc["fiscal_years"] for k in fy["by_kind"]})
    header = ["fiscal year", "awards", *kinds, "entitled", "paid", "outstanding"]
    body = [
        [
            str(fy["fiscal_year"]),
            f"{fy['count']:,}",
            *(f"{fy['by_kind'].get(k, {}).get('count', 0):,}" for k in kinds),
            yuan(fy["entitled_fen"]),
            yuan(fy["paid_fen"]),
            yuan(fy["outstanding_fen"]),
        ]
        for fy in doc["fiscal_years"]
    ]
    totals = [sum(fy[k] for fy in doc["fiscal_years"]) for k in ("entitled_fen", "paid_fen")]
    body.append(
        [
            "total",
            f"{sum(fy['count'] for fy in doc['fiscal_years']):,}",
            *(
                f"{sum(fy['by_kind'].get(k, {}).get('count', 0) for fy in doc['fiscal_years']):,}"
                for k in kinds
            ),
            yuan(totals[0]),
            yuan(totals[1]),
            yuan(totals[0] - totals[1]),
        ]
    )
    print("\n".join(_table(header, body)))
    print()
    print("Awards by the policy version that decided them (each governs the cohorts from its year)")
    header = ["version", "awards", "with bonus", "bonus", "entitled"]
    body = [
        [
            v["policy"],
            f"{v['awards']:,}",
            f"{v['with_bonus']:,}",
            yuan(v["bonus_fen"]),
            yuan(v["entitled_fen"]),
        ]
        for v in doc["by_version"]
    ]
    print("\n".join(_table(header, body)))
    print()
    goal = doc["goal"]
    target = goal["target"]
    scaled = "" if target == GOAL_FIRMS else f" (x{doc['scale']:g} for this demo: {target:,})"
    print(
        f"Goal (一 总体要求): more than {GOAL_FIRMS:,} above-scale industrial enterprises "
        f"by end-{GOAL_YEAR}{scaled}"
    )
    if goal["register_size"] is None:
        print(f"(no {GOAL_YEAR} register in this demo)")
    else:
        size, bar = goal["register_size"], 40
        filled = min(bar, bar * size // target)
        verdict = "met" if goal["met"] else f"{target - size + 1:,} more needed to exceed it"
        print(
            f"{GOAL_YEAR} register: {size:,} of {target:,} ({goal['percent']:.1f}%)  "
            f"[{'#' * filled}{'.' * (bar - filled)}]  {verdict}"
        )
    print()
    w = doc["workflow"]
    print(
        f"Fiscal {w['fiscal_year']} through the payment workflow: fund {w['fund']} appropriated "
        f"{yuan(w['appropriated_fen'])} yuan; batch {w['batch_id']} of {w['proposed']:,} awards "
        f"proposed, approved by another user, published from {w['notice_from']} to "
        f"{w['notice_to']} (5 working days), one objection heard ({w['objected']}), released: "
        f"{w['released']:,} awards, {yuan(w['released_fen'])} yuan."
    )
    files = doc["workflow_files"]
    print(f"  the public notice: {files['notice_html']} (and {files['notice_csv']})")
    print(f"  the payment orders: {files['orders_file']}")
    print()
    print_below_scale(doc["below_scale"], doc["below_scale_files"])
    print()
    h, hf = doc["hires"], doc["hires_files"]
    print(
        f"(九) hires: {h['hires']:,} hard-to-employ people hired by {h['employers']:,} first "
        f"entrants ({hf['hires_file']}), {h['months']} months of contributions in "
        f"{hf['directory']}/: {h['eligible']:,} of {h['claims']:,} person-months subsidised, "
        f"{yuan(h['subsidy_fen'])} yuan from the employment fund, {yuan(h['paid_fen'])} paid "
        f"({h['payments']:,} payments of {', '.join(PAID_MONTHS)}). Names and identity numbers "
        f"are in the vault, sealed under {hf['person_secret']}."
    )
    print()
    d = doc["directory"]
    print(
        f"The demo is in {d}/: its ledger {doc['ledger_path']}, the registers in "
        f"{d}/{REGISTERS_DIRECTORY}/, the treasury's export {doc['treasury_file']}. From here, with"
    )
    print(f"  export {exports(doc['environment'])}")
    print("every command of the README runs on it as printed, for instance:")
    print(f"  subsidy-ledger awards --fiscal-year {last + 1} --status due")
    print("  subsidy-ledger totals --by city")
    print(
        f"  subsidy-ledger reconcile --treasury {shlex.quote(doc['treasury_file'])} "
        f"--out {shlex.quote(d + '/reports')}"
    )
    print("(the README's Operations says what the reconciliation finds).")


def exports(env: dict[str, str]) -> str:
    """NAME=VALUE ... for `export`, quoted for the shell; PATH's `$PATH` is left to expand."""
    return " ".join(
        f'{k}="{v}"' if k == "PATH" else f"{k}={shlex.quote(v)}" for k, v in env.items()
    )


def environment(url: str, secret: Path) -> dict[str, str]:
    """What the shell needs for the README's commands to run on the demo: the command itself on
    PATH when it is not there already (make installs it in .venv/bin), the ledger, and the (九)
    vault's secret."""
    env = {}
    here = Path(sys.executable).parent
    command = here / "subsidy-ledger"
    found = shutil.which("subsidy-ledger")
    if command.exists() and (found is None or Path(found).resolve() != command.resolve()):
        env["PATH"] = f"{here.absolute()}:$PATH"
    env["LEDGER_DATABASE_URL"] = url
    env["LEDGER_PERSON_SECRET_FILE"] = str(secret)
    return env


def _treasury_export(ledger: Ledger, d: Path) -> Path:
    """The treasury's export of the demo's payments, to try `reconcile` on: what it paid, up to
    yesterday (Asia/Shanghai), the reconciliation's default date."""
    yesterday = today_in_shanghai() - timedelta(days=1)
    paid = [p for p in ledger.payments() if p.paid_on <= yesterday]
    names = {a.uscc: a.name for a in ledger.awards()}
    path = d / TREASURY_FILE
    write_treasury(
        path,
        (
            (
                p.ref,
                p.uscc,
                names[p.uscc],
                p.amount_fen,
                p.paid_on,
                f"小升规奖励 {p.entitlement_id}",
            )
            for p in paid
        ),
    )
    return path


def _designation_files(province: SyntheticProvince, d: Path, from_year: int) -> dict[str, Path]:
    """The certifying authorities' files: strategic emerging industry firms among the cohorts
    the 2025 version governs, tech-based SMEs among the last three years' first entrants."""
    (d / DESIGNATIONS_DIRECTORY).mkdir()
    files = {}
    for kind, first in (
        ("strategic_emerging", from_year),
        ("tech_sme", province.last_year - 2),
    ):
        files[kind] = d / DESIGNATIONS_DIRECTORY / f"{kind}.csv"
        write_designations(files[kind], designations(province, kind, first))
    return files


def _by_version(ledger: Ledger) -> list[dict[str, Any]]:
    """The awards by the policy version that decided them: how many, how many with a bonus, the
    amount, and the cohorts (first-entry years) each governs."""
    versions: dict[str, dict[str, Any]] = {}
    for a in ledger.awards():
        v = versions.setdefault(
            a.policy,
            {"policy": a.policy, "awards": 0, "with_bonus": 0, "entitled_fen": 0, "bonus_fen": 0},
        )
        v["awards"] += 1
        v["entitled_fen"] += a.amount_fen
        if a.bonuses:
            v["with_bonus"] += 1
            v["bonus_fen"] += a.amount_fen - a.base_fen
    order = {p.id: p.starts for p in ledger.get_policies().versions}
    return sorted(versions.values(), key=lambda v: order[v["policy"]])


def run_demo(out: str, seed: int, scale: float, as_json: bool) -> int:
    """Generate, import, pay and summarise a synthetic Shanxi in `out`; return the exit status."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        return fail(
            f"--scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}", EXIT_REFUSED
        )
    prepared = _prepare(out)
    if isinstance(prepared, str):
        return fail(prepared, EXIT_REFUSED)
    d = prepared
    steps = 4 + LAST_YEAR - FIRST_YEAR + 1
    with stage(f"demo: a synthetic Shanxi into {d}", total=steps, unit="steps") as bar:
        province = generate(seed, scale, FIRST_YEAR, LAST_YEAR)
        bar.advance()
        files = {}
        (d / REGISTERS_DIRECTORY).mkdir()
        for year in province.years:
            files[year] = d / REGISTERS_DIRECTORY / f"{year}.csv"
            write_register(files[year], province.registers[year])
        bar.advance()
        version = load_policy(POLICY_2025)
        assert version.applies_from is not None
        certified = _designation_files(province, d, version.applies_from)
        # An explicit URL: the demo never opens the user's ledger or LEDGER_DATABASE_URL.
        secret = d / PERSON_SECRET_FILE
        ledger, _ = open_store(_url(d), create=True, person_secret=str(secret))
        with ledger:
            for year in province.years:
                if year == version.applies_from:
                    ledger.adopt_policy(version, actor=ACTOR, reason=ADOPTION_REASON)
                baseline = year == province.first_year
                source = CsvRegister(files[year], year)
                ledger.import_register(year, source, actor=ACTOR, baseline=baseline)
                bar.advance()
            # The certifying authorities' lists come after the registers: the bonuses they earn
            # are re-derived onto the awards already decided.
            for kind, path in certified.items():
                read = read_designations(path)
                ledger.import_designations(
                    DesignationKind(kind), str(path), read.sha256, read.rows, actor=ACTOR
                )
            # The lists of firms not to be paid come before the payments, which they hold back.
            held = d / HOLDS_FILE
            write_holds(held, holds(province))
            listed = read_holds(held)
            ledger.import_holds(str(held), listed.sha256, listed.rows, actor=ACTOR)
            workflow_year = province.last_year + 1
            ledger.require_release(workflow_year, WORKFLOW_REASON, actor=ACTOR)
            payments = _pay(ledger, seed, province.last_year, today_in_shanghai(), workflow_year)
            doc_workflow = run_workflow(ledger, d, workflow_year, ACTOR)
            below = run_below_scale(ledger, province, seed, d, today_in_shanghai(), ACTOR)
            hired = run_hires(ledger, province, seed, d, today_in_shanghai(), ACTOR)
            bar.advance()
            doc = _summary(ledger, province, d, payments)
            doc["by_version"] = _by_version(ledger)
            doc["designations"] = {kind: str(path) for kind, path in certified.items()}
            doc["holds_file"] = str(held)
            doc["workflow_files"] = doc_workflow.pop("files")
            doc["workflow"] = doc_workflow
            doc["below_scale_files"] = below.pop("files")
            doc["below_scale"] = below
            doc["hires_files"] = {**hired.pop("files"), "person_secret": str(secret)}
            doc["hires"] = hired
            doc["registers"] = {str(year): str(path) for year, path in files.items()}
            doc["treasury_file"] = str(_treasury_export(ledger, d))
            bar.advance()
    if as_json:
        emit_json(doc)
    else:
        _print(doc)
    return EXIT_OK
