"""Native gRPC clients: direct and through Envoy, normal status codes, health and reflection."""

import grpc
import pytest
from conftest import GrpcClients, Stack
from dataset import DAY_END, DAY_START
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from weldpulse.api.analytics import AnalyticsServicer
from weldpulse.api.ingest import IngestServicer
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc, ingest_pb2

SERVICE = pb.DESCRIPTOR.services_by_name["AnalyticsService"]


def auth(stack: Stack, key: str = "a") -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {stack.keys[key]}")]


def test_every_rpc_has_an_implementation() -> None:
    for service, servicer in (
        (SERVICE, AnalyticsServicer),
        (ingest_pb2.DESCRIPTOR.services_by_name["IngestService"], IngestServicer),
    ):
        for method in service.methods:
            assert method.name in vars(servicer), f"{service.name}.{method.name} is not implemented"


def test_stats_over_grpc_match_json(stack: Stack, channel: grpc.Channel) -> None:
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    reply = stub.GetStats(pb.GetStatsRequest(start=DAY_START, end=DAY_END), metadata=auth(stack))
    json_row = stack.get("/v1/stats", start=DAY_START, end=DAY_END).json()["data"][0]
    row = reply.data[0]
    assert (row.visitors, row.pageviews, row.sessions) == (6, 10, 7)
    assert json_row == {
        "visitors": row.visitors,
        "pageviews": row.pageviews,
        "sessions": row.sessions,
        "avg_duration": row.avg_duration,
        "bounce_rate": row.bounce_rate,
    }


@pytest.mark.parametrize(
    ("key", "request_", "code"),
    [
        (None, pb.GetStatsRequest(start=DAY_START, end=DAY_END), grpc.StatusCode.UNAUTHENTICATED),
        (
            "free",
            pb.GetStatsRequest(start=DAY_START, end=DAY_END),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        ("a", pb.GetStatsRequest(start=DAY_START), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["no-key", "free-plan", "missing-end"],
)
def test_errors_are_grpc_statuses(grpc_client: GrpcClients, key, request_, code) -> None:
    with pytest.raises(grpc.RpcError) as err:
        grpc_client(key).call("GetStats", request_)
    assert err.value.code() == code


def test_envoy_refuses_native_grpc(stack: Stack, grpc_client: GrpcClients) -> None:
    # Envoy's public port serves JSON only; native gRPC is the server's own port (issue 14).
    client = grpc_client("a", port=stack.http.base_url.port)
    with pytest.raises(grpc.RpcError) as err:
        client.list_sites()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "server's own port" in (err.value.details() or "")


def test_health_is_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "weldpulse.v1.AnalyticsService"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "weldpulse.v1.AnalyticsService" in names and "grpc.health.v1.Health" in names
