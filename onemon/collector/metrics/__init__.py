"""The collector's Prometheus exposition: declared metrics, renderer, cached body, own health."""

from .declared import BY_NAME, METRICS, Kind, Metric
from .health import Health
from .kernel import UdpErrors, udp_errors
from .render import CONTENT_TYPE, MetricsCache, Rendered, Renderer, wants_gzip

__all__ = [
    "BY_NAME", "CONTENT_TYPE", "METRICS", "Health", "Kind", "Metric", "MetricsCache",
    "Rendered", "Renderer", "UdpErrors", "udp_errors", "wants_gzip",
]  # fmt: skip
