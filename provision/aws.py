"""boto3 clients per thread that honour the standard AWS configuration (profile, AWS_ENDPOINT_URL, chain)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config as BotoConfig

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_ssm import SSMClient

#: Throttling and transient errors are retried by botocore itself, a bounded number of times.
_BOTO_CONFIG = BotoConfig(
    retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=10, read_timeout=60
)


class Aws:
    """Clients for one profile. boto3 sessions are not thread-safe, so each thread builds its own.

    Credentials, region defaults and endpoints come from boto3's usual chain: ``--profile`` or
    ``AWS_PROFILE``, environment keys, SSO, instance roles; ``AWS_ENDPOINT_URL`` (and the per-service
    ``AWS_ENDPOINT_URL_<SERVICE>``) redirect every call, which is how the tests reach moto.
    """

    def __init__(self, profile: str | None = None) -> None:
        self._profile = profile
        self._local = threading.local()
        self._account: str | None = None
        self._lock = threading.Lock()

    def _client(self, service: str, region: str) -> Any:
        clients: dict[tuple[str, str], Any] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = {}
            self._local.clients = clients
            self._local.session = boto3.Session(profile_name=self._profile)
        key = (service, region)
        if key not in clients:
            clients[key] = self._local.session.client(service, region_name=region, config=_BOTO_CONFIG)
        return clients[key]

    def ec2(self, region: str) -> EC2Client:
        return cast("EC2Client", self._client("ec2", region))

    def ecs(self, region: str) -> ECSClient:
        return cast("ECSClient", self._client("ecs", region))

    def ssm(self, region: str) -> SSMClient:
        return cast("SSMClient", self._client("ssm", region))

    def rds(self, region: str) -> RDSClient:
        return cast("RDSClient", self._client("rds", region))

    def iam(self) -> IAMClient:
        """IAM is global; its client is bound to us-east-1 like the CLI's."""
        return cast("IAMClient", self._client("iam", "us-east-1"))

    def account_id(self, region: str) -> str:
        """The account the credentials belong to (asked once, from STS)."""
        with self._lock:
            if self._account is None:
                self._account = str(self._client("sts", region).get_caller_identity()["Account"])
            return self._account
