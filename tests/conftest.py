from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle, run_in_thread


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorHandle]:
    handle = run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _sim_faults_do_not_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that injects faults into the shared simulator cannot leave them for the next
    one (a sticky 429 left behind would fail an unrelated test far away)."""
    yield
    if {"sim", "fresh_sim"} & set(request.fixturenames):
        handle = request.getfixturevalue("sim")
        # Some modules define a `sim` of their own protocol; only the shared one is ours.
        if isinstance(handle, SimulatorHandle):
            handle.clear_faults()


@pytest.fixture
def fresh_sim(sim: SimulatorHandle) -> SimulatorHandle:
    sim.reset()
    return sim


@pytest.fixture(scope="session")
def server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server for most end-to-end tests: local model plus simulated openai and azure."""
    # Many tests inject faults here; a breaker tripped by one must not reroute the next.
    config = "keepalive_interval = 0.2\nbreaker_failures = 100000\n\n" + provider_config(
        sim.base_url
    )
    running = start_server(tmp_path_factory.mktemp("server"), config)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def openai_server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Only the OpenAI provider configured."""
    config = provider_config(sim.base_url, azure=False)
    running = start_server(tmp_path_factory.mktemp("openai"), config)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def azure_server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Only the Azure provider configured, so every OpenAI model is served through it."""
    config = provider_config(sim.base_url, openai=False)
    running = start_server(tmp_path_factory.mktemp("azure"), config)
    yield running
    running.stop()
