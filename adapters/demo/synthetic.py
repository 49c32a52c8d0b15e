"""A synthetic Shanxi province: seeded, deterministic above-scale registers for the demo and tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from domain.codes import USCC_ALPHABET, Division, divisions, make_uscc

Row = tuple[str, str, str, str, str, str, str]
"""uscc, name, region_code, industry_code, size_class, route, first_entry_year (empty: missing)."""

# Cities weighted roughly by industrial size (DOMAIN.md "Scale" and the brief's grouping): the
# coal-and-steel cities and 太原 carry most above-scale firms, 阳泉/朔州/忻州/大同 fewer.
CITY_WEIGHTS: dict[str, int] = {
    "140100": 15,  # 太原
    "140400": 12,  # 长治
    "140800": 12,  # 运城
    "140700": 11,  # 晋中
    "140500": 10,  # 晋城
    "141000": 10,  # 临汾
    "141100": 10,  # 吕梁
    "140200": 6,  # 大同
    "140900": 5,  # 忻州
    "140600": 5,  # 朔州
    "140300": 4,  # 阳泉
}

# GB/T 4754-2017 classes from sections B (06-12), C (13-43) and D (44-46), weighted towards
# Shanxi's coal, coke, metals and building materials; the word names the firm's trade.
INDUSTRIES: tuple[tuple[str, str, int], ...] = (
    ("0610", "煤业", 14),  # 烟煤和无烟煤开采洗选
    ("0810", "矿业", 2),  # 铁矿采选
    ("0916", "铝矿", 1),  # 铝矿采选
    ("1011", "石料", 1),  # 石灰石、石膏开采
    ("1312", "面业", 2),  # 小麦加工
    ("1313", "粮油", 2),  # 玉米加工
    ("1462", "醋业", 2),  # 酱油、食醋及类似制品制造
    ("1512", "酒业", 2),  # 白酒制造
    ("1529", "饮品", 1),  # 茶饮料及其他饮料制造
    ("2110", "家具", 1),  # 木质家具制造
    ("2231", "包装", 2),  # 纸和纸板容器制造
    ("2521", "焦化", 6),  # 炼焦
    ("2524", "煤化", 2),  # 煤制品制造
    ("2614", "化工", 3),  # 有机化学原料制造
    ("2621", "化肥", 1),  # 氮肥制造
    ("2710", "制药", 2),  # 化学药品原料药制造
    ("2740", "药业", 2),  # 中成药生产
    ("2929", "塑业", 2),  # 其他塑料制品制造
    ("3011", "水泥", 3),  # 水泥制造
    ("3021", "建材", 4),  # 水泥制品制造
    ("3031", "新型建材", 2),  # 粘土砖瓦及建筑砌块制造
    ("3074", "陶瓷", 1),  # 日用陶瓷制品制造
    ("3089", "耐材", 3),  # 耐火陶瓷制品及其他耐火材料制造
    ("3110", "钢铁", 2),  # 炼铁
    ("3120", "特钢", 1),  # 炼钢
    ("3130", "钢材", 3),  # 钢压延加工
    ("3140", "冶金", 2),  # 铁合金冶炼
    ("3216", "铝业", 2),  # 铝冶炼
    ("3217", "镁业", 2),  # 镁冶炼
    ("3311", "钢结构", 3),  # 金属结构制造
    ("3391", "铸造", 4),  # 黑色金属铸造
    ("3511", "煤机", 3),  # 矿山机械制造
    ("3670", "汽配", 2),  # 汽车零部件及配件制造
    ("3715", "轨道装备", 1),  # 铁路机车车辆配件制造
    ("3821", "电气", 2),  # 变压器、整流器和电感器制造
    ("3825", "光伏", 2),  # 光伏设备及元器件制造
    ("3985", "电子材料", 2),  # 电子专用材料制造
    ("4411", "电力", 2),  # 火力发电
    ("4412", "热电", 2),  # 热电联产
    ("4415", "风电", 2),  # 风力发电
    ("4416", "光伏发电", 2),  # 太阳能发电
    ("4430", "热力", 3),  # 热力生产和供应
    ("4511", "燃气", 2),  # 天然气生产和供应业
    ("4610", "水务", 1),  # 自来水生产和供应
)
_SECTION_LETTER = {**dict.fromkeys(range(6, 13), "B"), **dict.fromkeys(range(44, 47), "D")}

TRADE_CHARS = "晋鑫华泰宏盛通达源丰恒瑞兴昌德隆裕博元安汇嘉信诚福润富鼎金宝祥凯天利新远辉腾永旺佳益鹏海峰振聚亿力强创立正明"

# DOMAIN.md "Scale": 6,834 at end-2021 after a net +1,384, so about 5,450 at end-2020.
BASELINE_SIZE = 5_450
# First entries still on the baseline register, by years before the baseline (…, -1, 0): about
# 1,200 entered in 2018-2020 (the 2017 measures began the award), the rest of the baseline is older.
PRE_LEDGER_ENTRIES = (150, 330, 400, 470)
# First entries per year after the baseline: 1,547 in 2021 (DOMAIN.md), then ~1,200-1,400.
FIRST_ENTRIES = (1_547, 1_280, 1_220, 1_170, 1_150)
# Firms absent from the baseline that had been on an earlier register and come back each year.
PRE_LEDGER_RETURNERS = 20

ROUTES = (
    ("growth", 75),
    ("new_build", 12),
    ("sector_conversion", 6),
    ("merger", 4),
    ("individual_conversion", 3),
)
# Size classes (国统字〔2017〕213号): an entrant is mostly small; older firms have grown more often.
ENTRANT_SIZES = (("small", 75), ("micro", 13), ("medium", 10), ("large", 2))
BASELINE_SIZES = (("small", 70), ("micro", 10), ("medium", 17), ("large", 3))


def exit_probability(years_since_entry: int | None) -> float:
    """Chance of leaving the register in a year: 3-8% overall, more just after entry (DOMAIN.md)."""
    if years_since_entry is None or years_since_entry > 3:
        return 0.035
    return (0.10, 0.09, 0.07, 0.05)[years_since_entry]


RE_ENTRY_PROBABILITY = 0.05
"""Chance that a firm absent for a year or more comes back in a given year."""


@dataclass(frozen=True)
class SyntheticFirm:
    """What the generator intended for one firm; the ledger should come to the same facts."""

    uscc: str
    first_entry_year: int | None
    """The first entry the registers tell: None when it predates the data and is not given."""
    route: str
    """The first-entry route, or '' when the ledger cannot count the firm as a first entrant."""
    years: tuple[int, ...]
    """Register years the firm is on."""


@dataclass(frozen=True)
class SyntheticProvince:
    """Registers of each year and what the generator meant by them."""

    seed: int
    scale: float
    first_year: int
    last_year: int
    registers: dict[int, list[Row]]
    first_entrants: dict[int, tuple[str, ...]]
    """USCCs entering the register for the first time, per year after the baseline."""
    re_entrants: dict[int, tuple[str, ...]]
    """USCCs back on the register after an absence (never first entries), per year."""
    leavers: dict[int, tuple[str, ...]]
    """USCCs on the year before and absent from the year, per year."""
    firms: dict[str, SyntheticFirm] = field(repr=False)

    @property
    def years(self) -> range:
        return range(self.first_year, self.last_year + 1)

    def sizes(self) -> dict[int, int]:
        return {y: len(rows) for y, rows in self.registers.items()}


@dataclass
class _Firm:
    uscc: str
    trade: str
    suffix: str
    city_prefix: str
    region: Division
    town: str
    industry: str
    letter: bool
    size: str
    route: str
    first_entry: int | None
    entry_known: bool
    first_seen: int
    """The first register year of the data the firm is on."""
    years: set[int] = field(default_factory=set)
    present: bool = True

    @property
    def word(self) -> str:
        return next(w for code, w, _ in INDUSTRIES if code == self.industry)

    @property
    def name(self) -> str:
        return f"{self.city_prefix}{self.trade}{self.word}{self.suffix}"


class _Generator:
    def __init__(self, rng: random.Random, scale: float, first_year: int):
        self.rng = rng
        self.scale = scale
        self.first_year = first_year
        self.usccs: set[str] = set()
        self.names: set[str] = set()
        self.firms: list[_Firm] = []
        counties = [d for d in divisions().values() if d.level in ("county", "zone")]
        self.regions: dict[str, list[Division]] = {c: [] for c in CITY_WEIGHTS}
        self.region_weights: dict[str, list[float]] = {c: [] for c in CITY_WEIGHTS}
        for d in counties:
            self.regions[d.city_code].append(d)
            self.region_weights[d.city_code].append(_region_weight(d))

    def count(self, n: float) -> int:
        """n scaled, rounded stochastically so small scales keep the expected totals."""
        x = n * self.scale
        whole = int(x)
        return whole + (1 if self.rng.random() < x - whole else 0)

    def pick(self, weighted: Sequence[tuple[str, int]]) -> str:
        return self.rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]

    def region(self, city: str | None = None) -> Division:
        city = city or self.pick(tuple(CITY_WEIGHTS.items()))
        return self.rng.choices(self.regions[city], self.region_weights[city])[0]

    def industry(self) -> str:
        return self.rng.choices([c for c, _, _ in INDUSTRIES], [w for _, _, w in INDUSTRIES])[0]

    def uscc(self, region: Division, old: bool) -> str:
        # Positions 3-8 are where the firm was first registered: its county's or its city's
        # market regulator (DOMAIN.md "Data facts"). Codes issued since 2015 mostly begin MA;
        # older firms kept their 8-digit organisation codes.
        division = region.code if self.rng.random() < 0.65 else region.city_code
        letters = USCC_ALPHABET
        while True:
            if old and self.rng.random() < 0.6:
                body = str(self.rng.randint(1, 7)) + "".join(
                    self.rng.choice("0123456789") for _ in range(7)
                )
            else:
                body = "MA0" + "".join(self.rng.choice(letters) for _ in range(5))
            code = make_uscc(division, body)
            if code not in self.usccs:
                self.usccs.add(code)
                return code

    def identity(self, region: Division, industry: str) -> tuple[str, str, str]:
        """A trade name, legal-form suffix and place prefix giving a name not yet in use. Two
        characters of trade name, a third after 20 names in use, and so on: a country's worth of
        firms (bench/national.py) exhausts the two-character names of the common industries,
        where the province (at most 5 tries at scale 1) never comes near."""
        word = next(w for code, w, _ in INDUSTRIES if code == industry)
        attempts = 0
        while True:
            trade = "".join(self.rng.sample(TRADE_CHARS, 2 + attempts // 20))
            attempts += 1
            suffix = "股份有限公司" if self.rng.random() < 0.08 else "有限公司"
            prefix = divisions()[region.city_code].name if self.rng.random() < 0.25 else "山西"
            name = f"{prefix}{trade}{word}{suffix}"
            if name not in self.names:
                self.names.add(name)
                return trade, suffix, prefix

    def new_firm(
        self,
        year: int,
        *,
        first_entry: int | None,
        route: str,
        entry_known: bool,
        sizes: Sequence[tuple[str, int]],
        old: bool,
    ) -> _Firm:
        region = self.region()
        industry = self.industry()
        trade, suffix, prefix = self.identity(region, industry)
        # Statistics often give the 12-digit 统计用区划代码; the ledger cuts it to the division.
        town = f"{self.rng.randint(1, 12):03d}000" if self.rng.random() < 0.03 else ""
        firm = _Firm(
            uscc=self.uscc(region, old),
            trade=trade,
            suffix=suffix,
            city_prefix=prefix,
            region=region,
            town=town,
            industry=industry,
            letter=self.rng.random() < 0.2,
            size=self.pick(sizes),
            route=route,
            first_entry=first_entry,
            entry_known=entry_known,
            first_seen=year,
        )
        firm.years.add(year)
        self.firms.append(firm)
        return firm

    def mutate(self, firm: _Firm) -> None:
        """Occasional changes a firm staying on the register shows from one year to the next."""
        r = self.rng
        if r.random() < 0.006:
            old_name = firm.name
            if firm.suffix == "有限公司" and r.random() < 0.3:
                firm.suffix = "股份有限公司"
            else:
                firm.trade, firm.suffix, firm.city_prefix = self.identity(
                    firm.region, firm.industry
                )
            self.names.discard(old_name)
            self.names.add(firm.name)
        if r.random() < 0.004:
            # Mostly within the city; the USCC keeps the division of first registration.
            city = firm.region.city_code if r.random() < 0.75 else None
            firm.region = self.region(city)
            firm.town = ""
        if r.random() < 0.002:
            firm.industry = self.industry()
        if r.random() < 0.02:
            order = ["micro", "small", "medium", "large"]
            i = order.index(firm.size)
            step = 1 if r.random() < 0.6 else -1
            firm.size = order[min(max(i + step, 0), 3)]

    def row(self, firm: _Firm, year: int) -> Row:
        r = self.rng
        industry = firm.industry
        if firm.letter:
            industry = _SECTION_LETTER.get(int(industry[:2]), "C") + industry
        # A blank size class now and then: the register leaves it out (the ledger keeps the last).
        size = "" if r.random() < 0.015 else firm.size
        first_time = year == firm.first_seen
        route = ""
        if first_time and firm.route:
            # An empty route reads as growth (domain.register.parse_row).
            route = "" if firm.route == "growth" and r.random() < 0.2 else firm.route
        first_entry = ""
        if firm.entry_known and firm.first_entry is not None:
            if first_time and (firm.first_entry < year or year == self.first_year):
                # The only way the ledger learns of an entry before its data (DOMAIN.md default 5):
                # always given on the baseline and by a returner from before the baseline.
                first_entry = str(firm.first_entry)
            elif r.random() < (0.8 if first_time else 0.5):
                # Optional otherwise, and never contradicting what the ledger recorded.
                first_entry = str(firm.first_entry)
        return (
            firm.uscc,
            firm.name,
            firm.region.code + firm.town,
            industry,
            size,
            route,
            first_entry,
        )


def _region_weight(d: Division) -> float:
    if d.level == "zone":
        # Development zones host many firms; a scenic area (五台山) almost none.
        return 0.1 if "风景" in d.name else 3.0
    return 1.5 if d.name.endswith("区") else 1.0


def generate(
    seed: int, scale: float = 1.0, first_year: int = 2020, last_year: int = 2025
) -> SyntheticProvince:
    """Registers of `first_year` (the baseline) to `last_year` for a synthetic Shanxi.

    `scale` multiplies every count (1.0 is the realistic province of DOMAIN.md "Scale").
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    g = _Generator(random.Random(seed), scale, first_year)  # noqa: S311 - reproducible, not secret
    registers: dict[int, list[Row]] = {}
    first_entrants: dict[int, tuple[str, ...]] = {}
    re_entrants: dict[int, tuple[str, ...]] = {}
    leavers: dict[int, tuple[str, ...]] = {}

    baseline = max(1, g.count(BASELINE_SIZE))
    for offset, n in enumerate(PRE_LEDGER_ENTRIES, start=1 - len(PRE_LEDGER_ENTRIES)):
        for _ in range(min(g.count(n), baseline - len(g.firms))):
            g.new_firm(
                first_year,
                first_entry=first_year + offset,
                route=g.pick(ROUTES),
                entry_known=True,
                sizes=ENTRANT_SIZES,
                old=False,
            )
    while len(g.firms) < baseline:
        g.new_firm(
            first_year,
            first_entry=None,
            route="",
            entry_known=False,
            sizes=BASELINE_SIZES,
            old=True,
        )
    registers[first_year] = _rows(g, first_year)

    for year in range(first_year + 1, last_year + 1):
        offset = year - first_year - 1
        on_last_year = [f for f in g.firms if f.present]
        away = [f for f in g.firms if not f.present]
        left = []
        for f in on_last_year:
            since = None if f.first_entry is None else year - 1 - f.first_entry
            if g.rng.random() < exit_probability(since):
                f.present = False
                left.append(f.uscc)
        back = []
        for f in away:
            if g.rng.random() < RE_ENTRY_PROBABILITY:
                f.present = True
                f.years.add(year)
                back.append(f.uscc)
        # Firms on a register before the baseline and absent from it: re-entrants, which the
        # ledger can only tell from the first entry year the register gives (DOMAIN.md default 5).
        for _ in range(g.count(PRE_LEDGER_RETURNERS)):
            f = g.new_firm(
                year,
                first_entry=g.rng.randint(first_year - 8, first_year - 1),
                route="",
                entry_known=True,
                sizes=BASELINE_SIZES,
                old=True,
            )
            back.append(f.uscc)
        for f in on_last_year:
            if f.present:
                f.years.add(year)
                g.mutate(f)
        new = FIRST_ENTRIES[min(offset, len(FIRST_ENTRIES) - 1)]
        entrants = [
            g.new_firm(
                year,
                first_entry=year,
                route=g.pick(ROUTES),
                entry_known=True,
                sizes=ENTRANT_SIZES,
                old=False,
            ).uscc
            for _ in range(g.count(new))
        ]
        if not any(f.present for f in g.firms):
            # A register year is never empty; at tiny scales keep one firm on.
            f = on_last_year[0]
            f.present = True
            f.years.add(year)
            left.remove(f.uscc)
        first_entrants[year] = tuple(entrants)
        re_entrants[year] = tuple(back)
        leavers[year] = tuple(left)
        registers[year] = _rows(g, year)

    firms = {
        f.uscc: SyntheticFirm(
            uscc=f.uscc,
            first_entry_year=f.first_entry if f.entry_known else None,
            route=f.route,
            years=tuple(sorted(f.years)),
        )
        for f in g.firms
    }
    return SyntheticProvince(
        seed=seed,
        scale=scale,
        first_year=first_year,
        last_year=last_year,
        registers=registers,
        first_entrants=first_entrants,
        re_entrants=re_entrants,
        leavers=leavers,
        firms=firms,
    )


