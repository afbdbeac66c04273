"""Sites and goals over the API (conversions-api.md): through Envoy as JSON and over gRPC.

Create and change sites, create, list and delete goals on both engines; every
400 names its field; 403 without `sites:write`; a key of another project can
neither see nor change a site's goals, on every route.
"""

import json
import secrets
from dataclasses import dataclass

import grpc
import pytest
from conftest import Stack
from weldpulse import cli
from weldpulse.storage import accounts, goals
from weldpulse.v1 import sites_pb2, sites_pb2_grpc


@dataclass
class Owner:
    """A fresh project with one site, a `sites:write` + `stats:read` key and a read-only key."""

    project: str
    site: str
    write: str
    read: str


def _owner(stack: Stack) -> Owner:
    tag = secrets.token_hex(4)
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, f"sites-{tag}", "pro")
        site = accounts.create_site(conn, project, f"s{tag}.example")["id"]
        write = accounts.create_api_key(conn, project, ["sites:write", "stats:read"])["key"]
        read = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    return Owner(project, site, write, read)


@pytest.fixture
def owner(stack: Stack) -> Owner:
    return _owner(stack)


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _bad(resp: object, *names: str) -> None:
    assert resp.status_code == 400, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["code"] == "BAD_REQUEST" and set(body) == {"error", "code"}, body
    assert all(n in body["error"] for n in names), body


def test_create_and_update_sites_over_json(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = secrets.token_hex(4)
    with stack.metadata.begin() as conn:  # a project without sites may make its first one
        project = accounts.create_project(conn, f"new-{tag}", "pro")
        key = accounts.create_api_key(conn, project, ["sites:write", "stats:read"])["key"]
    domain = f"n{tag}.example"
    resp = stack.http.post("/v1/sites", json={"domain": domain, "name": "Shop",
                                              "timezone": "Europe/Berlin"}, headers=_h(key))  # fmt: skip
    assert resp.status_code == 200, resp.text
    site = resp.json()
    assert (site["domain"], site["name"], site["timezone"], site["is_active"]) == (
        domain, "Shop", "Europe/Berlin", True)  # fmt: skip
    assert site["site_key"].startswith("sk_live_") and site["created_at"].endswith("Z")
    plain = stack.http.post("/v1/sites", json={"domain": f"m{tag}.example"}, headers=_h(key))
    assert (plain.json()["name"], plain.json()["timezone"]) == (f"m{tag}.example", "UTC")
    changed = stack.http.patch(f"/v1/sites/{site['id']}", json={"timezone": "Asia/Kolkata"},
                               headers=_h(key))  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**site, "timezone": "Asia/Kolkata"}
    renamed = stack.http.patch(f"/v1/sites/{site['id']}", json={"name": "Shop 2"}, headers=_h(key))
    assert renamed.json() == {**site, "timezone": "Asia/Kolkata", "name": "Shop 2"}
    listed = stack.http.get("/v1/sites", headers=_h(key)).json()["data"]
    assert [s["id"] for s in listed] == [site["id"], plain.json()["id"]]
    assert listed[0] == renamed.json()
    # The CLI reads and changes the same sites (it shares storage/accounts.py).
    # In process (test_cli.py runs the installed command): the same `main` and stores.
    monkeypatch.setenv("WELDPULSE_METADATA_URL", stack.metadata_url)
    capsys.readouterr()
    assert cli.main(["sites", "create", "--project", project, "--domain", domain]) == 1
    assert "domain: the project already has a site" in capsys.readouterr().err
    assert cli.main(["sites", "update", site["id"], "--timezone", "UTC"]) == 0
    assert stack.http.get("/v1/sites", headers=_h(key)).json()["data"][0]["timezone"] == "UTC"
    capsys.readouterr()
    assert (
        cli.main(["keys", "create", "--project", project, "--scope", "sites:write", "--json"]) == 0
    )
    made = json.loads(capsys.readouterr().out)
    resp = stack.http.post("/v1/sites", json={"domain": f"k{tag}.example"}, headers=_h(made["key"]))
    assert resp.status_code == 200 and made["scopes"] == ["sites:write"], resp.text


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"domain": "Example.com"}, ["domain", "lower-case host name"]),
        ({"domain": "https://example.com/"}, ["domain"]),
        ({"domain": "exa mple.com"}, ["domain"]),
        ({"domain": "-x.example"}, ["domain"]),
        ({"domain": "example.com\n"}, ["domain"]),
        ({"domain": "a" * 64 + ".example"}, ["domain"]),
        ({"domain": ("a" * 60 + ".") * 5 + "com"}, ["domain", "253"]),
        ({}, ["domain"]),
        ({"domain": "ok.example", "timezone": "Mars/Olympus"}, ["timezone", "Mars/Olympus"]),
        ({"domain": "ok.example", "name": "x" * 201}, ["name", "200"]),
        ({"domain": "ok.example", "name": "   "}, ["name"]),
    ],
)
def test_bad_sites_are_400s_naming_the_field(stack: Stack, owner: Owner, body: dict,
                                             names: list[str]) -> None:  # fmt: skip
    _bad(stack.http.post("/v1/sites", json=body, headers=_h(owner.write)), *names)


