"""Glance: bakery's image properties and tags, upload, lookups, cleanup.

Lookups by property are done client-side: openstacksdk silently drops query
filters it does not know and would return every image (docs/FACTS.md §6). Properties are
set through the image id, never an Image object: update_image(object) also
PATCHes away server-managed properties and Glance answers 409 (docs/FACTS.md §6).
Every property value stays under 255 characters, the limit many clouds apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ... import __version__
from ...errors import CloudError
from .errors import cloud_error

BAKE_TAG = "bakery.bake={}"
BAKERY_TAG = "bakery"
STATE_PROPERTY = "bakery_state"  # "complete" once every step of a bake succeeded
MAX_VALUE = 255


def bake_tag(bake_id: str) -> str:
    return BAKE_TAG.format(bake_id)


def image_properties(bake_id: str, marker: Mapping[str, Any] | None, os_distro: str | None,
                     requested: tuple[str, ...] = ()) -> dict[str, str]:
    """The properties of a baked image, from the builder's marker (or, without one, what was asked for)."""
    props = {"bakery_bake_id": bake_id, "bakery_version": __version__}
    if os_distro:
        props["os_distro"] = os_distro
    images: list[str] = list(requested)
    if marker:
        props["bakery_version"] = str(marker.get("bakery_version", __version__))
        props["bakery_docker_version"] = str(marker.get("docker_version", ""))
        props["bakery_built_at"] = str(marker.get("built_at", ""))
        found = marker.get("images")
        if isinstance(found, list):
            images = [f"{i.get('ref')}@{i.get('id')}" for i in found if isinstance(i, dict)]
    props["bakery_image_count"] = str(len(images))
    for n, ref in enumerate(sorted(images)):
        props[f"bakery_image_{n}"] = ref[:MAX_VALUE]
    return props


def set_properties(conn: Any, image_id: str, props: Mapping[str, str], visibility: str | None = None) -> None:
    attrs: dict[str, str] = dict(props)
    if visibility:
        attrs["visibility"] = visibility
    try:
        conn.image.update_image(image_id, **attrs)  # the id, not the object (docs/FACTS.md §6)
    except Exception as exc:
        raise cloud_error(exc, f"setting properties of image {image_id}") from exc


def add_tags(conn: Any, image_id: str, tags: tuple[str, ...]) -> None:
    for tag in tags:
        try:
            conn.image.add_tag(image_id, tag)
        except Exception as exc:
            raise cloud_error(exc, f"tagging image {image_id}") from exc


def upload(conn: Any, path: Path, name: str, disk_format: str, props: Mapping[str, str],
           tags: tuple[str, ...], visibility: str = "private", container_format: str = "bare") -> str:
    """Create an image record, then PUT its data; on any failure the record is deleted."""
    from openstack.image.v2.image import Image

    try:
        image = Image.new(name=name, disk_format=disk_format, container_format=container_format,
                          visibility=visibility, tags=list(tags), **props).create(conn.image)
    except Exception as exc:
        raise cloud_error(exc, f"creating image {name}") from exc
    try:
        with path.open("rb") as data:
            image.data = data
            resp = image.upload(conn.image)
        if resp is not None and getattr(resp, "status_code", 200) >= 400:
            # Image.upload returns the response instead of raising (docs/FACTS.md §6).
            raise CloudError(f"uploading {path} to image {image.id}: HTTP {resp.status_code}: {resp.text[:300]}")
    except BaseException:
        delete(conn, image.id)
        raise
    return str(image.id)


def find(conn: Any, tag: str | None = None, **properties: str) -> list[Any]:
    """Images carrying `tag` and every given property value, sorted by creation (filters applied here)."""
    out = [i for i in _all_images(conn, tag) if _matches(i, tag, properties)]
    return sorted(out, key=lambda i: (str(i.created_at or ""), str(i.id)))


def _all_images(conn: Any, tag: str | None) -> Iterator[Any]:
    query = {"tag": tag} if tag else {}  # a documented Glance filter; rechecked in _matches
    try:
        yield from conn.image.images(**query)
    except Exception as exc:
        raise cloud_error(exc, "listing images") from exc


def _matches(image: Any, tag: str | None, properties: Mapping[str, str]) -> bool:
    if tag and tag not in (image.tags or []):
        return False
    own = dict(image.properties or {})
    return all(str(own.get(k, getattr(image, k, None))) == v for k, v in properties.items())


def delete(conn: Any, image_id: str) -> bool:
    """Delete an image; False if it was already gone."""
    from openstack import exceptions

    try:
        conn.image.delete_image(image_id, ignore_missing=False)
    except exceptions.NotFoundException:
        return False
    except Exception as exc:
        raise cloud_error(exc, f"deleting image {image_id}") from exc
    return True
