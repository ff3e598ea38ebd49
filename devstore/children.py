"""The demo's child processes (devstore, the web app, the worker, beat): each started in its own
process group with its log in the state directory, waited for over HTTP, and stopped as a group."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from django.core.management.base import CommandError


class Children:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.processes: list[subprocess.Popen] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.state / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def alive(self) -> bool:
        return all(child.poll() is None for child in self.processes)

    def dead(self) -> list[str]:
        return [child.args[0] for child in self.processes if child.poll() is not None]

    def wait_http(self, url: str, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise CommandError(f"{name} exited during start-up; see {self.state}/*.log")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise CommandError(f"{name} did not answer at {url} within {timeout:.0f}s")

    def stop(self) -> None:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave a worker running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in self.processes:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        for child in self.processes:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
