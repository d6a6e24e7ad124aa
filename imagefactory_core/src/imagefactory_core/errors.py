"""Domain exceptions. The API maps each to one HTTP status in exactly one place
(`imagefactory_core.api.errors`); plugins raise `BuildError` for failures a user can act on."""


class ImageFactoryError(Exception):
    """Base class: `str(exc)` is a message a person can act on."""


class InvalidRequest(ImageFactoryError):
    """The request is missing something or says something impossible (HTTP 400)."""


class TemplateError(InvalidRequest):
    """The TDL is not well-formed or not valid. `line` and `element` locate the problem."""

    def __init__(self, message: str, *, line: int | None = None, element: str | None = None):
        super().__init__(message)
        self.line = line
        self.element = element


class NotFound(ImageFactoryError):
    """No image, plugin or resource with that id (HTTP 404)."""


class Conflict(ImageFactoryError):
    """The request clashes with the image's current state (HTTP 409)."""


class BuildError(ImageFactoryError):
    """A build, push or delete failed. The message becomes `status_detail.error`."""


class CommandFailed(BuildError):
    """A command run through `BuildContext.run` exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, output_tail: str):
        shown = " ".join(argv)
        super().__init__(
            f"command failed with exit code {returncode}: {shown}\n{output_tail}".rstrip()
        )
        self.argv = argv
        self.returncode = returncode
        self.output_tail = output_tail


class BuildCancelled(ImageFactoryError):
    """Raised by `BuildContext.check_cancelled()` once the build was cancelled."""
