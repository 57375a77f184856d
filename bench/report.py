"""Medians of the repeated runs: the stdout table, docs/benchmarks.md, .png and .json."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from bench.procs import REPO_ROOT

if TYPE_CHECKING:
    from bench.harness import Results
    from bench.plan import Plan

PACKAGES = (
    "cryptography", "joserfc", "flask", "werkzeug", "gunicorn", "redis", "marshmallow",
    "moto", "botocore",
)  # fmt: skip
TARGET_RPS_RETURNING = 2000
TARGET_P99_MS = 30.0
TARGET_MOTO_FACTOR = 4.0
TARGET_NEW_RPS = 1000
TARGET_BACKEND_RPS = 3000
TARGET_RSS_MIB = 80.0
GROWTH_TOLERANCE_MIB = 1.0
NOISY_CORES = 0.2  # as bench/harness.py
TARGET_LEVEL = 32
SERVER_NAMES = {"broker": "broker", "moto": "moto_server", "backend": "broker /v1/token"}


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine_facts(plan: Plan) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = int(next(ln.split()[1] for ln in meminfo if ln.startswith("MemTotal")))
    os_name = "?"
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        openssl = backend.openssl_version_text()
    except Exception:  # noqa: BLE001 - informative only
        openssl = "?"
    facts = {
        "cpu": f"{os.cpu_count()} x {model}",
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "os": f"{os_name}, Linux {platform.release()}",
        "python": platform.python_version(),
        "openssl": openssl,
        "wrk": _run(["wrk", "-v"]).split("[")[0].strip(),
        "redis-server": _run(["redis-server", "--version"]),
        "commit": _run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "uncommitted changes": str(
            len(
                subprocess.run(
                    ["git", "-C", str(REPO_ROOT), "status", "--porcelain"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                ).stdout.splitlines()
            )
        )
        + " paths",
    }
    for name in PACKAGES:
        try:
            facts[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            facts[name] = "-"
    facts["pinning"] = (
        f"servers (gunicorn, redis-server, moto_server) on CPUs {plan.server_cpus}; "
        f"wrk ({plan.wrk_threads} thread) on CPU {plan.generator_cpus} (taskset)"
    )
    return facts


# --- medians ---------------------------------------------------------------------------------
def rows(results: Results) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[Any]] = {}
    for run in results.runs:
        groups.setdefault((run.server, run.workload, run.connections), []).append(run)
    two = results.ceiling.get("jwt_two_cores") or 0.0
    out = []
    for (server, workload, conns), runs in groups.items():
        requests = sum(r.requests for r in runs)
        rps = median(r.rps for r in runs)
        out.append(
            {
                "server": server,
                "workload": workload,
                "connections": conns,
                "runs": len(runs),
                "rps": rps,
                "rps_min": min(r.rps for r in runs),
                "rps_max": max(r.rps for r in runs),
                "p50_ms": median(r.p50_ms for r in runs),
                "p99_ms": median(r.p99_ms for r in runs),
                "errors": sum(r.errors for r in runs),
                "requests": requests,
                "repeats": sum(r.exhausted for r in runs) if workload in ("new", "mix") else 0,
                "cached_share": sum(r.cached for r in runs) / requests if requests else 0.0,
                "peak_rss_mib": max((max(r.worker_hwm_mib or [0.0]) for r in runs), default=0.0),
                "server_cpu": median(r.server_cpu for r in runs),
                "generator_cpu": median(r.generator_cpu for r in runs),
                "other_cpu": median(r.other_cpu for r in runs),
                "cpu_us": median(1e6 * r.server_cpu / r.rps if r.rps else 0.0 for r in runs),
                "cpu_us_by_process": {
                    name: median(
                        1e6 * r.cpu_by_process.get(name, 0.0) / r.rps if r.rps else 0.0
                        for r in runs
                    )
                    for name in runs[0].cpu_by_process
                },
                "redis_calls": {
                    cmd: median(r.redis_calls_per_request.get(cmd, 0.0) for r in runs)
                    for cmd in sorted({c for r in runs for c in r.redis_calls_per_request})
                },
                "of_ceiling": rps / two if two and server != "moto" else None,
            }
        )
    order = {"broker": 0, "backend": 1, "moto": 2}
    work = {"returning": 0, "new": 1, "mix": 2}
    out.sort(
        key=lambda r: (order.get(r["server"], 9), work.get(r["workload"], 9), r["connections"])
    )
    return out


def _find(
    table: list[dict[str, Any]], server: str, workload: str, conns: int
) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in table
            if (r["server"], r["workload"], r["connections"]) == (server, workload, conns)
        ),
        None,
    )


def targets(results: Results, table: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of the issue."""
    verdicts: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    ret = _find(table, "broker", "returning", TARGET_LEVEL)
    moto = _find(table, "moto", "returning", TARGET_LEVEL)
    if ret:
        verdicts.append(
            (
                f"returning users >= {TARGET_RPS_RETURNING:,} tokens/s at {TARGET_LEVEL} "
                f"connections, p99 <= {TARGET_P99_MS:g} ms, zero errors",
                f"{ret['rps']:,.0f}/s, p99 {ret['p99_ms']:.1f} ms, {ret['errors']} errors",
                verdict(
                    ret["rps"] >= TARGET_RPS_RETURNING
                    and ret["p99_ms"] <= TARGET_P99_MS
                    and ret["errors"] == 0
                ),
            )
        )
        if moto:
            factor = ret["rps"] / moto["rps"] if moto["rps"] else float("inf")
            verdicts.append(
                (
                    f">= {TARGET_MOTO_FACTOR:g}x moto_server's rate, same workload, same run",
                    f"{factor:.2f}x ({moto['rps']:,.0f}/s for moto_server, "
                    f"{moto['errors']} errors)",
                    verdict(factor >= TARGET_MOTO_FACTOR),
                )
            )
    new = _find(table, "broker", "new", TARGET_LEVEL)
    if new:
        best = max(
            (r for r in table if r["server"] == "broker" and r["workload"] == "new"),
            key=lambda r: r["rps"],
        )
        verdicts.append(
            (
                f"new users >= {TARGET_NEW_RPS:,} identities/s (at {TARGET_LEVEL} connections), "
                "zero errors",
                f"{new['rps']:,.0f}/s, {new['errors']} errors, {new['repeats']} repeated users "
                f"(best: {best['rps']:,.0f}/s at {best['connections']})",
                verdict(new["rps"] >= TARGET_NEW_RPS and new["errors"] == 0 and not new["repeats"]),
            )
        )
    back = _find(table, "backend", "cache-hits", TARGET_LEVEL)
    if back:
        verdicts.append(
            (
                f"backend cache hits >= {TARGET_BACKEND_RPS:,} req/s "
                f"(at {TARGET_LEVEL} connections)",
                f"{back['rps']:,.0f}/s, {back['errors']} errors, "
                f"{100 * back['cached_share']:.1f} % answered from the cache",
                verdict(back["rps"] >= TARGET_BACKEND_RPS and back["errors"] == 0),
            )
        )
    else:
        verdicts.append(
            (
                f"backend cache hits >= {TARGET_BACKEND_RPS:,} req/s",
                str(results.backend.get("skipped", "not measured")),
                "n/a",
            )
        )
    mem = results.memory
    if mem.get("samples"):
        last = mem["samples"][-1]
        half = last["after_requests"] / 2
        mid = min(mem["samples"], key=lambda x: abs(x["after_requests"] - half))
        peak = max(last["rss_mib"].values())
        growth = max(last["rss_mib"][p] - mid["rss_mib"].get(p, 0.0) for p in last["rss_mib"])
        verdicts.append(
            (
                f"<= {TARGET_RSS_MIB:g} MiB RSS per worker after {mem['requests']:,} requests, "
                f"no growth between {mid['after_requests']:,} and {last['after_requests']:,}",
                f"max {peak:.1f} MiB; growth {growth:+.2f} MiB (tolerance "
                f"{GROWTH_TOLERANCE_MIB:g} MiB)",
                verdict(peak <= TARGET_RSS_MIB and growth <= GROWTH_TOLERANCE_MIB),
            )
        )
    return verdicts


