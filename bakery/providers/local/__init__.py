"""The local provider: systemd-nspawn nodes on this machine (../shared/ENGINE.md §3, §5)."""
