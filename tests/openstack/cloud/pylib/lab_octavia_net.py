"""Octavia network driver for a test cloud: the noop driver, except that the VIP is a real Neutron
port (owned by the load balancer's project, device_owner Octavia) on the requested subnet, so a
client can put a floating IP on vip_port_id; deallocate_vip deletes it. Credentials: [service_auth],
through octavia.common.keystone (as Octavia's own Neutron driver uses them)."""
import threading

import openstack
from octavia.common import data_models
from octavia.network.drivers.noop_driver.driver import NoopNetworkDriver
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
_lock = threading.Lock()
_conn = None


def _net():
    global _conn
    with _lock:
        if _conn is None:
            from octavia.common import keystone  # [service_auth], as Octavia's own Neutron driver uses it
            _conn = openstack.connection.Connection(session=keystone.KeystoneSession().get_session(),
                                                    region_name="RegionOne")
        return _conn.network


class NeutronVipNoopDriver(NoopNetworkDriver):
    def allocate_vip(self, loadbalancer):
        vip = loadbalancer.vip
        net = _net()
        port = net.find_port(vip.port_id) if vip and vip.port_id else None  # second call (worker), or user's port
        if port is None:
            subnet = net.get_subnet(vip.subnet_id)
            fixed = {"subnet_id": subnet.id, **({"ip_address": vip.ip_address} if vip.ip_address else {})}
            port = net.create_port(network_id=subnet.network_id, fixed_ips=[fixed],
                                   name=f"octavia-lb-{loadbalancer.id}", device_owner="Octavia",
                                   device_id=f"lb-{loadbalancer.id}", project_id=loadbalancer.project_id)
            LOG.info("lab_neutron_vip: created VIP port %s (%s) for %s", port.id, port.fixed_ips, loadbalancer.id)
        ip = port.fixed_ips[0]
        return data_models.Vip(ip_address=ip["ip_address"], subnet_id=ip["subnet_id"], network_id=port.network_id,
                               port_id=port.id, load_balancer_id=loadbalancer.id), []

    def deallocate_vip(self, vip):
        net = _net()
        port = net.find_port(vip.port_id) if vip.port_id else None
        if port is not None and port.device_owner == "Octavia":
            net.delete_port(port.id, ignore_missing=True)
            LOG.info("lab_neutron_vip: deleted VIP port %s", port.id)