# --- text outputs ----------------------------------------------------------------------------
HEADER = (
    "| server | workload | conns | req/s (median) | min-max | p50 ms | p99 ms | errors | "
    "of 2-core ceiling | server CPU | CPU µs/req | wrk CPU | other CPU | "
    "peak RSS/worker MiB | runs |"
)


def _row(r: dict[str, Any]) -> str:
    share = f"{100 * r['of_ceiling']:.0f} %" if r["of_ceiling"] is not None else "-"
    errors = str(r["errors"]) + (f" (+{r['repeats']} repeats)" if r["repeats"] else "")
    rss = f"{r['peak_rss_mib']:.1f}" if r["peak_rss_mib"] else "-"
    workload = r["workload"] + (
        f" ({100 * r['cached_share']:.0f} % cached)" if r["server"] == "backend" else ""
    )
    return (
        f"| {SERVER_NAMES.get(r['server'], r['server'])} | {workload} | {r['connections']} | "
        f"{r['rps']:,.0f} | {r['rps_min']:,.0f}-{r['rps_max']:,.0f} | {r['p50_ms']:.1f} | "
        f"{r['p99_ms']:.1f} | {errors} | {share} | {r['server_cpu']:.2f} | {r['cpu_us']:,.0f} | "
        f"{r['generator_cpu']:.2f} | {r['other_cpu']:.2f} | {rss} | {r['runs']} |"
    )


