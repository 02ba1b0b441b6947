"""Where clusters run: `local` (systemd-nspawn nodes on this machine) and, later, OpenStack.

Providers are imported only by the commands that boot or bake (`up`, `down`,
`nodes`, `bake`), never by `render` or `convert`.
"""
