"""Wait (120 s at most) until N fake computes have inventory in Placement."""
import sys
import time

import openstack

need = int(sys.argv[1])
c = openstack.connect(cloud="admin")
for _ in range(120):
    rps = [r for r in c.placement.resource_providers() if list(c.placement.resource_provider_inventories(r))]
    if len(rps) >= need:
        sys.exit(0)
    time.sleep(1)
sys.exit(f"only {len(rps)} of {need} computes have inventory in Placement")