def _rows(g: _Generator, year: int) -> list[Row]:
    # The statistics bureau lists firms by place: sort by region, then USCC.
    present = sorted((f for f in g.firms if f.present), key=lambda f: (f.region.code, f.uscc))
    return [g.row(f, year) for f in present]


Designation = tuple[str, date, date | None, str]
"""uscc, valid_from, valid_to (None: open-ended), document: a row of a designations file."""

STRATEGIC_EMERGING_SHARE = 0.2
"""Share of each year's first entrants the development and reform commission certifies as
strategic emerging industry firms (from the 2025 cohort, whose version pays the bonus)."""
TECH_SME_SHARE = 0.25
"""Share of first entrants evaluated tech-based SMEs (科技型中小企业), each for a year."""


def designations(province: SyntheticProvince, kind: str, from_year: int) -> list[Designation]:
    """Certifications of the province's first entrants of `from_year` on, reproducibly.

    `strategic_emerging`: open-ended from a day of the entry year or the year before, one in ten
    ended before the entry year (so no bonus). `tech_sme`: valid from a day of the entry year to
    the end of the next (an evaluation's year), renewed once for half of them.
    """
    rng = random.Random(f"subsidy-ledger-demo-{kind}-{province.seed}")  # noqa: S311 - demo data
    share = STRATEGIC_EMERGING_SHARE if kind == "strategic_emerging" else TECH_SME_SHARE
    rows: list[Designation] = []
    number = 0
    for year in range(from_year, province.last_year + 1):
        for uscc in province.first_entrants.get(year, ()):
            if rng.random() >= share:
                continue
            number += 1
            start = date(year - rng.randint(0, 1), rng.randint(1, 12), rng.randint(1, 28))
            if kind == "strategic_emerging":
                end = date(year - 1, 12, 31) if rng.random() < 0.1 and start.year < year else None
                rows.append((uscc, start, end, f"晋发改高技〔{start.year}〕{number}号"))
                continue
            start = date(year, start.month, start.day)
            rows.append((uscc, start, date(year + 1, 12, 31), f"晋科评〔{year}〕{number}号"))
            if rng.random() < 0.5:
                number += 1
                rows.append(
                    (
                        uscc,
                        date(year + 2, 1, 1),
                        date(year + 3, 12, 31),
                        f"晋科评〔{year + 2}〕{number}号",
                    )
                )
    return rows


