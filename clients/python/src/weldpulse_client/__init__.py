"""Typed Python client for the weldpulse analytics API (gRPC)."""

from weldpulse_client import filters
from weldpulse_client._pb.weldpulse.v1 import analytics_pb2 as pb
from weldpulse_client._pb.weldpulse.v1 import funnels_pb2 as funnel_pb
from weldpulse_client._pb.weldpulse.v1 import ingest_pb2 as ingest_pb
from weldpulse_client._pb.weldpulse.v1 import live_pb2 as live_pb
from weldpulse_client._pb.weldpulse.v1 import sites_pb2 as sites_pb
from weldpulse_client.client import Client, LiveStream, Retry, retry_after, rpc_methods

__all__ = [
    "Client",
    "LiveStream",
    "Retry",
    "filters",
    "funnel_pb",
    "ingest_pb",
    "live_pb",
    "pb",
    "retry_after",
    "rpc_methods",
    "sites_pb",
]
