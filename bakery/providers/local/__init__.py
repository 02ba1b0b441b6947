"""The local provider: systemd-nspawn nodes on this machine (docs/local-nodes.md)."""
