"""Presigned URLs read as a provider fetches them and as the store checks them.

moto serves a presigned URL without checking its signature, its expiry or its credentials, so what
S3 (and OBS, which takes the same SigV4 query signature) would check is done here: the signature
is recomputed with botocore's own SigV4 code from the URL and the signing key's secret, and the
URL is accepted at a moment only if it is signed by that key, its own expiry
(``X-Amz-Date`` + ``X-Amz-Expires``) is still ahead, and, where it names a session token, that
session has not ended (AWS: "if you created a presigned URL using a temporary credential, the URL
expires when the credential expires").
"""

from __future__ import annotations

import http.client
import urllib.parse
from datetime import UTC, datetime, timedelta

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGV4_TIME = "%Y%m%dT%H%M%SZ"
SESSION_TOKEN_PARAMETERS = ("x-amz-security-token", "x-obs-security-token")


def query(url: str) -> dict[str, str]:
    """The URL's query parameters, decoded."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def session_token(url: str) -> str | None:
    """The security token a URL names (it was signed with temporary credentials), if any."""
    for name, value in query(url).items():
        if name.lower() in SESSION_TOKEN_PARAMETERS:
            return value
    return None


def signed_at(url: str) -> datetime:
    return datetime.strptime(query(url)["X-Amz-Date"], SIGV4_TIME).replace(tzinfo=UTC)


def valid_until(url: str) -> datetime:
    """When the URL's own expiry runs out (SigV4: signing time + ``X-Amz-Expires``)."""
    return signed_at(url) + timedelta(seconds=int(query(url)["X-Amz-Expires"]))


def signature_matches(url: str, secret_access_key: str) -> bool:
    """Whether the URL's SigV4 query signature is the one ``secret_access_key`` makes for it."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    given = dict(pairs)["X-Amz-Signature"]
    unsigned = urllib.parse.urlencode(
        [(name, value) for name, value in pairs if name != "X-Amz-Signature"], quote_via=urllib.parse.quote
    )
    key_id, _, region, service, _ = dict(pairs)["X-Amz-Credential"].split("/")
    request = AWSRequest(
        method="GET",
        url=urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, unsigned, "")),
        headers={"host": parts.netloc},
    )
    request.context["timestamp"] = dict(pairs)["X-Amz-Date"]
    auth = S3SigV4QueryAuth(
        Credentials(key_id, secret_access_key, session_token(url)),
        service,
        region,
        expires=int(dict(pairs)["X-Amz-Expires"]),
    )
    canonical = auth.canonical_request(request)
    return bool(auth.signature(auth.string_to_sign(request, canonical), request) == given)


def accepted_at(
    url: str, moment: datetime, *, secret_access_key: str, session_ends: datetime | None = None
) -> bool:
    """Whether the store would serve the URL at ``moment``: signed by the key, within its own
    expiry, and, if it names a session token, before that session (``session_ends``) ended."""
    if not signature_matches(url, secret_access_key) or moment >= valid_until(url):
        return False
    if session_token(url) is not None:
        assert session_ends is not None, "a URL signed in a session lives only as long as the session"
        return moment < session_ends
    return True


def fetch_from(server: str, url: str) -> tuple[int, bytes]:
    """GET ``url`` from ``server`` (``http://host:port``) exactly as written: its path, its query
    and its host (in the Host header, which is how S3 reads a virtual-hosted bucket). The server
    stands in for the URL's own host, as DNS and TLS would lead a provider to it."""
    target = urllib.parse.urlsplit(url)
    at = urllib.parse.urlsplit(server)
    connection = http.client.HTTPConnection(at.hostname or "127.0.0.1", at.port, timeout=10)
    try:
        connection.request("GET", f"{target.path}?{target.query}", headers={"Host": target.netloc})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
