"""Credentials out of text: what an SDK, a probe or a provider says must not carry a working link.

A presigned URL in an error message (PyAV names the URL it could not read; cloud SDKs and the
provider SDKs name the URL a request went to) downloads the upload for hours and, on AWS, carries
the function role's session token; a callback URL carries the token that lets a callback in. So
every message that enters our error model, and every log line, goes through ``redact``: a URL
keeps its scheme, host and path (enough to say which object) and loses its query string, and a
bearer credential loses its value.
"""

from __future__ import annotations

import re

# A URL's query string: from "?" to the first character that cannot be part of one in prose
# (whitespace, a quote, a closing bracket), whatever the URL's scheme.
_URL_QUERY = re.compile(r"([a-z][a-z0-9+.-]*://[^\s?\"'<>]*)\?[^\s\"'<>)\]}]*", re.IGNORECASE)
# A credential outside a URL: "Bearer sk-…", "X-Amz-Security-Token: …", "token=…" in a log line.
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_NAMED = re.compile(
    r"\b(X-Amz-Security-Token|X-Amz-Signature|X-Amz-Credential|Signature|AWSAccessKeyId|"
    r"security[_-]?token|access[_-]?key[_-]?id|secret[_-]?access[_-]?key|token|sk)"
    r"(\s*[=:]\s*)[\"']?[A-Za-z0-9%._~+/=-]{6,}[\"']?",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every URL's query string and every named credential value replaced."""
    if not text:
        return text
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return _NAMED.sub(rf"\1\2{REDACTED}", text)
