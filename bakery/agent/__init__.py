"""What runs on the nodes: `join.py`, the join agent (standard library only).

bakery never imports it: `render` reads its source text and writes it into the user-data
(as /usr/local/lib/bakery/bakery-join), where systemd runs it with the node's python3.
"""
