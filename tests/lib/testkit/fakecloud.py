"""A fake OpenStack at the HTTP level (requests-mock), answering with the documented API shapes.

Keystone v3 (token with a service catalog), Nova (servers, actions, flavors,
server groups, keypairs), Neutron (networks, security groups and rules, ports,
floating IPs, tags), Glance v2 (images, tags, PATCH) and Octavia hold their
resources in memory. Tests script what the cloud does (a server's statuses,
an image stuck in "saving", an HTTP error on one request) and assert the exact
requests openstacksdk sent. Nothing real runs here; Glance proper is tested
in test_glance_real.py.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests
import requests_mock

IDENTITY = "https://identity.example.com/v3"
COMPUTE = "https://compute.example.com/v2.1"
NETWORK = "https://network.example.com"
IMAGE = "https://image.example.com"
LB = "https://lb.example.com"
PROJECT = "0123456789abcdef0123456789abcdef"

CATALOG = [
    ("compute", "nova", COMPUTE), ("network", "neutron", NETWORK), ("image", "glance", IMAGE),
    ("load-balancer", "octavia", LB),
]

# Neutron collections: URL segment -> JSON key of one item.
NEUTRON = {"security-groups": "security_group", "security-group-rules": "security_group_rule",
           "ports": "port", "floatingips": "floatingip", "networks": "network", "subnets": "subnet"}

# Octavia collections: URL segment -> JSON key of one item.
OCTAVIA = {"loadbalancers": "loadbalancer", "listeners": "listener", "pools": "pool", "healthmonitors": "healthmonitor",
           "members": "member"}

# Each service's documented error body.
NOVA_FAULTS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}
ERROR_SHAPES: dict[str, Callable[[int, str], Any]] = {
    "compute": lambda status, msg: {NOVA_FAULTS.get(status, "computeFault"): {"message": msg, "code": status}},
    "network": lambda status, msg: {"NeutronError": {"type": "OverQuota" if "uota" in msg else "HTTPError",
                                                     "message": msg, "detail": ""}},
    "image": lambda status, msg: {"message": msg, "code": status, "title": "Error"},
    "lb": lambda status, msg: {"faultcode": "Client", "faultstring": msg, "debuginfo": None},
}


def token() -> dict[str, Any]:
    domain = {"id": "default", "name": "Default"}
    return {"token": {
        "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
        "issued_at": "2024-01-01T00:00:00.000000Z",
        "project": {"id": PROJECT, "name": "demo", "domain": domain},
        "user": {"id": "u1", "name": "demo", "domain": domain},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": [{"type": t, "name": n, "id": t, "endpoints": [
            {"id": f"{t}-public", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": u}]}
            for t, n, u in CATALOG],
    }}


class FakeCloud:
    def __init__(self, mocker: requests_mock.Mocker) -> None:
        self.m = mocker
        self._ids = itertools.count(1)
        self.flavors = [{"id": "f-small", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
                        {"id": "f-large", "name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 80}]
        # Nova's absolute limits (-1: unlimited)
        self.limits: dict[str, int] = {"maxTotalInstances": -1, "totalInstancesUsed": 0, "maxTotalCores": -1,
                                       "totalCoresUsed": 0, "maxTotalRAMSize": -1, "totalRAMUsed": 0}
        self.octavia: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in OCTAVIA}
        self.servers: dict[str, dict[str, Any]] = {}
        self.server_groups: dict[str, dict[str, Any]] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}
        self.neutron: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in NEUTRON}
        self.images: dict[str, dict[str, Any]] = {}
        self.console = ""
        # server id -> statuses returned by successive GETs (the last one repeats)
        self.server_statuses: dict[str, list[str]] = {}
        self.default_statuses = ["BUILD", "ACTIVE", "SHUTOFF"]
        # snapshot statuses: a status string, or an int for an HTTP error answer
        self.image_statuses: list[str | int] = ["queued", "saving", "active"]
        # (METHOD, path regex) -> (status, body): the cloud refuses that request
        self.failures: list[tuple[str, str, int, dict[str, Any]]] = []
        self.on_request: Callable[[str, str], None] | None = None
        # [METHOD, path regex, times, _, spread]: the connection is reset (no answer) that many times, as a proxy
        # or an API worker closing an idle keep-alive connection does; spread: never twice in a row
        self.resets: list[list[Any]] = []
        self.port_ip: str | None = None  # the fixed IP of the next port created (then 10.0.0.N again)
        self.network("private", "net-private")
        self.neutron["subnets"]["sub-1"] = {"id": "sub-1", "name": "private-v4", "network_id": "net-private",
                                            "cidr": "10.0.0.0/24", "ip_version": 4, "tags": [], "project_id": PROJECT}
        self.image("debian-12", "img-debian", status="active")
        mocker.post(f"{IDENTITY}/auth/tokens", json=token(), headers={"X-Subject-Token": "tok"}, status_code=201)
        for base in (COMPUTE, NETWORK, IMAGE, LB):
            host = re.escape(base.split("/v")[0] if base == COMPUTE else base)
            mocker.register_uri(requests_mock.ANY, re.compile(host + r"(/.*)?$"), json=self._handle)

    # --- set-up helpers ---
    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def network(self, name: str, ident: str, external: bool = False) -> None:
        self.neutron["networks"][ident] = {"id": ident, "name": name, "tags": [], "status": "ACTIVE",
                                           "subnets": ["sub-ext" if external else "sub-1"], "project_id": PROJECT,
                                           "router:external": external}

    def image(self, name: str, ident: str, status: str = "active", **extra: Any) -> dict[str, Any]:
        img = {"id": ident, "name": name, "status": status, "tags": [], "visibility": "private",
               "disk_format": "qcow2", "container_format": "bare",
               "created_at": f"2024-01-01T00:00:{len(self.images):02d}Z", "self": f"/v2/images/{ident}",
               "file": f"/v2/images/{ident}/file", "schema": "/v2/schemas/image", **extra}
        self.images[ident] = img
        return img

    def fail(self, method: str, path: str, status: int, message: str) -> None:
        self.failures.append((method, path, status, message))

    def reset(self, method: str, path: str, times: int, spread: bool = False) -> None:
        self.resets.append([method, path, times, False, spread])

    # --- what the sdk sent ---
    def calls(self) -> list[str]:
        """METHOD path?query of every API request, without auth and version discovery."""
        out = []
        for r in self.m.request_history:
            u = urllib.parse.urlsplit(r.url)
            if u.path in ("", "/", "/v2.1", "/v2.1/", "/v3/auth/tokens", "/v2", "/v2/"):
                continue
            out.append(f"{r.method} {u.path}" + (f"?{urllib.parse.unquote(u.query)}" if u.query else ""))
        return out

    def bodies(self, method: str, path: str) -> list[Any]:
        return [r.json() for r in self.m.request_history
                if r.method == method and urllib.parse.urlsplit(r.url).path == path and r.body]

    # --- the HTTP side ---
    def _handle(self, request: Any, context: Any) -> Any:
        u = urllib.parse.urlsplit(request.url)
        path, query = u.path, urllib.parse.parse_qs(u.query)
        host = u.netloc.split(".")[0]
        for reset in self.resets:
            if request.method == reset[0] and re.fullmatch(reset[1], path) and reset[2] > 0:
                if reset[3]:  # `spread`: the request after a reset gets through
                    reset[3] = False
                    continue
                reset[2] -= 1
                reset[3] = reset[4]
                raise requests.exceptions.ConnectionError(
                    ("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")))
        for method, pattern, status, message in self.failures:
            if request.method == method and re.fullmatch(pattern, path):
                context.status_code = status
                return ERROR_SHAPES[host](status, message)
        try:
            body = json.loads(request.body) if request.body else None
        except (ValueError, UnicodeDecodeError):
            body = None  # image data
        context.status_code = 200
        handler = {"compute": self._nova, "network": self._neutron, "image": self._glance, "lb": self._octavia}[host]
        return handler(request.method, path, query, body, context)

    @staticmethod
    def _missing(context: Any, what: str) -> dict[str, Any]:
        context.status_code = 404
        return {"itemNotFound": {"message": f"{what} could not be found.", "code": 404},
                "NeutronError": {"message": f"{what} could not be found"}, "message": f"{what} not found"}

    # Nova
    def _nova(self, method: str, path: str, query: dict[str, list[str]], body: Any, context: Any) -> Any:
        if path in ("/", "/v2.1", "/v2.1/"):
            return {"version": {"id": "v2.1", "status": "CURRENT", "version": "2.79", "min_version": "2.1",
                                "links": [{"rel": "self", "href": f"{COMPUTE}/"}]}}
        p = path.removeprefix("/v2.1")
        if p == "/flavors":
            return {"flavors": [{"id": f["id"], "name": f["name"], "links": []} for f in self.flavors]}
        m = re.fullmatch(r"/flavors/([^/]+)", p)
        if m:
            found = [dict(f, links=[]) for f in self.flavors if f["id"] == m.group(1)]
            return {"flavor": found[0]} if found else self._missing(context, f"Flavor {m.group(1)}")
        if p == "/limits":
            return {"limits": {"absolute": self.limits, "rate": []}}
        if p == "/os-keypairs" and method == "GET":
            return {"keypairs": [{"keypair": k} for k in self.keypairs.values()]}
        if p == "/servers" and method == "POST":
            return self._create_server(body["server"], context)
        if p == "/servers/detail":
            return {"servers": [self._server_view(s) for s in self.servers.values() if not s.get("_deleted")]}
        m = re.fullmatch(r"/servers/([^/]+)(/action)?", p)
        if m:
            return self._server_item(method, m.group(1), bool(m.group(2)), body, context)
        if p == "/os-server-groups" and method == "POST":
            sg = dict(body["server_group"], id=self.new_id("sg"), members=[], project_id=PROJECT)
            self.server_groups[sg["id"]] = sg
            return {"server_group": sg}
        if p == "/os-server-groups":
            return {"server_groups": list(self.server_groups.values())}
        m = re.fullmatch(r"/os-server-groups/([^/]+)", p)
        if m and method == "DELETE":
            context.status_code = 204 if self.server_groups.pop(m.group(1), None) else 404
            return None
        if p == "/os-keypairs" and method == "POST":
            kp = dict(body["keypair"], fingerprint="aa:bb", type="ssh")
            self.keypairs[kp["name"]] = kp
            return {"keypair": kp}
        m = re.fullmatch(r"/os-keypairs/([^/]+)", p)
        if m:
            name = urllib.parse.unquote(m.group(1))
            if name not in self.keypairs:
                return self._missing(context, f"Keypair {name}")
            if method == "DELETE":
                del self.keypairs[name]
                context.status_code = 202
                return None
            return {"keypair": self.keypairs[name]}
        raise AssertionError(f"unexpected Nova request {method} {path}")

    def _create_server(self, spec: dict[str, Any], context: Any) -> Any:
        ident = self.new_id("srv")
        net = (spec.get("networks") or [{}])[0] if isinstance(spec.get("networks"), list) else {}
        port = self.neutron["ports"].get(net.get("port", ""))
        addr = port["fixed_ips"][0]["ip_address"] if port else f"10.0.0.{100 + len(self.servers)}"
        self.servers[ident] = dict(spec, id=ident, _polls=0, _addresses={"private": [
            {"addr": addr, "version": 4, "OS-EXT-IPS:type": "fixed"}]})
        context.status_code = 202
        return {"server": {"id": ident, "links": [], "OS-DCF:diskConfig": "MANUAL", "security_groups": []}}

    def _server_view(self, s: dict[str, Any]) -> dict[str, Any]:
        statuses = self.server_statuses.get(s["id"], self.default_statuses)
        status = "DELETED" if s.get("_deleted") else statuses[min(s["_polls"], len(statuses) - 1)]
        view = {k: v for k, v in s.items() if not k.startswith("_") and k != "user_data"}
        view.update(status=status, metadata=s.get("metadata", {}), tenant_id=PROJECT,
                    addresses=s.get("_addresses", {}), flavor={"id": s.get("flavorRef")},
                    image={"id": s.get("imageRef")}, tags=s.get("tags", []))
        if status == "ERROR":
            view["fault"] = s.get("_fault", {"message": "No valid host was found.", "code": 500})
        return view

    def _server_item(self, method: str, ident: str, action: bool, body: Any, context: Any) -> Any:
        s = self.servers.get(ident)
        if s is None or s.get("_gone"):
            return self._missing(context, f"Instance {ident}")
        if action:
            return self._server_action(s, body, context)
        if method == "DELETE":
            s["_deleted"] = True
            context.status_code = 204
            return None
        view = self._server_view(s)
        s["_polls"] += 1
        if s.get("_deleted"):
            s["_gone"] = True  # one more GET shows DELETED, then 404
        return {"server": view}

    def _server_action(self, s: dict[str, Any], body: dict[str, Any], context: Any) -> Any:
        if "os-getConsoleOutput" in body:
            return {"output": self.console}
        if "createImage" in body:
            spec = body["createImage"]
            img = self.image(spec["name"], self.new_id("img"), status="queued", **spec.get("metadata", {}))
            img["_polls"] = 0
            context.status_code = 202
            return {"image_id": img["id"]}
        raise AssertionError(f"unexpected server action {body}")

    # Neutron
    def _neutron(self, method: str, path: str, query: dict[str, list[str]], body: Any, context: Any) -> Any:
        if path in ("", "/"):
            return {"versions": [{"id": "v2.0", "status": "CURRENT",
                                  "links": [{"rel": "self", "href": f"{NETWORK}/v2.0/"}]}]}
        if re.fullmatch(r"/v2\.0/quotas/[^/]+/details", path):  # unlimited (the real quota: test_cloud_up.py)
            return {"quota": {k: {"limit": -1, "used": 0, "reserved": 0}
                              for k in ("security_group", "security_group_rule", "port", "floatingip")}}
        m = re.fullmatch(r"/v2\.0/([a-z-]+)(?:/([^/]+))?(/tags)?", path)
        if not m or m.group(1) not in NEUTRON:
            raise AssertionError(f"unexpected Neutron request {method} {path}")
        kind, ident, tags = m.groups()
        items, key = self.neutron[kind], NEUTRON[kind]
        if ident is None and method == "POST":
            item = dict(body[key], id=self.new_id(kind[:4]), tags=[], project_id=PROJECT)
            if kind == "security-groups":
                item["security_group_rules"] = []
            if kind == "floatingips":
                item["floating_ip_address"] = f"203.0.113.{len(items) + 10}"
            if kind == "ports":
                address, self.port_ip = self.port_ip or f"10.0.0.{len(items) + 10}", None
                item.setdefault("fixed_ips", [{"subnet_id": "sub-1", "ip_address": address}])
            items[item["id"]] = item
            if kind == "security-group-rules":
                self.neutron["security-groups"][item["security_group_id"]]["security_group_rules"].append(item)
            context.status_code = 201
            return {key: item}
        if ident is None:
            found = [i for i in items.values() if all(
                (f == "tags" and set(v[0].split(",")) <= set(i.get("tags", []))) or
                (f != "tags" and str(i.get(f)) == v[0]) for f, v in query.items() if f != "fields")]
            return {kind.replace("-", "_"): found}
        if ident not in items:
            return self._missing(context, f"{key} {ident}")
        if tags:
            items[ident]["tags"] = sorted(body["tags"])
            return {"tags": items[ident]["tags"]}
        if method == "DELETE":
            del items[ident]
            context.status_code = 204
            return None
        if method == "PUT":  # an update: the fields sent replace the item's (a floating IP moved to a port)
            items[ident].update(body[key])
        return {key: items[ident]}

    # Glance
    def _glance(self, method: str, path: str, query: dict[str, list[str]], body: Any, context: Any) -> Any:
        if path in ("", "/"):
            context.status_code = 300
            return {"versions": [{"id": "v2.16", "status": "CURRENT",
                                  "links": [{"rel": "self", "href": f"{IMAGE}/v2/"}]}]}
        if path == "/v2/images" and method == "GET":
            found = [self._image_view(i) for i in self.images.values()
                     if all(f in ("limit", "marker") or (f == "tag" and v[0] in i["tags"]) or
                            (f != "tag" and str(i.get(f)) == v[0]) for f, v in query.items())]
            return {"images": found, "schema": "/v2/schemas/images"}
        m = re.fullmatch(r"/v2/images/([^/]+)(?:/tags/([^/]+))?", path)
        if not m:
            raise AssertionError(f"unexpected Glance request {method} {path}")
        ident, tag = m.group(1), m.group(2)
        img = self.images.get(ident)
        if img is None:
            return self._missing(context, f"Image {ident}")
        if tag is not None:
            img["tags"] = sorted(set(img["tags"]) | {urllib.parse.unquote(tag)})
            context.status_code = 204
            return None
        if method == "DELETE":
            del self.images[ident]
            context.status_code = 204
            return None
        if method == "PATCH":
            for op in body:
                key = op["path"].lstrip("/")
                if op["op"] == "remove":
                    img.pop(key, None)
                else:
                    img[key] = op["value"]
            return self._image_view(img)
        return self._glance_get(img, context)

    def _glance_get(self, img: dict[str, Any], context: Any) -> Any:
        if "_polls" in img:  # a snapshot: walk through the scripted statuses
            step = self.image_statuses[min(img["_polls"], len(self.image_statuses) - 1)]
            img["_polls"] += 1
            if isinstance(step, int):
                context.status_code = step
                return {"message": f"HTTP {step} while saving"}
            img["status"] = step
        return self._image_view(img)

    @staticmethod
    def _image_view(img: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in img.items() if not k.startswith("_")}

    # Octavia: a load balancer is PENDING_* for `lb_pending` GETs after each change, and refuses changes then.
    lb_pending = 2

    def _octavia(self, method: str, path: str, query: dict[str, list[str]], body: Any, context: Any) -> Any:
        if path in ("", "/"):
            return {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": f"{LB}/v2/"}]}]}
        m = re.fullmatch(r"/v2(?:\.0)?/lbaas/(loadbalancers|listeners|pools|healthmonitors)(?:/([^/]+))?"
                         r"(?:/(members)(?:/([^/]+))?)?", path)
        if not m:
            raise AssertionError(f"unexpected Octavia request {method} {path}")
        kind, ident, sub, member = m.groups()
        if member is not None:  # one member of a pool: only DELETE is used
            assert method == "DELETE", f"unexpected Octavia request {method} {path}"
            if member not in self.octavia["members"]:
                context.status_code = 404
                return {"faultcode": "Client", "faultstring": f"member {member} not found", "debuginfo": None}
            for lb in self.octavia["loadbalancers"].values():
                if lb.get("_pending"):
                    context.status_code = 409
                    return {"faultcode": "Client", "faultstring": "load balancer is immutable", "debuginfo": None}
                lb.update(provisioning_status="PENDING_UPDATE", _pending=self.lb_pending)
            del self.octavia["members"][member]
            context.status_code = 204
            return None
        if sub:
            kind = "members"
        items, key = self.octavia[kind], OCTAVIA[kind]
        if method == "POST":
            return self._octavia_create(kind, key, body[key], ident, context)
        if ident is None or sub:
            found = [i for i in items.values() if (not sub or i["pool_id"] == ident) and
                     all(set(v[0].split(",")) <= set(i.get("tags", [])) for f, v in query.items() if f == "tags")]
            return {kind: found}
        if ident not in items:
            context.status_code = 404
            return {"faultcode": "Client", "faultstring": f"{key} {ident} not found", "debuginfo": None}
        item = items[ident]
        if method == "DELETE":
            assert kind == "loadbalancers" and query.get("cascade", [""])[0].lower() == "true", "delete with cascade"
            item.update(provisioning_status="PENDING_DELETE", _pending=1, _deleting=True)
            context.status_code = 204
            return None
        if item.get("_pending"):
            item["_pending"] -= 1
        elif item.get("_deleting"):
            del items[ident]
            for k in ("listeners", "pools", "healthmonitors", "members"):
                self.octavia[k].clear()  # cascade (one load balancer per test)
            context.status_code = 404
            return {"faultcode": "Client", "faultstring": f"{key} {ident} not found", "debuginfo": None}
        else:
            item["provisioning_status"] = "ACTIVE"
        return {key: {k: v for k, v in item.items() if not k.startswith("_")}}

    def _octavia_create(self, kind: str, key: str, spec: dict[str, Any], parent: str | None, context: Any) -> Any:
        lbs = self.octavia["loadbalancers"]
        item = dict(spec, id=self.new_id(kind[:3]), provisioning_status="PENDING_CREATE", project_id=PROJECT)
        if kind == "loadbalancers":
            port = self.new_id("vip")
            item.update(vip_address="10.0.0.250", vip_port_id=port, vip_network_id="net-private",
                        _pending=self.lb_pending)
            self.neutron["ports"][port] = {"id": port, "name": f"octavia-lb-{item['id']}", "tags": [],
                                           "network_id": "net-private", "project_id": PROJECT,
                                           "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.250"}]}
        else:
            lb = next(iter(lbs.values()))
            if lb.get("_pending"):
                context.status_code = 409
                return {"faultcode": "Client", "faultstring": f"Load Balancer {lb['id']} is immutable and cannot be "
                        "updated.", "debuginfo": None}
            lb.update(provisioning_status="PENDING_UPDATE", _pending=self.lb_pending)
            if parent:
                item["pool_id"] = parent
        self.octavia[kind][item["id"]] = item
        context.status_code = 201
        return {key: {k: v for k, v in item.items() if not k.startswith("_")}}


def connect() -> Any:
    """A Connection to the fake cloud, set up as bakery's cloud.connect sets up the operator's."""
    import openstack

    from bakery.providers.openstack.cloud import retry_idempotent

    conn = openstack.connect(
        load_yaml_config=False, load_envvars=False, auth_type="v3password", region_name="RegionOne",
        auth={"auth_url": IDENTITY, "username": "demo", "password": "not-a-secret", "project_name": "demo",
              "user_domain_name": "Default", "project_domain_name": "Default"})
    retry_idempotent(conn.session)
    return conn
