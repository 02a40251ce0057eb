"""Results: rows of numbers per server, the issue's targets, and the printed tables."""

import math
from dataclasses import dataclass, field

# The columns, in order. The portal is measured twice (token and HTTP Basic); MLflow plain,
# and for a reduced set of rows with its basic-auth app.
VARIANTS = {
    "portal_token": "portal (token)",
    "portal_basic": "portal (basic)",
    # Issue 9: a user whose only access is a team's READ grant (the portal's token column is then the superuser).
    "team_user": "user via team grant",
    "mlflow": "MLflow",
    "mlflow_auth": "MLflow basic-auth",
    # The permissions workload compares two portal users with each other, not with MLflow.
    "superuser": "superuser",
    "grantee": "user in 2 teams",
}
PORTAL_VARIANTS = ("portal_token", "portal_basic", "team_user")  # a target holds only if every one measured meets it


@dataclass(frozen=True)
class Failed:
    """A value that could not be measured: the workload answered with errors."""

    reason: str

    def __str__(self) -> str:
        return "failed"


@dataclass(frozen=True)
class Target:
    """What the portal's value must satisfy.

    kind: "ratio<=" / "ratio>=": portal / MLflow (or the row's baseline, named `of`)
    against bound; "<=" / ">=" / "<": the portal's value itself against bound.
    """

    kind: str
    bound: float
    of: str = "MLflow"

    def text(self, unit: str) -> str:
        if self.kind == "ratio<=":
            return f"≤ {_fraction(self.bound)} {self.of}"
        if self.kind == "ratio>=":
            return f"≥ {self.bound:g}× {self.of}"
        unit = f" {unit}" if unit and unit not in ("×", "ratio") else ("×" if unit == "×" else "")
        return f"{self.kind.replace('<=', '≤').replace('>=', '≥')} {self.bound:g}{unit}"

    def holds(self, value: float, mlflow: float | None) -> bool | None:
        if self.kind.startswith("ratio"):
            if not _number(mlflow) or mlflow == 0:
                return None
            value = value / mlflow
        if self.kind.endswith("<="):
            return value <= self.bound
        if self.kind.endswith(">="):
            return value >= self.bound
        if self.kind == "<":
            return value < self.bound
        raise ValueError(self.kind)


def _fraction(bound: float) -> str:
    inverse = 1 / bound if bound else 0
    if inverse and abs(inverse - round(inverse)) < 1e-9 and inverse > 1:
        return f"1/{round(inverse)}×"
    return f"{bound:g}×"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Row:
    workload: str
    metric: str
    unit: str
    values: dict = field(default_factory=dict)
    target: Target | None = None
    note: str = ""
    # (subject, baseline): a row comparing two variants with each other (the permissions
    # workload: a user with grants against a superuser) rather than the portal with MLflow.
    compare: tuple[str, str] | None = None

    def ratio(self) -> float | None:
        subject, baseline = self.compare or ("portal_token", "mlflow")
        portal, mlflow = self.values.get(subject), self.values.get(baseline)
        if _number(portal) and _number(mlflow) and mlflow:
            return portal / mlflow
        return None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.compare:
            subject, baseline = self.compare
            value, base = self.values.get(subject), self.values.get(baseline)
            if isinstance(value, Failed) or isinstance(base, Failed):
                return "FAIL"
            if not _number(value) or not _number(base):
                return "n/a"
            held = self.target.holds(value, base)
            return "n/a" if held is None else ("pass" if held else "FAIL")
        portal_values = [self.values[v] for v in PORTAL_VARIANTS if v in self.values]
        if not portal_values:
            return "n/a"
        if any(isinstance(v, Failed) for v in portal_values):
            return "FAIL"
        if isinstance(self.values.get("mlflow"), Failed) and self.target.kind.startswith("ratio"):
            return "n/a"
        results = [self.target.holds(v, self.values.get("mlflow")) for v in portal_values if _number(v)]
        if not results or any(r is None for r in results):
            return "n/a"
        return "pass" if all(results) else "FAIL"


class Sheet:
    """All rows of one run, in the order they were first written."""

    def __init__(self):
        self.rows: dict[tuple[str, str], Row] = {}
        self.sections: dict[str, list] = {}  # extra tables: name -> list of (header, rows)

    def put(self, workload: str, metric: str, variant: str, value, unit: str = "", target: Target | None = None, note: str = "",
            compare: tuple[str, str] | None = None):  # fmt: skip
        row = self.rows.get((workload, metric))
        if row is None:
            row = self.rows[(workload, metric)] = Row(workload, metric, unit, target=target, compare=compare)
        row.values[variant] = value
        if target is not None:
            row.target = target
        if note and note not in row.note:
            row.note = f"{row.note}; {note}" if row.note else note
        return row

    def get(self, workload: str, metric: str, variant: str):
        row = self.rows.get((workload, metric))
        return row.values.get(variant) if row else None

    def failures(self) -> list[Row]:
        return [r for r in self.rows.values() if r.verdict() == "FAIL"]


