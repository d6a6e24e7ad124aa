"""Keep only the chosen kind's code: kinds/<kind>/ is laid over the project, kinds/ removed."""

import shutil
from pathlib import Path

KIND = "{{ cookiecutter.kind }}"

kinds = Path("kinds")
shutil.copytree(kinds / KIND, Path("."), dirs_exist_ok=True)
shutil.rmtree(kinds)
