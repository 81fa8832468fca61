"""The TLS certificate a server actually presented, read from the live connection and summarised."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import ssl
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from contracts.v1.runs import CertificateInfo

log = logging.getLogger(__name__)


def peer_certificate(ssl_object: Any, host: str, now: datetime | None = None) -> CertificateInfo | None:
    """The leaf certificate the server presented on a connection (its ``ssl.SSLObject``), or ``None``
    when there is none to read. Read whether or not it was verified (``verify_tls: false`` records it)."""
    return certificate_from_der(peer_der(ssl_object), host, now)


def peer_der(ssl_object: Any) -> bytes | None:
    """The DER bytes of the leaf certificate on a connection: cheap to take while the connection is
    live (on the HTTP loop), summarised later by :func:`certificate_from_der` off the timed path."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return bytes(der) if der else None


def certificate_from_der(der: bytes | None, host: str, now: datetime | None = None) -> CertificateInfo | None:
    """``der`` summarised, or ``None`` when there is none or it cannot be read."""
    if not der:
        return None
    try:
        return describe(der, host, now)
    except ValueError as exc:
        log.info("certificate unreadable host=%s error=%s", host, exc)
        return None


#: How long reading a rejected certificate may take (a second handshake, only after a TLS failure).
PROBE_TIMEOUT_S: Final = 2.0


async def rejected_certificate(address: tuple[str, int], host: str) -> CertificateInfo | None:
    """The certificate a server presented in a handshake that failed verification (expired, wrong
    host, unknown issuer), read by one more handshake to the same, already vetted address without
    verifying — so the run still shows what expired and when. Nothing is sent over it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(
                address[0], address[1], ssl=context, server_hostname=host or None
            )
            return peer_certificate(writer.get_extra_info("ssl_object"), host)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        log.info("rejected certificate unreadable host=%s error=%s", host, type(exc).__name__)
        return None
    finally:
        if writer is not None:
            writer.transport.abort()


def describe(der: bytes, host: str, now: datetime | None = None) -> CertificateInfo:
    """A DER certificate as :class:`CertificateInfo`; ``hostname_match`` against ``host`` (RFC 6125:
    SAN DNS names with a left-most wildcard label, SAN IP addresses; the subject CN only without SANs)."""
    certificate = x509.load_der_x509_certificate(der)
    now = now or datetime.now(UTC)
    not_after = certificate.not_valid_after_utc
    dns_names: list[str] = []
    addresses: list[str] = []
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names: Any = extension.value
        dns_names = list(names.get_values_for_type(x509.DNSName))
        addresses = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    common_names = [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    ]
    candidates = dns_names or ([] if addresses else common_names)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        san=[*dns_names, *addresses],
        not_before=certificate.not_valid_before_utc,
        not_after=not_after,
        days_until_expiry=math.floor((not_after - now).total_seconds() / 86400),
        hostname_match=_matches(host, candidates, addresses),
    )


def _matches(host: str, names: list[str], addresses: list[str]) -> bool:
    host = host.lower().rstrip(".").strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return any(ipaddress.ip_address(address) == ip for address in addresses)
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False
