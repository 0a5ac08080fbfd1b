"""Soak the live sizer against the fake exchange with injected faults, and count what matters at the end.

The loop (``genetic-sizer size --execute --every 2s``) runs in a child process, as a supervisor runs it, against the
fake Hyperliquid server of the test suite (``tests/fake_hyperliquid.py``: the real SDK signs every request, and the
fake verifies every signature) on 127.0.0.1. For ``--minutes`` (default 10) it suffers, drawn from ``--seed``:

* random faults on every request: HTTP 5xx; HTTP 429 whose body is the exchange's ``{"code", "msg"}`` or not JSON
  with those keys (``{"error": ...}``, a list: the body that once escaped the retries as a KeyError); answers lost
  after the order executed; answers held past the client's timeout; requests held in flight until after the client
  gave up; partial fills; mids that jump between the read and the order;
* whole-API outages of 2-8 s;
* the exchange's clock drifting between 1.5 s behind and 1 s ahead of this machine's (tolerance 2 s);
* kill -9 of the loop at random moments (mid-request included), restarted at once, possibly into an outage; the
  supervisor restarts exit code 6 (transient) as systemd's ``Restart=on-failure`` would, and counts any other exit;
* prices that move every period, so that every pass trades.

The fake accepts a reused client order id as a NEW order (``refuse_duplicate_cloids = False``), so an order sent
twice would execute twice and be counted. When the time is up the faults stop, the loop runs clean passes until one
completes, and is stopped with SIGTERM. Printed (and returned by :func:`soak`): orders sent and executed, duplicates
(orders whose client order id executed more than once: must be 0), whether the journal's fills add up to the
exchange's positions, and the drift from target at the end, per coin in USD.

Run: ``.venv/bin/python experiments/soak_live.py [--minutes 10] [--seed 7]``. A 20-second version is a slow test
(``tests/test_live_ops.py::test_a_short_soak_with_injected_faults_ends_on_target_without_duplicates``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genetic_sizer.exchange.wire import AssetInfo  # noqa: E402
from genetic_sizer.live.journal import read_journal  # noqa: E402
from genetic_sizer.live.sizer import plan_orders  # noqa: E402
from tests.fake_hyperliquid import Chaos, FakeHyperliquid  # noqa: E402
from tests.test_live_cli import AGENT, AGENT_KEY, MAIN, MIDS, UNIVERSE, write_champion  # noqa: E402

WEIGHTS = {"BTC": 0.35, "ETH": 0.25, "SOL": 0.2, "DOGE": 0.1, "AVAX": 0.1}
EQUITY = 10_000.0
PERIOD = "2s"
TIMEOUT, TOLERANCE = 1.0, 2.0


def _chaos(seed: int) -> Chaos:
    return Chaos(
        seed=seed,
        info_5xx=0.03,
        info_429=0.03,
        exchange_5xx=0.05,
        exchange_429=0.04,
        drop=0.06,
        late=0.05,
        held=0.04,
        partial=0.25,
        jump=0.08,
        retry_after="0",
        body_429='{"error": "rate limited"}',  # no code, no msg: the body that escaped the retries as a KeyError
        late_delay=1.5,
        held_delay=1.5,
        jump_size=0.01,
    )


def _spawn(workdir: Path, args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HL_", "GENETIC_SIZER_"))}
    env.update(
        PYTHONPATH=str(REPO),
        HL_SECRET_KEY=AGENT_KEY,  # a throwaway test key: the fake's API wallet for MAIN
        HL_ACCOUNT_ADDRESS=MAIN,
        GENETIC_SIZER_STATE_DIR=str(workdir / "state"),
    )
    with open(workdir / "loop.out", "a") as out, open(workdir / "loop.err", "a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "genetic_sizer.cli.main", *args], cwd=workdir, env=env, stdout=out, stderr=err
        )


def _drift(fake: FakeHyperliquid) -> dict[str, float]:
    """coin -> (target - position) x mid in USD at the fake's state now (targets sized like the live sizer)."""
    meta = {a["name"]: AssetInfo(a["name"], a["szDecimals"], a["maxLeverage"]) for a in UNIVERSE}
    with fake.lock:
        positions = {c: float(p["szi"]) for c, p in fake.positions.items()}
        mids = dict(fake.mids)
        plan = plan_orders(WEIGHTS, fake.account_value, positions, mids, meta)
    return {c.coin: (c.target - positions.get(c.coin, 0.0)) * mids[c.coin] for c in plan.coins if c.coin in mids}