def test_bad_site_updates_are_400s(stack: Stack, owner: Owner) -> None:
    other = _owner(stack)
    with stack.metadata.connect() as conn:
        domain = conn.execute(accounts.site_by_id_stmt(owner.site)).one().domain
    _bad(stack.http.post("/v1/sites", json={"domain": domain}, headers=_h(owner.write)),
         "domain", "already")  # fmt: skip
    # Unique within the project only: another project may track the same domain.
    twin = stack.http.post("/v1/sites", json={"domain": domain}, headers=_h(other.write))
    assert twin.status_code == 200, twin.text
    url = f"/v1/sites/{owner.site}"
    _bad(stack.http.patch(url, json={"timezone": "europe/berlin"}, headers=_h(owner.write)),
         "timezone")  # fmt: skip
    _bad(stack.http.patch(url, json={"name": ""}, headers=_h(owner.write)), "name")
    _bad(stack.http.patch(url, json={}, headers=_h(owner.write)), "name", "timezone")
    # Another project's site: the same 400 as a site that does not exist.
    _bad(stack.http.patch(f"/v1/sites/{other.site}", json={"name": "x"}, headers=_h(owner.write)),
         "site_id")  # fmt: skip
    _bad(stack.http.patch("/v1/sites/nope", json={"name": "x"}, headers=_h(owner.write)),
         "site_id")  # fmt: skip


