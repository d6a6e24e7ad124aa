"""A config drive: an ISO 9660 image labelled ``config-2``, as Nova attaches to an instance.

Written with pycdlib (pure Python; the ``testing`` extra of imagefactory-core installs it), with
Rock Ridge and Joliet names as Nova's ``genisoimage -r -J -V config-2`` has them: the guest's
kernel shows the Rock Ridge names (``openstack/latest/meta_data.json``). The plain ISO 9660
names underneath are short generated ones (``D0``, ``F1.;1``), which no reader looks at.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

LABEL = "config-2"


def write_config_drive(path: Path, files: Mapping[str, bytes], label: str = LABEL) -> Path:
    """Write an ISO 9660 image with `files` (relative POSIX paths → content) to `path`."""
    try:
        import pycdlib
    except ImportError as error:  # an extra, not a dependency of the service
        raise RuntimeError("config drives need pycdlib: pip install "
                           "'imagefactory-core[testing]'") from error
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=label, rock_ridge="1.09", joliet=3)
    iso_names: dict[PurePosixPath, str] = {PurePosixPath("."): ""}
    for index, name in enumerate(sorted({parent for file in files
                                         for parent in PurePosixPath(file).parents
                                         if parent != PurePosixPath(".")},
                                        key=lambda p: len(p.parts))):
        iso_names[name] = f"{iso_names[name.parent]}/D{index}"
        iso.add_directory(iso_names[name], rr_name=name.name, joliet_path=f"/{name}")
    for index, (name, content) in enumerate(sorted(files.items())):
        file = PurePosixPath(name)
        iso.add_fp(io.BytesIO(content), len(content), f"{iso_names[file.parent]}/F{index}.;1",
                   rr_name=file.name, joliet_path=f"/{file}")
    iso.write(str(path))
    iso.close()
    return path
