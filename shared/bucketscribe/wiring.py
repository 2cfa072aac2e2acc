"""Composition root: settings → the cloud's and the providers' adapters → ``PipelinePorts``.

Function entry points call ``environment_ports`` once per cold start. The cloud comes from the
cloud registry (``BUCKETSCRIBE_CLOUD``), the providers from the provider registry; provider
adapters (and the secrets they need) are built on first use, so a request that never talks to a
provider never reads its credentials. Nothing here names a cloud or a provider.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from functools import cache

from bucketscribe import observability
from bucketscribe.clouds.plugin import CloudPlugin
from bucketscribe.clouds.registry import cloud
from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import Profile, ProfileSet
from bucketscribe.pipeline.context import Limits, MediaTools, PipelinePorts
from bucketscribe.ports.secrets import LazySecretStore, SecretStore, resolve_secret
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.ports.webhooks import WebhookSender
from bucketscribe.providers import registry as providers
from bucketscribe.settings import Settings


def callback_signer(settings: Settings, secrets: SecretStore) -> CallbackSigner:
    secret = resolve_secret(
        settings.callback_secret, settings.callback_secret_name, what="the callback secret", store=secrets
    )
    previous = None
    if settings.callback_secret_previous or settings.callback_secret_previous_name:
        previous = resolve_secret(
            settings.callback_secret_previous,
            settings.callback_secret_previous_name,
            what="the previous callback secret",
            store=secrets,
        ).encode("utf-8")
    return CallbackSigner(secret.encode("utf-8"), previous=previous)


def media_tools(storage: ObjectStorage) -> MediaTools:
    """The media tools; they convert where PyAV and numpy are in the package and load (else uploads
    go to the provider as they are, or are refused with the reason when it cannot take them)."""
    from bucketscribe.media.bucket import BucketMedia

    present = bool(importlib.util.find_spec("av") and importlib.util.find_spec("numpy"))
    return BucketMedia(storage, converts=None if present else False)


def profiles(settings: Settings) -> ProfileSet:
    return with_default_webhook(providers.load_profiles(settings.raw_profiles()), settings)


DEFAULT_PROFILE = "default"


def with_default_webhook(profile_set: ProfileSet, settings: Settings) -> ProfileSet:
    """BUCKETSCRIBE_WEBHOOK_URL is the default profile's webhook, unless the profile names its own."""
    if not settings.webhook_url:
        return profile_set

    def given(profile: Profile) -> Profile:
        if profile.name != DEFAULT_PROFILE or profile.webhook_url:
            return profile
        # Validated like a webhook_url written in the profile.
        return Profile.model_validate({**profile.model_dump(), "webhook_url": settings.webhook_url})

    return ProfileSet(profiles=[given(profile) for profile in profile_set.profiles])


def webhook_problems(settings: Settings, profile_set: ProfileSet) -> list[str]:
    """What in the webhooks' settings cannot work: refused when the functions start, rather than
    found out by every delivery."""
    problems = []
    if settings.webhook_url and profile_set.find(DEFAULT_PROFILE) is None:
        problems.append(
            f"BUCKETSCRIBE_WEBHOOK_URL is the {DEFAULT_PROFILE!r} profile's webhook, and no profile is "
            f"called {DEFAULT_PROFILE!r}: give the profile that needs it a webhook_url instead"
        )
    deployment_secret = bool(settings.webhook_secret or settings.webhook_secret_name)
    for profile in profile_set.profiles:
        if not profile.webhook_url:
            continue
        if not (profile.webhook_secret_name or deployment_secret):
            problems.append(
                f"profile {profile.name!r} has a webhook_url but no signing secret: set "
                "BUCKETSCRIBE_WEBHOOK_SECRET_NAME (or the profile's webhook_secret_name)"
            )
        if profile.webhook_url.startswith("http://") and not settings.webhook_allow_private:
            problems.append(
                f"profile {profile.name!r}: webhooks go over HTTPS only "
                "(BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE=true allows http:// and private addresses)"
            )
    return problems


