"""Merge a user-data document with cloud-init's own part handlers, the way a booting node does.

Run with the system Python that has Debian's cloud-init (`/usr/bin/python3 cloudinit_merge.py FILE`):
it prints the merged cloud-config as JSON. Only the handlers' merging is used (no datasource, no
modules run), so what it shows is exactly what cloud-init's Merge-Type rules make of the parts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from cloudinit import handlers, helpers, user_data, util  # type: ignore[import-not-found]
from cloudinit.handlers.cloud_config import CloudConfigPartHandler  # type: ignore[import-not-found]
from cloudinit.handlers.jinja_template import JinjaTemplatePartHandler  # type: ignore[import-not-found]


def main(path: str) -> None:
    import yaml

    work = tempfile.mkdtemp()
    paths = helpers.Paths({"cloud_dir": work, "run_dir": work})
    with open(paths.get_runpath("instance_data_sensitive"), "w") as f:  # what jinja parts see as v1.*
        json.dump({"v1": {"local_hostname": "node1"}}, f)
    with open(path, "rb") as f:
        message = user_data.UserDataProcessor(paths).process(f.read())
    config = CloudConfigPartHandler(paths)
    config.cloud_fn = os.path.join(work, "cloud-config.txt")
    jinja = JinjaTemplatePartHandler(paths, sub_handlers=[config])
    config.handle_part(None, handlers.CONTENT_START, None, None, None, None)
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        handler = {"text/jinja2": jinja, "text/cloud-config": config}.get(part.get_content_type())
        if handler:
            handler.handle_part(None, part.get_content_type(), part.get_filename(),
                                util.fully_decoded_payload(part), None, dict(part))
    config.handle_part(None, handlers.CONTENT_END, None, None, None, None)
    with open(config.cloud_fn) as f:
        print(json.dumps(yaml.safe_load(f)))


if __name__ == "__main__":
    main(sys.argv[1])
