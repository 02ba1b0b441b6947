"""Written by `bakery bake`: the baked-image marker /etc/bakery/baked.

Records what the image holds (the user-data of every node checks for it and
skips installing Docker) and prints it on the console, where `bakery bake`
reads it to set the Glance image's properties.
"""

import json
import os
import subprocess
import time

PREFIX = "bakery-bake-marker: "


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def main():
    with open("/run/bakery-bake/bake.json") as f:
        bake = json.load(f)
    images = []
    for line in docker("image", "ls", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines():
        ref, _, image_id = line.partition(" ")
        if "<none>" not in ref:
            images.append({"ref": ref, "id": image_id})
    marker = {
        "bakery_version": bake["bakery_version"],
        "docker_version": docker("version", "--format", "{{.Server.Version}}"),
        "images": sorted(images, key=lambda i: i["ref"]),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs("/etc/bakery", mode=0o755, exist_ok=True)
    with open("/etc/bakery/baked", "w") as f:
        f.write(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    line = PREFIX + json.dumps(marker, sort_keys=True, separators=(",", ":"))
    print(line, flush=True)
    try:
        with open("/dev/console", "w") as console:
            console.write(line + "\n")
    except OSError:
        pass


main()
