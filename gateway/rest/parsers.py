"""The REST API's JSON parser: client JSON decoded the one safe way (`core/client_json.py`).

DRF's own parser lets `RecursionError` through as a 500 and turns `1e400` into infinity; this
one answers both, and invalid UTF-8, with DRF's usual 400 `{"detail": ...}`. JSON is UTF-8
(RFC 8259), whatever charset the request names.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core import client_json
from core.errors import InvalidRequest


class ClientJsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return client_json.decode(stream.read())
        except InvalidRequest as err:
            raise ParseError(f"JSON parse error - {err.message}") from None