def soak(
    minutes: float = 10.0,
    *,
    workdir: str | Path | None = None,
    seed: int = 7,
    report=print,
) -> dict:
    """Run the soak for ``minutes`` in ``workdir`` (a temporary folder if None); returns the figures."""
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="soak-live-") if own else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    champ = write_champion(workdir / "champion.json", WEIGHTS)
    journal = workdir / "journal.jsonl"
    duration = minutes * 60.0
    figures: dict = {"minutes": minutes, "seed": seed, "period": PERIOD, "workdir": str(workdir)}
    events: Counter = Counter()
    exits: list[int] = []
    with FakeHyperliquid(
        universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, agents=[AGENT], account_value=EQUITY
    ) as fake:
        fake.refuse_duplicate_cloids = False  # a reused cloid executes again: a duplicate would show
        fake.chaos = _chaos(seed)
        args = ["size", "--champion", str(champ), "--base-url", fake.url, "--execute", "--every", PERIOD]
        args += ["--journal", str(journal), "--timeout", f"{TIMEOUT:g}", "--clock-tolerance", f"{TOLERANCE:g}"]
        started = time.monotonic()
        first_kill = min(duration / 3, 30.0)
        next_kill = started + first_kill + rng.uniform(0, first_kill / 2)
        next_outage = started + rng.uniform(5, 20)
        next_skew = started + rng.uniform(5, 15)
        next_move = started
        proc = _spawn(workdir, args)
        report(f"soak: {minutes:g} min, seed {seed}, workdir {workdir}")
        try:
            while time.monotonic() - started < duration:
                now = time.monotonic()
                code = proc.poll()
                if code is not None:  # the supervisor: restart transient exits; count every other one
                    exits.append(code)
                    events["exit"] += 1
                    proc = _spawn(workdir, args)
                    events["restart"] += 1
                if now >= next_kill:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                    events["kill -9"] += 1
                    time.sleep(rng.uniform(0.0, 2.0))
                    proc = _spawn(workdir, args)
                    events["restart"] += 1
                    next_kill = now + rng.uniform(25, 70)
                if now >= next_outage:
                    fake.outage(rng.uniform(2.0, 8.0))
                    events["outage"] += 1
                    next_outage = now + rng.uniform(30, 60)
                if now >= next_skew:
                    with fake.lock:
                        fake.clock_skew = rng.uniform(-1.5, 1.0)
                    events["clock skew change"] += 1
                    next_skew = now + rng.uniform(10, 30)
                if now >= next_move:
                    with fake.lock:
                        for coin in WEIGHTS:
                            fake.mids[coin] = float(f"{fake.mids[coin] * rng.uniform(0.985, 1.015):.5g}")
                    next_move = now + 2.0
                time.sleep(0.05)
            # calm: no faults; the loop runs until a pass completes, then stops as a supervisor stops it
            fake.chaos = None
            with fake.lock:
                fake.clock_skew = 0.0
                fake._outages.clear()
            calm = time.monotonic()
            done = read_journal(journal, missing_ok=True).records if journal.exists() else []
            complete_before = sum(1 for r in done if r.get("event") == "pass_end" and r.get("status") == "complete")
            while time.monotonic() - calm < 120:
                if proc.poll() is not None:
                    exits.append(proc.returncode)
                    proc = _spawn(workdir, args)
                    events["restart"] += 1
                records = read_journal(journal, missing_ok=True).records
                complete = [r for r in records if r.get("event") == "pass_end" and r.get("status") == "complete"]
                if len(complete) >= complete_before + 2 and not _drift_orders(fake):
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                exits.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                exits.append(proc.wait())

        # what happened, from the exchange's record
        cloids = Counter(o.cloid for o in fake.orders)
        sent = [w for r in fake.order_requests for w in r.action["orders"]]
        faults = Counter(kind for kind, _ in fake.fault_log)
        state = read_journal(journal)
        outcome = {e["cloid"]: e for r in state.records if r.get("event") == "result" for e in r.get("results", [])}
        journal_fills: Counter = Counter()
        for p in state.passes.values():
            for cloid, order in p.sent.items():
                entry = outcome.get(cloid)
                if entry is not None and entry.get("filled_size"):
                    journal_fills[order["coin"]] += entry["filled_size"] * (1 if order["side"] == "buy" else -1)
        mismatch = {
            c: round(journal_fills.get(c, 0.0) - fake.position(c), 10)
            for c in {*journal_fills, *fake.positions}
            if abs(journal_fills.get(c, 0.0) - fake.position(c)) > 1e-9
        }
        drift = _drift(fake)
        ends = Counter(r.get("status") for r in state.records if r.get("event") == "pass_end")
        figures.update(
            orders_sent=len(sent),
            order_requests=len(fake.order_requests),
            orders_executed=sum(1 for o in fake.orders if o.filled_sz > 0),
            duplicates=sum(n - 1 for n in cloids.values() if n > 1),
            cloid_reuse_seen_by_exchange=fake.duplicate_cloids,
            leverage_requests=sum(1 for r in fake.exchange_requests if r.action.get("type") == "updateLeverage"),
            passes=dict(ends),
            skipped=sum(1 for r in state.records if r.get("event") == "skipped"),
            unresolved=len(state.unresolved()),
            journal_vs_exchange=mismatch or "consistent",
            drift_usd={c: round(v, 2) for c, v in sorted(drift.items())},
            max_drift_usd=round(max((abs(v) for v in drift.values()), default=0.0), 2),
            faults=sum(faults.values()) + events["outage"],
            fault_kinds={**dict(faults), "outage": events["outage"], "clock skew change": events["clock skew change"]},
            kills=events["kill -9"],
            restarts=events["restart"],
            exits=exits,
            bad_exits=[c for c in exits if c not in (0, 6, -signal.SIGKILL)],
        )
    report(_table(figures))
    return figures