# ---------------------------------------------------------------- formatting


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, Failed):
        return "failed"
    if not _number(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    elif magnitude == 0:
        text = "0"
    else:
        text = f"{value:.3f}"
    return text


def table_rows(rows: list[Row], variants: list[str], ratio_name: str = "portal/MLflow") -> tuple[list[str], list[list[str]]]:
    header = ["workload", "metric", "unit", *[VARIANTS[v] for v in variants], ratio_name, "target", "result"]
    lines = []
    for row in rows:
        ratio = row.ratio()
        lines.append(
            [
                row.workload,
                row.metric,
                row.unit,
                *[fmt(row.values.get(v), row.unit) for v in variants],
                (f"{ratio:.3g}" if ratio is not None else "—"),
                row.target.text(row.unit) if row.target else "",
                row.verdict(),
            ]
        )
    return header, lines


def text_table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i]) for i in range(len(header))]
    numeric = [i >= 3 and i < len(header) - 2 for i in range(len(header))]

    def render(cells):
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [render(header), render(["-" * w for w in widths])]
    out += [render(line) for line in lines]
    return "\n".join(out)


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def render(result: dict, markdown: bool) -> str:
    """One backend's report: settings, the main table, memory, notes, the machine."""
    sheet: Sheet = result["sheet"]
    table = markdown_table if markdown else text_table
    h = "### " if markdown else "== "
    parts = [f"{h}{result['title']}", ""]
    for key, value in result["settings"].items():
        parts.append(f"- {key}: {value}" if markdown else f"{key}: {value}")
    parts.append("")
    against_mlflow = [row for row in sheet.rows.values() if not row.compare]
    if against_mlflow:
        variants = [v for v in VARIANTS if any(v in row.values for row in against_mlflow)]
        header, lines = table_rows(against_mlflow, variants)
        parts += [table(header, lines), ""]
    # Rows comparing two variants with each other: one table per pair.
    for pair in dict.fromkeys(row.compare for row in sheet.rows.values() if row.compare):
        subject, baseline = pair
        rows = [row for row in sheet.rows.values() if row.compare == pair]
        header, lines = table_rows(rows, [baseline, subject], f"{VARIANTS[subject]} / {VARIANTS[baseline]}")
        parts += [table(header, lines), ""]
    for name, (sheader, slines) in sheet.sections.items():
        parts += [f"{h}{name}" if markdown else f"-- {name}", "", table(sheader, slines), ""]
    notes = [f"{r.workload} / {r.metric}: {r.note}" for r in sheet.rows.values() if r.note]
    notes += result.get("notes", [])
    if notes:
        parts += ["Notes:" if not markdown else "**Notes**", ""]
        parts += [f"- {n}" for n in notes]
        parts.append("")
    failures = sheet.failures()
    summary = f"targets: {sum(1 for r in sheet.rows.values() if r.verdict() == 'pass')} pass, {len(failures)} FAIL"
    parts += [f"**{summary}**" if markdown else summary, ""]
    return "\n".join(parts)


def render_machine(machine: dict, markdown: bool) -> str:
    if markdown:
        return "### Machine\n\n" + "\n".join(f"- {k}: {v}" for k, v in machine.items()) + "\n"
    return "== Machine\n" + "\n".join(f"{k}: {v}" for k, v in machine.items()) + "\n"


def as_json(result: dict) -> dict:
    """One backend's results as plain data (--json): every row, its values and verdict.
    A value is a number, or {"failed": reason} when it could not be measured."""

    def value(v):
        if isinstance(v, Failed):
            return {"failed": v.reason}
        return v if _number(v) else None

    sheet: Sheet = result["sheet"]
    return {
        "title": result["title"],
        "settings": result["settings"],
        "failed_workloads": result.get("failed_workloads", []),
        "notes": result.get("notes", []),
        "rows": [
            {
                "workload": row.workload,
                "metric": row.metric,
                "unit": row.unit,
                "values": {variant: value(v) for variant, v in row.values.items()},
                "ratio": row.ratio(),
                "compare": list(row.compare) if row.compare else None,
                "target": row.target.text(row.unit) if row.target else None,
                "verdict": row.verdict() or None,
            }
            for row in sheet.rows.values()
        ],
    }
