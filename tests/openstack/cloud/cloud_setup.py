"""Cloud objects of the test cloud: external network `public` (flat, 198.18.99.0/24), tenant network
`private` 10.20.0.0/24 with `router1` to `public` (floating IPs are real), flavor m1.small, image fake-raw."""
import openstack

a = openstack.connect(cloud="admin")
u = openstack.connect(cloud="bakery")
ext = a.network.find_network("public") or a.network.create_network(
    name="public", is_router_external=True, provider_network_type="flat", provider_physical_network="public")
if not list(a.network.subnets(network_id=ext.id)):
    a.network.create_subnet(name="public-subnet", network_id=ext.id, ip_version=4, cidr="198.18.99.0/24",
                            gateway_ip="198.18.99.1", is_dhcp_enabled=False,
                            allocation_pools=[{"start": "198.18.99.10", "end": "198.18.99.250"}])
a.compute.find_flavor("m1.small") or a.compute.create_flavor(name="m1.small", vcpus=1, ram=512, disk=1)
if a.image.find_image("fake-raw") is None:
    a.image.create_image(name="fake-raw", disk_format="raw", container_format="bare", visibility="public",
                         data=b"\0" * 65536, wait=True)
net = u.network.find_network("private") or u.network.create_network(name="private")
sub = next(iter(u.network.subnets(network_id=net.id)), None) or u.network.create_subnet(
    name="private-subnet", network_id=net.id, ip_version=4, cidr="10.20.0.0/24")
if u.network.find_router("router1") is None:
    r = u.network.create_router(name="router1", external_gateway_info={"network_id": ext.id})
    u.network.add_interface_to_router(r, subnet_id=sub.id)