def table(results: Results) -> str:
    lines = [HEADER, _separator()]
    lines += [_row(r) for r in rows(results)]
    c = results.ceiling
    if c:
        lines.append("")
        lines.append(
            f"RS512 signing ceiling (whole JWT, broker TokenSigner): {c['jwt_one_core']:,.0f}/s on "
            f"one core, {c['jwt_two_cores']:,.0f}/s on two; raw RSA-2048 SHA-512 sign: "
            f"{c['raw_rsa_one_core']:,.0f}/s, {c['raw_rsa_two_cores']:,.0f}/s"
        )
    lines.append("")
    for name, measured, verdict in targets(results, rows(results)):
        lines.append(f"[{verdict}] {name}: {measured}")
    if results.failure:
        lines.append(f"\nRUN FAILED: {results.failure}")
    return "\n".join(lines)


def _separator() -> str:
    return "|" + "---|" * (HEADER.count("|") - 1)


def markdown(results: Results, plan: Plan, png_name: str) -> str:
    table_rows = rows(results)
    c = results.ceiling
    m = results.machine
    out: list[str] = []
    title = "Benchmarks" + (
        " (quick run: one repetition, not for the record)" if plan.quick else ""
    )
    out += [f"# {title}", ""]
    out += [
        f"Generated by `{results.commands[0]}` on {results.started}, "
        f"in {results.seconds / 60:.1f} minutes. Every figure is the **median of "
        f"{plan.reps} run{'s' if plan.reps > 1 else ''}** of {plan.duration:g} s each, "
        "from one run of the harness; errors are summed over the runs. Regenerate with "
        "`bench/run` (about 10 minutes) or `bench/run --quick` (under 2 minutes, one "
        "repetition, written to a temporary directory).",
        "",
    ]
    if results.failure:
        out += [
            f"**This run did not finish: {results.failure}.** The figures below are partial.",
            "",
        ]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in m.items()]
    out += [""]
    out += ["## Results", "", HEADER, _separator()]
    out += [_row(r) for r in table_rows]
    out += [
        "",
        "*req/s* is tokens per second for GetOpenIdTokenForDeveloperIdentity (every 200 carries "
        "a signed token; for new users, an identity created). *errors* are non-2xx answers plus "
        "socket errors (connect, read, write, timeout), summed over the runs. *of 2-core "
        "ceiling* divides by the two-process RS512 rate below. *peak RSS/worker* is the "
        "largest VmHWM of any gunicorn worker after the runs. *server CPU* is the cores the "
        "server used (gunicorn master and workers plus redis-server; moto_server alone); "
        "*wrk CPU* the cores the load generator used; *other CPU* the cores every other "
        "process on the machine used meanwhile (other tenants; above 0.2 the run was disturbed).",
        "",
        f"![throughput and p99 latency]({png_name})",
        "",
    ]
    others = [r.other_cpu for r in results.runs]
    if others and median(others) > NOISY_CORES:
        quiet = [r for r in results.runs if r.other_cpu <= NOISY_CORES]
        out += [
            f"**The machine was shared during this run:** other processes (other sessions' "
            f"test suites) used {median(others):.2f} cores in the median run, out of 2, so "
            "the medians above are lower, and the latencies higher, than on a quiet machine. "
            + (
                "The runs during which other processes used at most "
                f"{NOISY_CORES:g} cores (single runs, not medians):"
                if quiet
                else "No run had the machine to itself."
            ),
            "",
        ]
        if quiet:
            out += [
                "| server | workload | conns | rep | req/s | p50 ms | p99 ms | errors | "
                "server CPU | CPU µs/req | other CPU |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in quiet:
                out.append(
                    f"| {SERVER_NAMES.get(r.server, r.server)} | {r.workload} | {r.connections} | "
                    f"{r.rep} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | "
                    f"{r.server_cpu:.2f} | {1e6 * r.server_cpu / r.rps if r.rps else 0:,.0f} | "
                    f"{r.other_cpu:.2f} |"
                )
            out.append("")
    split = [r for r in table_rows if r["server"] != "moto" and r["cpu_us_by_process"]]
    if split:
        out += [
            "### Server CPU per request, by process, and Redis commands per request",
            "",
            "| server | workload | conns | workers µs | master µs | redis-server µs | "
            "Redis commands per request |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in split:
            by = r["cpu_us_by_process"]
            calls = ", ".join(f"{c} {n:.2f}" for c, n in r["redis_calls"].items() if n >= 0.01)
            out.append(
                f"| {SERVER_NAMES.get(r['server'], r['server'])} | {r['workload']} | "
                f"{r['connections']} | {by.get('workers', 0):,.0f} | {by.get('master', 0):,.0f} | "
                f"{by.get('redis', 0):,.0f} | {calls or '-'} |"
            )
        out.append("")
    if c:
        ret = _find(table_rows, "broker", "returning", TARGET_LEVEL)
        out += [
            "## Signing ceiling",
            "",
            "The same cryptography and joserfc build, in processes pinned one per core, signing "
            "the broker's claims set with the broker's own `TokenSigner` (a whole compact JWT); "
            f"best of {c['runs']} runs of {c['seconds']:g} s (other processes can only lower "
            f"a rate; medians in benchmarks.json), measured first, with nothing of the "
            f"benchmark running; other processes used {c['other_cpu']:.2f} cores meanwhile "
            "(median):",
            "",
            "| | one core | two cores (2 processes) |",
            "|---|---|---|",
            f"| RS512 JWT, `broker.tokens.signer.TokenSigner` | {c['jwt_one_core']:,.0f}/s | "
            f"{c['jwt_two_cores']:,.0f}/s |",
            f"| raw RSA-2048 PKCS#1 v1.5 + SHA-512 (`cryptography`) | "
            f"{c['raw_rsa_one_core']:,.0f}/s | {c['raw_rsa_two_cores']:,.0f}/s |",
            "",
        ]
        if ret:
            out += [
                f"Returning users at {TARGET_LEVEL} connections: {ret['rps']:,.0f} tokens/s = "
                f"**{100 * ret['rps'] / c['jwt_two_cores']:.0f} % of the two-core ceiling** "
                f"({100 * ret['rps'] / c['jwt_one_core']:.0f} % of one core's), with wrk "
                f"sharing CPU {plan.generator_cpus}.",
                "",
            ]
    mem = results.memory
    if mem.get("samples"):
        out += [
            "## Memory",
            "",
            f"A fresh gunicorn (same settings), {mem['seed_requests']:,} identities created, then "
            f"{mem['requests']:,} returning-user requests at {mem['connections']} connections, "
            "RSS (VmRSS) per worker read after every chunk, MiB:",
            "",
        ]
        pids = list(mem["samples"][0]["rss_mib"])
        out += [
            "| after requests | "
            + " | ".join(f"worker {i + 1}" for i in range(len(pids)))
            + " | VmHWM max |",
            "|---|" + "---|" * (len(pids) + 1),
        ]
        for s in mem["samples"]:
            cells = " | ".join(f"{s['rss_mib'].get(p, 0.0):.1f}" for p in pids)
            out.append(f"| {s['after_requests']:,} | {cells} | {max(s['hwm_mib'].values()):.1f} |")
        out.append("")
    out += ["## Targets (issue 6)", "", "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t} | {m_} | {v} |" for t, m_, v in targets(results, table_rows)]
    out.append("")
    if results.profile:
        from bench.profile import markdown as profile_markdown

        out += profile_markdown(results.profile)
    backend = results.backend
    if backend.get("skipped"):
        out += ["## Backend door", "", f"Not measured: {backend['skipped']}", ""]
    out += [
        "## How it is measured",
        "",
        "- One command: `bench/run` builds `.venv-bench` from `bench/requirements.lock` (hashed) "
        "and `requirements.lock`, installs the project with `pip install --no-deps -e .`, "
        "installs wrk with apt-get when missing, and runs `python -m bench`.",
        "- It starts its own `redis-server` (append-only file, fsync every second, as "
        "`scripts/run`), the broker as `gunicorn -c config/gunicorn.conf.py wsgi:app` with "
        "production settings (the default keep-alive worker `broker/server/`, default count: "
        "cores + 1, access log on, explicit "
        "`BROKER_CREDENTIALS`), and `moto_server`, each on a free port of 127.0.0.1, and stops "
        "every one of them at the end, on failure and on Ctrl-C.",
        f"- Load: wrk 4.1 with `bench/token.lua`, one thread pinned to CPU {plan.generator_cpus}; "
        f"the servers may use CPUs {plan.server_cpus}. Requests are signed with botocore's "
        "`SigV4Auth` right before each run (a signature is good for 5 minutes) and built in "
        "the script's `init()` with the signed `Host`.",
        f"- Workloads: *returning* cycles {plan.returning_users:,} users whose identities were "
        "created through the API first; *new* sends every request for a user never seen "
        "before (enough are signed for the run at 1.1 x the signing ceiling; a repeat would "
        "be flagged); *mix* sends one new user in five, the rest returning; moto_server gets "
        "the returning workload with its own pool (it neither verifies signatures nor keeps "
        "identities, and closes the connection after each answer); *cache-hits* sends "
        f"`POST /v1/token` in trusted API-key mode for {plan.returning_users:,} users whose "
        "tokens were cached first.",
        f"- Levels: {', '.join(map(str, plan.levels))} connections, {plan.duration:g} s each "
        f"after a {plan.warmup:g} s warm-up, {plan.reps} repetitions interleaved (every "
        "workload and server once per repetition). Before each run the harness waits (at most "
        f"{plan.quiet_wait:g} s) for other processes to go quiet; a run during which they "
        f"still used more than 0.2 cores is run once more while a {plan.retry_budget:g} s "
        "budget lasts, and the less disturbed attempt is kept (`retried` in benchmarks.json).",
        "",
    ]
    return "\n".join(out)


def chart(results: Results, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table_rows = rows(results)
    mem = results.memory.get("samples") or []
    fig, axes = plt.subplots(1, 3 if mem else 2, figsize=(16 if mem else 12, 4.8))
    ax1, ax2 = axes[0], axes[1]
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in table_rows:
        series.setdefault((r["server"], r["workload"]), []).append(r)
    for (server, workload), rs in series.items():
        rs.sort(key=lambda r: r["connections"])
        xs = [r["connections"] for r in rs]
        label = f"{SERVER_NAMES.get(server, server)}: {workload}"
        style = "--" if server == "moto" else "-"
        ax1.plot(xs, [r["rps"] for r in rs], style, marker="o", label=label)
        ax2.plot(xs, [r["p99_ms"] for r in rs], style, marker="o", label=label)
    c = results.ceiling
    if c:
        ax1.axhline(c["jwt_two_cores"], color="grey", linestyle=":", label="RS512 ceiling, 2 cores")
        ax1.axhline(c["jwt_one_core"], color="silver", linestyle=":", label="RS512 ceiling, 1 core")
    ax1.axhline(
        TARGET_RPS_RETURNING, color="red", linewidth=0.8, alpha=0.5, label="target, returning"
    )
    ax2.axhline(TARGET_P99_MS, color="red", linewidth=0.8, alpha=0.5, label="target p99")
    ax1.set(xlabel="connections", ylabel="requests/s (median)", title="Throughput")
    ax2.set(xlabel="connections", ylabel="p99 latency, ms (median)", title="p99 latency")
    ax2.set_yscale("log")
    ax2.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax2.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax2.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        levels = sorted({r["connections"] for r in table_rows})
        ax.set_xticks(levels, [str(x) for x in levels])
        ax.grid(True, alpha=0.3)
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=7, loc="best")
    if mem:
        ax3 = axes[2]
        pids = list(mem[0]["rss_mib"])
        xs = [s_["after_requests"] for s_ in mem]
        for i, pid in enumerate(pids):
            ax3.plot(xs, [s_["rss_mib"].get(pid, float("nan")) for s_ in mem], marker=".",
                     label=f"worker {i + 1}")  # fmt: skip
        ax3.axhline(TARGET_RSS_MIB, color="red", linewidth=0.8, alpha=0.5, label="target")
        ax3.set(xlabel="requests", ylabel="RSS per worker, MiB", title="Memory run")
        ax3.set_ylim(bottom=0)
        ax3.grid(True, alpha=0.3)
        ax3.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Identity Broker token path, {results.started} (medians)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: Results, plan: Plan) -> list[Path]:
    prefix = plan.out_prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    png = prefix.with_suffix(".png")
    md = prefix.with_suffix(".md")
    data = prefix.with_suffix(".json")
    chart(results, png)
    md.write_text(markdown(results, plan, png.name) + "\n")
    payload = dataclasses.asdict(results)
    payload["medians"] = rows(results)
    data.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return [md, png, data]
