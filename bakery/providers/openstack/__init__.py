"""OpenStack: bake node images into Glance, boot clusters on Nova/Neutron.

openstacksdk is imported only inside functions, so `bakery render` and
`bakery convert` never load it. Everything bakery creates carries the bake id
or the cluster name as a tag (Neutron, Glance) or metadata (Nova), and
cleanup finds its resources by those marks, never by name patterns.
"""