def _drift_orders(fake: FakeHyperliquid) -> list:
    meta = {a["name"]: AssetInfo(a["name"], a["szDecimals"], a["maxLeverage"]) for a in UNIVERSE}
    with fake.lock:
        positions = {c: float(p["szi"]) for c, p in fake.positions.items()}
        return plan_orders(WEIGHTS, fake.account_value, positions, dict(fake.mids), meta).orders


def _table(f: dict) -> str:
    rows = [
        ("duration", f"{f['minutes']:g} min, seed {f['seed']}, every {f['period']}"),
        ("orders sent", f"{f['orders_sent']} in {f['order_requests']} requests; {f['orders_executed']} executed"),
        ("duplicates", f"{f['duplicates']} (cloid reuse seen by the exchange: {f['cloid_reuse_seen_by_exchange']})"),
        ("passes", ", ".join(f"{k} {v}" for k, v in sorted(f["passes"].items())) + f"; skipped {f['skipped']}"),
        ("journal vs exchange", json.dumps(f["journal_vs_exchange"])),
        ("unresolved orders", str(f["unresolved"])),
        ("drift at the end (USD)", json.dumps(f["drift_usd"]) + f"; max |drift| {f['max_drift_usd']}"),
        ("faults", f"{f['faults']}: " + ", ".join(f"{k} {v}" for k, v in sorted(f["fault_kinds"].items()))),
        ("kills / restarts", f"{f['kills']} kill -9, {f['restarts']} restarts; exit codes {sorted(set(f['exits']))}"),
        ("leverage requests", str(f["leverage_requests"])),
        ("bad exits", str(f["bad_exits"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the faults last (default 10)")
    ap.add_argument("--seed", type=int, default=7, help="draws the faults, kills and prices (default 7)")
    ap.add_argument("--workdir", default=None, help="folder for the journal and the loop's output (default: temp)")
    args = ap.parse_args(argv)
    figures = soak(args.minutes, workdir=args.workdir, seed=args.seed)
    ok = figures["duplicates"] == 0 and figures["journal_vs_exchange"] == "consistent" and not figures["bad_exits"]
    return 0 if ok and figures["max_drift_usd"] < 10.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