def test_goals_create_list_delete(stack: Stack, owner: Owner) -> None:
    url = f"/v1/sites/{owner.site}/goals"
    made = []
    for body in ({"name": "Signup", "event_name": "signup_click"},
                 {"name": "Saw pricing", "page_path": "/pricing*"},
                 {"name": "Ü docs", "page_path": "/docs/**"}):  # fmt: skip
        resp = stack.http.post(url, json=body, headers=_h(owner.write))
        assert resp.status_code == 200, resp.text
        goal = resp.json()
        assert {k: goal[k] for k in body} == body and goal["site_id"] == owner.site
        assert goal["event_name" if "page_path" in body else "page_path"] == ""
        assert len(goal["id"]) == 36 and goal["created_at"].endswith("Z")
        made.append(goal)
    listed = stack.http.get(url, headers=_h(owner.read))  # reading needs stats:read only
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"data": made}  # oldest first
    gone = stack.http.delete(f"{url}/{made[1]['id']}", headers=_h(owner.write))
    assert (gone.status_code, gone.json()) == (200, {})
    assert stack.http.get(url, headers=_h(owner.read)).json() == {"data": [made[0], made[2]]}
    again = stack.http.delete(f"{url}/{made[1]['id']}", headers=_h(owner.write))
    assert again.status_code == 404 and again.json()["code"] == "NOT_FOUND", again.text
    longer = stack.http.delete(f"{url}/{made[0]['id']}x", headers=_h(owner.write))
    assert longer.status_code == 404, longer.text  # not the goal its first 36 characters name
    # A deleted goal's name is free again; the README's curl (-d: a form content type) works.
    resp = stack.http.post(url, content='{"name": "Saw pricing", "page_path": "/pricing*"}',
                           headers={**_h(owner.write),
                                    "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["page_path"] == "/pricing*"


def test_bad_goals_are_400s_naming_the_field(stack: Stack, owner: Owner) -> None:
    url = f"/v1/sites/{owner.site}/goals"
    post = lambda body: stack.http.post(url, json=body, headers=_h(owner.write))  # noqa: E731
    _bad(post({"name": "Both", "event_name": "x", "page_path": "/x"}), "event_name", "page_path")
    _bad(post({"name": "Neither"}), "event_name", "page_path")
    _bad(post({"name": "", "event_name": "x"}), "name", "120")
    _bad(post({"name": "n" * 121, "event_name": "x"}), "name", "120")
    _bad(post({"name": "Long", "event_name": "e" * 121}), "event_name", "120")
    _bad(post({"name": "Long", "page_path": "/" * 2001}), "page_path", "2000")
    assert post({"name": "n" * 120, "event_name": "x"}).status_code == 200
    _bad(post({"name": "n" * 120, "page_path": "/x"}), "name", "already")
    _bad(post({"name": 5, "event_name": "x"}), "name")  # Envoy: not a string
    with stack.metadata.begin() as conn:  # the API's own code; the key's quota is 100 a minute
        for i in range(99):
            goals.create_goal(conn, owner.site, f"g{i}", event_name=f"e{i}")
    _bad(post({"name": "one too many", "event_name": "x"}), "goals", "100")
    assert len(stack.http.get(url, headers=_h(owner.read)).json()["data"]) == 100


def test_writes_need_sites_write(stack: Stack, owner: Owner) -> None:
    url = f"/v1/sites/{owner.site}/goals"
    calls = [
        ("POST", "/v1/sites", {"domain": f"r{secrets.token_hex(4)}.example"}),
        ("PATCH", f"/v1/sites/{owner.site}", {"name": "x"}),
        ("POST", url, {"name": "x", "event_name": "x"}),
        ("DELETE", f"{url}/00000000-0000-0000-0000-000000000000", None),
    ]
    for method, path, body in calls:
        resp = stack.http.request(method, path, json=body, headers=_h(owner.read))
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json() == {"error": "This API key lacks the sites:write scope",
                               "code": "FORBIDDEN"}  # fmt: skip
        assert stack.http.request(method, path, json=body).status_code == 401
    write_only = stack.new_key("a", ["sites:write"])  # writing does not imply reading
    assert stack.http.get(f"/v1/sites/{stack.ids['a_site1']}/goals",
                          headers=_h(write_only)).status_code == 403  # fmt: skip


def test_another_project_can_neither_see_nor_change_goals(stack: Stack, owner: Owner) -> None:
    url = f"/v1/sites/{owner.site}/goals"
    goal = stack.http.post(url, json={"name": "Mine", "event_name": "e"}, headers=_h(owner.write))
    other = _owner(stack)
    calls = [
        ("GET", url, None),
        ("POST", url, {"name": "Theirs", "event_name": "e"}),
        ("DELETE", f"{url}/{goal.json()['id']}", None),
        ("PATCH", f"/v1/sites/{owner.site}", {"name": "taken over"}),
    ]
    for method, path, body in calls:
        resp = stack.http.request(method, path, json=body, headers=_h(other.write))
        _bad(resp, "site_id")
        assert owner.site not in resp.json()["error"] or "no site" in resp.json()["error"]
    # Their own site with our goal's id: not found there either.
    resp = stack.http.delete(f"/v1/sites/{other.site}/goals/{goal.json()['id']}",
                             headers=_h(other.write))  # fmt: skip
    assert resp.status_code == 404, resp.text
    listed = stack.http.get(url, headers=_h(owner.read)).json()["data"]
    assert [g["name"] for g in listed] == ["Mine"]
    with stack.metadata.connect() as conn:
        assert conn.execute(accounts.site_by_id_stmt(owner.site)).one().domain.startswith("s")


def test_sites_service_over_grpc(stack: Stack, owner: Owner) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as chan:
        stub = sites_pb2_grpc.SitesServiceStub(chan)
        meta = (("authorization", f"Bearer {owner.write}"),)
        goal = stub.CreateGoal(sites_pb2.CreateGoalRequest(site_id=owner.site, name="G",
                                                           page_path="/a/*"), metadata=meta)  # fmt: skip
        assert (goal.name, goal.page_path, goal.event_name) == ("G", "/a/*", "")
        listed = stub.ListGoals(sites_pb2.ListGoalsRequest(site_id=owner.site), metadata=meta)
        assert list(listed.data) == [goal]
        site = stub.UpdateSite(sites_pb2.UpdateSiteRequest(site_id=owner.site, name="N"),
                               metadata=meta)  # fmt: skip
        assert site.name == "N" and site.id == owner.site
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateGoal(sites_pb2.CreateGoalRequest(site_id=owner.site, name="G",
                                                        event_name="x"), metadata=meta)  # fmt: skip
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.DeleteGoal(sites_pb2.DeleteGoalRequest(site_id=owner.site, goal_id=goal.id),
                            metadata=(("authorization", f"Bearer {owner.read}"),))  # fmt: skip
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.DeleteGoal(sites_pb2.DeleteGoalRequest(site_id=owner.site, goal_id=goal.id),
                        metadata=meta)  # fmt: skip
        assert not stub.ListGoals(sites_pb2.ListGoalsRequest(site_id=owner.site),
                                  metadata=meta).data  # fmt: skip
