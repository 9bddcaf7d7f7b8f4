"""The governed call path's metrics, exported through OpenTelemetry when the user asks for it.

`GovernedCaller` records every call's decision and latency on a `Recorder`. By default that is
`NOOP` and nothing here imports `opentelemetry` (the CLI and the gateway stay as fast without
the extra). `from_environment` gives an OpenTelemetry recorder only when the `otel` extra is
installed and the user turned export on: `OTEL_EXPORTER_OTLP_ENDPOINT` (the standard OTLP
variable; an OTLP exporter package must be installed) or `CLONED_OTEL=console` (printed to
stderr every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds, 60 s by default, and at exit).
docs/gateway.md, "Metrics".

Instruments: the counter `cloned.tool.calls` (attributes `connector`, `tool`, `decision`) and
the histogram `cloned.tool.latency` in milliseconds (the same attributes).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

METER = "cloned"
CALLS = "cloned.tool.calls"
LATENCY = "cloned.tool.latency"
CONSOLE = "console"
OTLP = "otlp"

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """Where the call path reports each call (`NOOP`, or `OtelRecorder`)."""

    def record(self, *, connector: str, tool: str, decision: str, latency_ms: float) -> None:
        """Count one call and its latency."""
        ...


class _Noop:
    def record(self, *, connector: str, tool: str, decision: str, latency_ms: float) -> None:
        """Nothing: metrics export is off."""


NOOP: Recorder = _Noop()


class OtelRecorder:
    """The counter and the histogram on a meter of `provider`."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(METER)
        self._calls = meter.create_counter(
            CALLS, unit="{call}", description="Governed tool calls, by decision."
        )
        self._latency = meter.create_histogram(
            LATENCY, unit="ms", description="Governed tool call latency, checks included."
        )

    def record(self, *, connector: str, tool: str, decision: str, latency_ms: float) -> None:
        """Add one to `cloned.tool.calls` and the latency to `cloned.tool.latency`."""
        attributes = {"connector": connector, "tool": tool, "decision": decision}
        self._calls.add(1, attributes)
        self._latency.record(latency_ms, attributes)


def wanted(env: Mapping[str, str]) -> str | None:
    """Which export the environment asks for (`console`, `otlp`), or None; imports nothing."""
    if env.get("CLONED_OTEL", "").strip().lower() == CONSOLE:
        return CONSOLE
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return OTLP
    return None


def available() -> bool:
    """Whether the OpenTelemetry SDK (the `otel` extra) is installed."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk.metrics") is not None
    except ModuleNotFoundError:
        return False


_CACHED: Recorder | None = None


def from_environment(env: Mapping[str, str] | None = None) -> Recorder:
    """The process's recorder: OpenTelemetry when installed and asked for, else `NOOP`."""
    global _CACHED
    if _CACHED is not None and env is None:
        return _CACHED
    kind = wanted(os.environ if env is None else env)
    recorder = NOOP
    if kind is not None and available():
        provider = _provider(kind)
        if provider is not None:
            recorder = OtelRecorder(provider)
    if env is None:
        _CACHED = recorder
    return recorder


def _provider(kind: str) -> MeterProvider | None:
    """A meter provider exporting `kind`; for OTLP without an exporter package, the global
    provider (one `opentelemetry-instrument` set up), else None with a warning."""
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider as SdkProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )

    exporter: MetricExporter | None
    if kind == CONSOLE:
        # stderr: a stdio gateway's stdout is the MCP stream, `--json`'s is the answer.
        exporter = ConsoleMetricExporter(out=sys.stderr)
    else:
        exporter = _otlp_exporter()
        if exporter is None:
            current = metrics.get_meter_provider()
            if isinstance(current, SdkProvider):
                return current
            log.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but no OTLP exporter is installed "
                "(pip install opentelemetry-exporter-otlp-proto-http): metrics are not exported"
            )
            return None
    # The reader takes its interval from OTEL_METRIC_EXPORT_INTERVAL, as the SDK documents.
    reader = PeriodicExportingMetricReader(exporter)
    # Shut down at exit (the SDK's default), so a short `cloned connectors call` exports too.
    return SdkProvider(metric_readers=[reader])


def _otlp_exporter() -> Any:
    for module in (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    ):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        return found.OTLPMetricExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    return None