HoldListRow = tuple[str, str, str, str, date, date | None]
"""uscc, reason, authority, document, from, to (None: until lifted): a row of a holds file."""

HOLD_SHARE = 0.01
"""Share of the last cohort but one (whose entry awards fall due in the ledger's last year) on
a serious-default list or under investigation during that year."""
_HOLD_AUTHORITIES = (
    ("credit_default", "信用中国（山西）", "晋信用〔{y}〕{n}号"),
    ("work_safety", "山西省应急管理厅", "晋应急〔{y}〕{n}号"),
    ("environment", "山西省生态环境厅", "晋环罚〔{y}〕{n}号"),
    ("statistical_fraud", "山西省统计局", "晋统执〔{y}〕{n}号"),
)


def holds(province: SyntheticProvince) -> list[HoldListRow]:
    """The holds the credit platform and the authorities publish on the province's firms,
    reproducibly: among the last cohort but one, from a day of the ledger's last year, one in
    three with a last day (a list's term), the rest until lifted."""
    rng = random.Random(f"subsidy-ledger-demo-holds-{province.seed}")  # noqa: S311 - demo data
    year = province.last_year
    rows: list[HoldListRow] = []
    for n, uscc in enumerate(province.first_entrants.get(year - 1, ()), start=1):
        if rng.random() >= HOLD_SHARE:
            continue
        reason, authority, document = _HOLD_AUTHORITIES[rng.randrange(len(_HOLD_AUTHORITIES))]
        start = date(year, rng.randint(1, 6), rng.randint(1, 28))
        end = date(year, 12, 31) if rng.random() < 1 / 3 else None
        rows.append((uscc, reason, authority, document.format(y=year, n=n), start, end))
    return rows
