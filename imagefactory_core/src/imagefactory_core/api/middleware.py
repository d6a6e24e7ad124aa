"""Cross-cutting request checks: body size limits and content negotiation."""

from __future__ import annotations

import falcon

BINARY_SUFFIXES = ("/raw_image", "/log")


class BodyLimit:
    """413 for bodies over the limit, 411 for bodies without a length, before anything reads
    them."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is None:
            if req.get_header("Transfer-Encoding"):
                raise falcon.HTTPLengthRequired(
                    description="Send the request body with a Content-Length header.")
            return
        if req.content_length > self.max_bytes:
            raise falcon.HTTPContentTooLarge(
                description=f"The request body is {req.content_length} bytes; the limit is "
                            f"{self.max_bytes} (configuration key max_request_bytes).")


class RequireJSONAccept:
    """406 when the client will not take JSON (binary downloads and logs excepted)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path.endswith(BINARY_SUFFIXES):
            return
        if not req.client_accepts_json:
            raise falcon.HTTPNotAcceptable(
                description="This API answers application/json; send Accept: application/json.")
