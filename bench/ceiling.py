"""The signing ceiling: how many RS512 tokens per second this machine's cryptography and
joserfc build can sign, measured with the broker's own TokenSigner on a claims set shaped
like the broker's, on one core (one process) and on both (two processes, one per core).

A raw RSA-2048 PKCS#1 v1.5 + SHA-512 signature (``cryptography`` alone, no JWT) is measured
beside it: the part of the ceiling that no Python change can move.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench import procs
from broker.tokens.claims import developer_claims
from broker.tokens.keys import FileKeySource, KeyRing
from broker.tokens.signer import TokenSigner

POOL = "us-east-1:00000000-0000-4000-8000-000000000000"


@dataclass
class Ceiling:
    """Best of the runs (other processes can only lower a rate), and the medians."""

    jwt_one_core: float
    jwt_two_cores: float
    raw_rsa_one_core: float
    raw_rsa_two_cores: float
    medians: dict[str, float]
    other_cpu: float  # median cores other processes used while these ran
    runs: int
    seconds: float


def _claims(i: int) -> dict[str, object]:
    return developer_claims(
        issuer="http://127.0.0.1:8000",
        pool_id=POOL,
        pool_arn=f"arn:aws:cognito-identity:us-east-1:000000000000:identitypool/{POOL}",
        identity_id=f"us-east-1:{i:08d}-0000-4000-8000-000000000000",
        provider="login.bench",
        user_id=f"user-{i}",
        issued_at=1_700_000_000 + i,
        duration=900,
    )


def _loop(args: tuple[str, str, int, float, float]) -> int:
    """Sign until ``start + seconds`` on ``cpu``; the count of signatures made."""
    kind, key_path, cpu, start, seconds = args
    os.sched_setaffinity(0, {cpu})
    pem = Path(key_path).read_bytes()
    if kind == "jwt":
        signer = TokenSigner(KeyRing(FileKeySource(key_path), refresh_seconds=3600))
        signer.sign(_claims(0))

        def one(i: int) -> object:
            return signer.sign(_claims(i))

    else:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        pkcs1, sha512 = padding.PKCS1v15(), hashes.SHA512()

        def one(i: int) -> object:
            return key.sign(b"header.payload-%d" % i, pkcs1, sha512)

    while time.monotonic() < start:
        time.sleep(0.001)
    end = start + seconds
    count = 0
    while time.monotonic() < end:
        for _ in range(20):
            one(count)
            count += 1
    return count


def _rate(kind: str, key_path: str, cpus: list[int], seconds: float) -> tuple[float, float]:
    """(signatures per second, cores used by other processes meanwhile)."""
    start = time.monotonic() + 0.3
    jobs = [(kind, key_path, cpu, start, seconds) for cpu in cpus]
    ours_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, t0 = procs.system_cpu()[0], time.monotonic()
    with multiprocessing.get_context("fork").Pool(len(cpus), initializer=procs.quiet_child) as pool:
        counts = pool.map_async(_loop, jobs).get(timeout=seconds + 60)
    wall = time.monotonic() - t0
    ours_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = sum(getattr(ours_after, f) - getattr(ours_before, f) for f in ("ru_utime", "ru_stime"))
    other = (procs.system_cpu()[0] - busy_before - ours) / wall
    return sum(counts) / seconds, max(0.0, other)


def measure(runs: int = 3, seconds: float = 2.0) -> Ceiling:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-key-") as tmp:
        key_path = os.path.join(tmp, "key.pem")
        Path(key_path).write_bytes(pem)
        figures: dict[str, list[float]] = {}
        others: list[float] = []
        for _ in range(runs):
            for kind in ("jwt", "raw"):
                for n in (1, 2):
                    rate, other = _rate(kind, key_path, cpus[:n], seconds)
                    figures.setdefault(f"{kind}{n}", []).append(rate)
                    others.append(other)
    return Ceiling(
        jwt_one_core=max(figures["jwt1"]),
        jwt_two_cores=max(figures["jwt2"]),
        raw_rsa_one_core=max(figures["raw1"]),
        raw_rsa_two_cores=max(figures["raw2"]),
        medians={k: median(v) for k, v in figures.items()},
        other_cpu=median(others),
        runs=runs,
        seconds=seconds,
    )


if __name__ == "__main__":
    c = measure()
    print(
        f"RS512 JWT (broker TokenSigner): {c.jwt_one_core:,.0f}/s on 1 core, "
        f"{c.jwt_two_cores:,.0f}/s on 2 cores; raw RSA-2048 PKCS#1 v1.5 SHA-512: "
        f"{c.raw_rsa_one_core:,.0f}/s, {c.raw_rsa_two_cores:,.0f}/s"
    )