def webhook_sender(settings: Settings, secrets: SecretStore, profile_set: ProfileSet) -> WebhookSender | None:
    """The webhook sender, where a profile has a webhook (none otherwise: nothing to send)."""
    if not any(profile.webhook_url for profile in profile_set.profiles):
        return None
    from bucketscribe.webhooks.sender import HttpWebhookSender

    return HttpWebhookSender(
        secrets,
        default_secret=settings.webhook_secret,
        default_secret_name=settings.webhook_secret_name,
        allow_private=settings.webhook_allow_private,
        timeout_s=settings.webhook_timeout_s,
    )


def checked_settings(settings: Settings, deployed_on: CloudPlugin) -> Settings:
    """``settings``, once the cloud and the providers in use found nothing in them to refuse."""
    profile_set = profiles(settings)
    problems = [
        *deployed_on.settings_problems(settings),
        *providers.settings_problems(settings, profile_set),
        *webhook_problems(settings, profile_set),
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def build_ports(settings: Settings, secrets: SecretStore, deployed_on: CloudPlugin) -> PipelinePorts:
    storage = deployed_on.storage()
    profile_set = profiles(settings)
    return PipelinePorts(
        storage=storage,
        media_tools=media_tools(storage),
        jobs=deployed_on.job_store(settings, secrets),
        providers=providers.lazy_providers(settings, secrets),
        signer=callback_signer(settings, secrets),
        layout=OutputLayout(input_prefix=settings.input_prefix, output_prefix=settings.output_prefix),
        profiles=profile_set,
        callback_base_url=settings.callback_base_url,
        limits=limits(settings),
        dead_letters=deployed_on.dead_letters(storage),
        webhooks=webhook_sender(settings, secrets, profile_set),
        event_bus=deployed_on.event_bus(),
        count=observability.count,
    )


def limits(settings: Settings) -> Limits:
    deadline = timedelta(seconds=settings.job_deadline_s)
    return Limits(
        max_media_bytes=settings.max_media_bytes,
        max_media_duration_s=settings.max_media_duration_s,
        max_part_bytes=settings.max_part_bytes,
        presign_expiry_s=settings.presign_expiry_s,
        first_check_after=timedelta(seconds=settings.first_check_after_s),
        max_check_interval=timedelta(seconds=settings.max_check_interval_s),
        job_deadline=deadline,
        claim_lease=timedelta(seconds=settings.claim_lease_s),
        submit_retry_after=timedelta(seconds=settings.submit_retry_after_s),
        max_submit_attempts=settings.max_submit_attempts,
        capacity_retry_after=timedelta(seconds=settings.capacity_retry_after_s),
        capacity_wait=timedelta(seconds=settings.capacity_wait_s),
        max_provider_jobs=settings.max_provider_jobs,
        search_delay=timedelta(seconds=settings.search_delay_s),
        evidence_wait=timedelta(seconds=settings.evidence_wait_s),
        # A callback can come until the provider drops the result after the deadline.
        callback_token_ttl=deadline + providers.longest_retention(),
        realtime_budget=timedelta(seconds=settings.realtime_budget_s),
        side_by_side=settings.side_by_side,
    )


@cache
def environment_settings() -> Settings:
    """The settings of this process (a function instance), read and checked once per cold start."""
    settings = Settings()
    return checked_settings(settings, cloud(settings.cloud))


@cache
def environment_secrets() -> SecretStore:
    """The secret store of the cloud this process runs on, built on its first use."""
    return LazySecretStore(cloud(environment_settings().cloud).secret_store)


@cache
def environment_ports() -> PipelinePorts:
    """The adapters of this process, built once per cold start and reused by warm invocations."""
    settings = environment_settings()
    return build_ports(settings, environment_secrets(), cloud(settings.cloud))
