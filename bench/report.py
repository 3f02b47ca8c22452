"""The report: JSON (everything) and Markdown (the table, then details), plus the marked regions of
docs/benchmarks.md and the README that show the latest full run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from bench.result import FigureResult

DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"
README_START = "<!-- bench:readme:start -->"
README_END = "<!-- bench:readme:end -->"
RATE_UNITS = ("req/s", "inserts/s", "tasks/s")
GROUP_ORDER = ("api", "dispatcher", "hubs", "postgres", "redis", "celery", "bench")


def fmt_number(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit in RATE_UNITS or unit == "phones":
        text = f"{value:,.0f}"
    elif unit == "ms":
        text = f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    elif unit == "MiB/phone":
        text = f"{value:.2f}"
    else:
        text = f"{value:,.1f}"
    return f"{text} {unit}"


def fmt_ratio(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit in RATE_UNITS or unit == "phones":
        return f"{value * 100:.0f} %"
    return f"{value:.2f}×"


def fmt_met(met: bool | None) -> str:
    return "—" if met is None else ("**yes**" if met else "**no**")


def header_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    s = report["services"]
    return [
        f"Run of {m['date']} ({report['mode']}, {report['seconds'] / 60:.0f} min). "
        f"Machine: {m['cpus']} × {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load average at start {', '.join(str(x) for x in m['load_average_at_start'])}. "
        f"Code: {m.get('code', 'unknown')}.",
        "",
        f"PostgreSQL {s['postgres_version']} ({s['postgres_source']}), Redis {s['redis_version']} "
        f"({s['redis_source']}, database {s['redis_db']}). {report['settings']}",
    ]


def table_lines(report: dict[str, Any], *, with_baseline_label: bool = True) -> list[str]:
    lines = [
        "| figure | value | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        baseline = fmt_number(row["baseline"], row["baseline_unit"])
        if with_baseline_label:
            baseline = f"{baseline} — {row['baseline_label']}"
        lines.append(
            f"| {row['figure']} | {fmt_number(row['value'], row['unit'])} | {baseline} | "
            f"{fmt_ratio(row['ratio'], row['unit'])} | {row['target']} | {fmt_met(row['met'])} |"
        )
    for figure in report["figures"]:
        if figure.get("error"):
            lines.append(f"| {figure['name']} | failed: {figure['error'].splitlines()[0][:120]} | | | | **no** |")
    return lines


def _cpu_table(figure: dict[str, Any]) -> list[str]:
    cpu: dict[str, Any] = figure.get("cpu") or {}
    if not cpu:
        return []
    groups = [g for g in GROUP_ORDER if any(g in c["cpu_seconds"] for c in cpu.values())]
    lines = [
        "",
        "CPU by process, ms per unit of work (cores busy in brackets; machine = every process on the machine):",
        "",
        "| phase | unit | " + " | ".join(groups) + " | all ours | machine |",
        "|---|---|" + "---|" * len(groups) + "---|---|",
    ]
    for label, c in cpu.items():
        per = next((v for k, v in c.items() if k.startswith("cpu_ms_per_")), None)
        unit = next((k.removeprefix("cpu_ms_per_") for k in c if k.startswith("cpu_ms_per_")), "—")
        cells = []
        for g in groups:
            busy = c["cores_busy"].get(g)
            if busy is None:
                cells.append("")
            elif per is not None:
                cells.append(f"{per.get(g, 0):.2f} ({busy:.2f})")
            else:
                cells.append(f"({busy:.2f})")
        lines.append(
            f"| {label} | {unit} | "
            + " | ".join(cells)
            + f" | ({c['total_cores_busy']:.2f}) | ({c['machine_cores_busy']:.2f}) |"
        )
    return lines


def _profile_lines(figure: dict[str, Any], top: int = 10) -> list[str]:
    profiles: dict[str, Any] = figure.get("profiles") or {}
    lines: list[str] = []
    for label, processes in profiles.items():
        for process, summary in processes.items():
            if not summary.get("samples"):
                continue
            lines += [
                "",
                f"Profile `{label}` / {process}: {summary['samples']:,} samples holding the GIL (py-spy, 100 Hz). "
                f"Raw stacks: `{summary['raw']}`.",
                "",
                "| self % | function | | inclusive % | function |",
                "|---:|---|---|---:|---|",
            ]
            selfs, incl = summary["self"][:top], summary["inclusive"][:top]
            for i in range(max(len(selfs), len(incl))):
                a = selfs[i] if i < len(selfs) else None
                b = incl[i] if i < len(incl) else None
                lines.append(
                    f"| {a['percent'] if a else ''} | {('`' + a['frame'] + '`') if a else ''} | "
                    f"| {b['percent'] if b else ''} | {('`' + b['frame'] + '`') if b else ''} |"
                )
    return lines


def _details_lines(report: dict[str, Any], heading: str) -> list[str]:
    lines: list[str] = []
    rows_by_figure: dict[str, list[dict[str, Any]]] = {}
    for row in report["rows"]:
        rows_by_figure.setdefault(row["figure_name"], []).append(row)
    for figure in report["figures"]:
        name = figure["name"]
        lines += ["", f"{heading}## {name} ({figure['seconds']:.0f} s)"]
        if figure.get("doc"):
            lines += ["", figure["doc"]]
        if figure.get("error"):
            lines += ["", "```", figure["error"].strip()[-3000:], "```"]
        for row in rows_by_figure.get(name, []):
            if row["details"]:
                lines += ["", f"- **{row['figure']}**: `{json.dumps(row['details'], ensure_ascii=False)}`"]
            for note in row["notes"]:
                lines.append(f"  - {note}")
        if figure.get("details"):
            lines += ["", f"- figure details: `{json.dumps(figure['details'], ensure_ascii=False)}`"]
        lines += _cpu_table(figure)
        lines += _profile_lines(figure)
    return lines


def markdown(report: dict[str, Any], heading: str = "#") -> str:
    lines = [f"{heading} phonefleet benchmarks: {report['mode']} run", ""]
    lines += header_lines(report)
    lines += ["", *table_lines(report)]
    lines += ["", f"{heading}# Details"]
    lines += _details_lines(report, heading)
    return "\n".join(lines) + "\n"


def readme_block(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Latest full run: {m['date']} on {m['cpus']} × {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']} "
        f"(PostgreSQL {report['services']['postgres_version']}, Redis {report['services']['redis_version']}). "
        "Baselines are measured in the same run; details and profiles in [docs/benchmarks.md](docs/benchmarks.md).",
        "",
        *table_lines(report, with_baseline_label=True),
    ]
    return "\n".join(lines)


def replace_region(path: Path, start: str, end: str, body: str) -> bool:
    """Replace what lies between the ``start`` and ``end`` markers in ``path``; False if they are absent."""
    if not path.exists():
        return False
    text = path.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _: f"{start}\n{body.rstrip()}\n{end}", text, count=1))
    return True


def figure_json(figure: FigureResult, doc: str | None) -> dict[str, Any]:
    return {
        "name": figure.name,
        "seconds": round(figure.seconds, 1),
        "details": figure.details,
        "cpu": figure.cpu,
        "profiles": figure.profiles,
        "error": figure.error,
        "doc": doc,
    }


def write(report: dict[str, Any], folder: Path, stamp: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stamp}.json"
    md_path = folder / f"{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    md_path.write_text(markdown(report))
    return json_path, md_path


def update_docs(report: dict[str, Any], root: Path) -> list[Path]:
    """Put the report in docs/benchmarks.md and the table in the README, between their markers."""
    changed: list[Path] = []
    docs = root / "docs" / "benchmarks.md"
    if not docs.exists():
        docs.write_text(f"# Benchmarks\n\n{DOCS_START}\n{DOCS_END}\n")
    if replace_region(docs, DOCS_START, DOCS_END, markdown(report, heading="##")):
        changed.append(docs)
    if replace_region(root / "README.md", README_START, README_END, readme_block(report)):
        changed.append(root / "README.md")
    return changed
