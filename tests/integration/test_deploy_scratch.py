import json, time
import pytest
pytestmark = pytest.mark.engine

def test_scratch(engine, busybox_image):
    c = engine.client().api
    print(c._version)
    net = c.create_network("s_net", driver="overlay", attachable=True, labels={"com.docker.stack.namespace": "s"}, scope="swarm")
    spec = {"Name": "s_web", "Labels": {"b": "1", "a": "2"},
            "TaskTemplate": {"ContainerSpec": {"Image": busybox_image, "Args": ["httpd", "-f", "-p", "8080", "-h", "/www"], "Env": ["Z=1", "A=2"]},
                             "Networks": [{"Target": "s_net", "Aliases": ["web"]}],
                             "RestartPolicy": {"Condition": "any", "Delay": 1000000000, "MaxAttempts": 0}},
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 1000000000, "MaxFailureRatio": 0, "Order": "stop-first"},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 18083, "PublishMode": "host"}]}}
    r = c._result(c._post_json(c._url("/services/create"), data=spec), True)
    print(r)
    t0 = time.time()
    for i in range(40):
        ts = c.tasks(filters={"service": "s_web"})
        st = [(t["Status"]["State"], t["DesiredState"]) for t in ts]
        if [s for s in st if s[0] == "running"] and len([s for s in st if s[0]=="running"])==2: break
        time.sleep(0.25)
    print("conv", time.time()-t0, st)
    s = c.inspect_service(r["ID"])
    print(json.dumps(s, indent=1))
    # scale 2 -> 3 and check _up-to-date
    spec2 = json.loads(json.dumps(spec)); spec2["Mode"]["Replicated"]["Replicas"] = 3
    spec2["EndpointSpec"]["Ports"] = []
    c._result(c._post_json(c._url(f"/services/{r['ID']}/update"), data=spec2, params={"version": s["Version"]["Index"]}), True)
    try:
        c._result(c._post_json(c._url(f"/services/{r['ID']}/update"), data=spec2, params={"version": s["Version"]["Index"]}), True)
    except Exception as e:
        print("ERR", type(e), e, getattr(e, "response", None) and e.response.status_code)
    for i in range(12):
        ts = c.tasks(filters={"service": "s_web", "_up-to-date": "true"})
        s = c.inspect_service(r["ID"])
        print(time.time()-t0, s.get("UpdateStatus"), [(t["Status"]["State"], t["DesiredState"], t.get("Version")) for t in ts])
        time.sleep(0.5)
    # broken image service
    bad = {"Name": "s_bad", "TaskTemplate": {"ContainerSpec": {"Image": "local/nope:1"}, "RestartPolicy": {"Condition": "any", "Delay": 1000000000}}, "Mode": {"Replicated": {"Replicas": 1}}}
    rb = c._result(c._post_json(c._url("/services/create"), data=bad), True)
    for i in range(8):
        ts = c.tasks(filters={"service": "s_bad"})
        print(time.time()-t0, [(t["Status"]["State"], t["DesiredState"], t["Status"].get("Err")) for t in ts])
        time.sleep(0.5)
    print(engine.docker("stack", "ps", "s").stdout)
    print(json.dumps(c.nodes(), indent=1)[:3000])
