"""Keystone objects of the test cloud (run by the cloud venv's python, as admin): project and user
`bakery` (role member), the service users (admin + service in project `service`), the catalog."""
import sys

import openstack

c = openstack.connect(cloud="admin")
idn = c.identity
dom = idn.find_domain("default")


def project(name):
    return idn.find_project(name, domain_id=dom.id) or idn.create_project(name=name, domain_id=dom.id)


def user(name, pw, proj):
    return idn.find_user(name, domain_id=dom.id) or idn.create_user(
        name=name, password=pw, domain_id=dom.id, default_project_id=proj.id)


def role(name):
    return idn.find_role(name) or idn.create_role(name=name)


bk, svc = project("bakery"), project("service")
member, admin, service = role("member"), role("admin"), role("service")
idn.assign_project_role_to_user(bk, user("bakery", "bakerypw", bk), member)
for s in ("nova", "neutron", "placement", "glance", "octavia"):
    su = user(s, "svcpw", svc)
    idn.assign_project_role_to_user(svc, su, admin)
    idn.assign_project_role_to_user(svc, su, service)
for name, typ, url in (("nova", "compute", "http://127.0.0.1:8774/v2.1"),
                       ("placement", "placement", "http://127.0.0.1:8778"),
                       ("neutron", "network", "http://127.0.0.1:9696"),
                       ("glance", "image", "http://127.0.0.1:9292"),
                       ("octavia", "load-balancer", "http://127.0.0.1:9876")):
    sv = next(iter(idn.services(type=typ)), None) or idn.create_service(name=name, type=typ, enabled=True)
    have = {e.interface for e in idn.endpoints(service_id=sv.id)}
    for itf in ("public", "internal", "admin"):
        if itf not in have:
            idn.create_endpoint(service_id=sv.id, interface=itf, url=url, region_id="RegionOne")
print("keystone: project bakery, user bakery, catalog", file=sys.stderr)
