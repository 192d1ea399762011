"""Profile reports for people: a Markdown page and a PNG (latency distribution per stage and
a stage-breakdown bar; matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..contract.graphs import ENCODER
from ..errors import MissingDependencyError

__all__ = ["STAGE_ORDER", "to_markdown", "write_plot"]

#: stages in pipeline order (others follow alphabetically)
STAGE_ORDER = ("read", "prepare", ENCODER, "decoder", "postprocess", "tracking", "end_to_end")


def _ordered(stages: dict[str, Any]) -> list[str]:
    known = [s for s in STAGE_ORDER if s in stages]
    return known + sorted(set(stages) - set(known))


def _f(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: settings line, stage table, FPS, memory, compare table,
    top layers, environment."""
    env = report["environment"]
    graphs = env["graphs"]
    lines = [
        f"# Profile: {env['bundle']['name']} ({env['bundle']['variant']}), mode {report['mode']}",
        "",
        f"{env['cpu']}, {env['usable_cores']} usable cores, {env['threads_per_graph']} threads per graph; "
        f"frame {env['frame_hw'][1]}x{env['frame_hw'][0]}, network long side {env['bundle']['input_long_side']}; "
        + ", ".join(
            f"{g}: {v['backend']} ({v['library']}, {v['precision']})" for g, v in graphs.items()
        ),
        "",
        f"{report['settings']['iters']} timed iterations after {report['settings']['warmup']} warm-ups.",
        "",
        "| stage | p50 ms | p90 ms | p99 ms | mean ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in _ordered(report["stages"]):
        st = report["stages"][name]
        lines.append(
            f"| {name} | {_f(st['p50'])} | {_f(st['p90'])} | {_f(st['p99'])} | {_f(st['mean'])} | {_f(st['max'])} |"
        )
    fps = report["fps"]
    mem = report["memory"]
    lines += [
        "",
        f"FPS: sequential {_f(fps.get('sequential'), 1)}, stream {_f(fps.get('stream'), 1)}, "
        f"at p50 {_f(fps.get('p50'), 1)}. Peak RSS {_f(mem.get('peak_rss_mib'), 1)} MiB. "
        f"Profiler bookkeeping {_f(report['profiler_overhead']['pct_of_frame'], 3)} % of a frame.",
    ]
    if len(report.get("compare") or []) > 1:
        lines += [
            "",
            "| target | backend | e2e p50 ms | e2e p90 ms | FPS (p50) | ratio to first |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in report["compare"]:
            e2e = r["stages"]["end_to_end"]
            lines.append(
                f"| {r['target']['label']} | {r['target']['backend']} | {_f(e2e['p50'])} | {_f(e2e['p90'])} | "
                f"{_f(r['fps'].get('p50'), 1)} | {r['ratio_to_first']:.2f} |"
            )
    if report.get("layers"):
        lines += ["", "| graph | operator | type | ms per run | share |", "|---|---|---|---:|---:|"]
        for row in report["layers"]:
            lines.append(
                f"| {row['graph']} | {row['name']} | {row['type']} | {_f(row['ms'], 3)} | {100 * row['share']:.1f} % |"
            )
    if report.get("telemetry"):
        lines += ["", f"Jetson telemetry (tegrastats): `{report['telemetry']}`"]
    lines += ["", "Packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()), ""]
    return "\n".join(lines)


def write_plot(
    report: dict[str, Any], path: str | Path, samples: dict[str, list[float]] | None = None
) -> Path:
    """A PNG: left, the latency distribution per stage (box plot of the samples when given,
    else p50 / p90 / p99 markers); right, the stage breakdown of the end-to-end p50 (stacked
    bar).

    Raises:
      MissingDependencyError: matplotlib is not installed (``pip install 'rapsam-edge[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise MissingDependencyError(
            "--plot needs matplotlib", hint="pip install 'rapsam-edge[plot]' (or matplotlib)"
        ) from e
    stages = [s for s in _ordered(report["stages"]) if s != "end_to_end"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 0.8]})
    names = [*stages, "end_to_end"]
    if samples:
        ax1.boxplot([samples.get(s, []) for s in names], whis=(1, 99), showfliers=True)
        ax1.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    else:
        for i, s in enumerate(names):
            st = report["stages"][s]
            ax1.plot([i] * 3, [st["p50"], st["p90"], st["p99"]], "o-")
        ax1.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax1.set_ylabel("ms")
    ax1.set_title(f"latency per stage ({report['mode']})")
    bottom = 0.0
    for s in stages:
        v = report["stages"][s]["p50"]
        ax2.bar(["p50"], [v], bottom=bottom, label=f"{s} {v:.1f} ms")
        bottom += v
    ax2.set_title(
        f"p50 breakdown\n(end to end {report['stages']['end_to_end']['p50']:.1f} ms)", fontsize=10
    )
    ax2.set_xlim(-0.6, 0.6)
    handles, labels = ax2.get_legend_handles_labels()
    ax2.legend(
        handles[::-1], labels[::-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
