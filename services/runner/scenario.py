"""Runs a check as a scenario: ordered steps that share extracted values, then teardown steps that
always run, all as one unit in one region.

- **Main steps** run in order under one deadline (the check's ``timeout``). The first step that fails
  or errors stops the scenario: the remaining main steps are reported ``skipped``.
- **Teardown steps** always run afterwards — after a failure, an error or a timeout of the main steps —
  with the values extracted so far, under a deadline of their own (again ``timeout``), so a scenario
  that used up its time still cleans up. A teardown step that cannot render (its step never extracted
  the value) is reported as a ``template`` error; the next teardown step still runs. Teardown failures
  are reported on their steps and only fail the check with ``teardown_fails_check``.
- **Cookies** set by a step are sent by the later steps only with ``share_cookies``.
- The run's timings are the sums over the steps that ran; its ``response`` is that of the failing step
  (or the last main step); its assertions are every main step's, each message naming its step.
- A check without ``steps`` is sent as it always was (its placeholders, if any, rendered first), and its
  run reports no steps.

Secrets used by a run are masked wherever the run's record would show them (requests, samples,
messages, extracted values).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from contracts.v1.base import utcnow
from contracts.v1.checks import CheckSpec, Extraction, Step
from contracts.v1.patterns import UnsupportedPattern
from contracts.v1.runs import RunError, StepOutcome, Timings
from contracts.v1.templates import TemplateError
from services.common.redaction import MASK
from services.runner.assertions import ResponseFacts, bounded, read_value, search
from services.runner.http_check import CheckResult, request_record
from services.runner.templating import Context, MissingValue, render_request

log = logging.getLogger(__name__)

Send = Callable[[CheckSpec, Mapping[str, str] | None], Awaitable[CheckResult]]

_TIMING_FIELDS: Final = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "download_ms", "total_ms")


async def run_scenario(
    send: Send,
    spec: CheckSpec,
    *,
    variables: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run ``spec`` through ``send`` (one request each): all of its steps and its teardown, or its one
    request. ``variables`` are global ones (the check's own win); ``secrets`` the values of the
    secrets it uses. Never raises for anything an endpoint or a template does."""
    context = Context(variables={**(variables or {}), **spec.variables}, secrets=dict(secrets or {}))
    if not spec.is_multi_step():
        return await _single(send, spec, context)
    loop = asyncio.get_running_loop()
    started_at = utcnow()
    outcomes: list[StepOutcome] = []
    results: list[CheckResult] = []
    cookies: dict[str, str] = {}
    failing: StepOutcome | None = None
    failing_result: CheckResult | None = None
    deadline = loop.time() + spec.timeout
    for step in spec.steps:
        if failing is not None:
            outcomes.append(StepOutcome(name=step.name, status="skipped"))
            continue
        outcome, result = await _step(send, spec, step, context, cookies, deadline - loop.time())
        outcomes.append(outcome)
        if result is not None:
            results.append(result)
        if outcome.status != "passed":
            failing, failing_result = outcome, result
    teardown_failing: StepOutcome | None = None
    deadline = loop.time() + spec.timeout
    for step in spec.teardown:
        outcome, _ = await _step(send, spec, step, context, cookies, deadline - loop.time(), teardown=True)
        outcomes.append(outcome)
        if outcome.status != "passed" and teardown_failing is None:
            teardown_failing = outcome
    if teardown_failing is not None:
        log.info("teardown failed step=%s check=%s", teardown_failing.name, spec.name)
    return _mask(
        _combine(spec, started_at, outcomes, results, failing, failing_result, teardown_failing), context
    )


async def _single(send: Send, spec: CheckSpec, context: Context) -> CheckResult:
    """A check without steps: exactly the request it always sent, placeholders rendered."""
    if not spec.request.placeholders():
        return await send(spec, None)
    try:
        request = render_request(spec.request, context)
    except (MissingValue, TemplateError) as exc:
        now = utcnow()
        record = request_record(
            spec.request.method, spec.request.url, spec.request.headers, spec.request.body
        )
        return CheckResult(
            "error", now, now, Timings(), record, error=RunError(cls="template", message=str(exc))
        )
    return _mask(await send(spec.model_copy(update={"request": request}), None), context)


async def _step(
    send: Send,
    spec: CheckSpec,
    step: Step,
    context: Context,
    cookies: dict[str, str],
    remaining: float,
    *,
    teardown: bool = False,
) -> tuple[StepOutcome, CheckResult | None]:
    """Render, send and assert one step; record what it extracted into ``context``."""
    started_at = utcnow()
    record = request_record(step.request.method, step.request.url, step.request.headers, step.request.body)
    try:
        request = render_request(step.request, context)
    except (MissingValue, TemplateError) as exc:
        problem = RunError(cls="template", message=str(exc))
        return StepOutcome(
            name=step.name,
            teardown=teardown,
            status="error",
            started_at=started_at,
            request=record,
            error=problem,
        ), None
    if remaining <= 0:
        problem = RunError(
            cls="timeout", message=f"no time left of the check's {spec.timeout:g} s for this step"
        )
        return StepOutcome(
            name=step.name,
            teardown=teardown,
            status="error",
            started_at=started_at,
            request=record,
            error=problem,
        ), None
    one = spec.model_copy(
        update={
            "request": request,
            "assertions": step.assertions,
            "timeout": remaining,
            "steps": [],
            "teardown": [],
        }
    )
    result = await send(one, cookies if spec.share_cookies else None)
    if spec.share_cookies:
        cookies.update(result.cookies)
    status = result.status
    error: RunError | None = result.error
    extracted: dict[str, Any] = {}
    if result.facts is not None and status != "error":
        values, missing = _extract(step.extract, result.facts)
        extracted = values
        if missing is not None and status == "passed":
            status, error = "failed", RunError(cls="assertion", message=missing)
    context.steps[step.name] = extracted
    outcome = StepOutcome(
        name=step.name,
        teardown=teardown,
        status=status,
        started_at=result.started_at,
        request=result.request,
        response=result.response,
        timings=result.timings,
        error=error,
        assertions=result.assertions,
        extracted={name: bounded(value) for name, value in extracted.items()},
        certificate=result.certificate,
    )
    return outcome, result


def _extract(extractions: list[Extraction], facts: ResponseFacts) -> tuple[dict[str, Any], str | None]:
    """The values of ``extractions``, and the first one that found nothing (which fails the step)."""
    values: dict[str, Any] = {}
    problem: str | None = None
    for extraction in extractions:
        if extraction.source == "text_body":
            try:
                match = search(extraction.property or "", facts.text)
            except UnsupportedPattern as exc:
                problem = problem or f"extract '{extraction.name}': {exc}"
                continue
            if match is None:
                problem = (
                    problem or f"extract '{extraction.name}': /{extraction.property}/ did not match the body"
                )
                continue
            values[extraction.name] = match.group(1) if match.re.groups else match.group(0)
            continue
        if extraction.source == "status_code":
            values[extraction.name] = facts.status_code
            continue
        found, value, why = read_value(extraction.source, extraction.property, facts)
        if not found:
            where = f"{extraction.source} {extraction.property}"
            problem = problem or f"extract '{extraction.name}': {where} {why or 'not found'}"
            continue
        values[extraction.name] = value
    return values, problem


def _combine(
    spec: CheckSpec,
    started_at: Any,
    outcomes: list[StepOutcome],
    results: list[CheckResult],
    failing: StepOutcome | None,
    failing_result: CheckResult | None,
    teardown_failing: StepOutcome | None,
) -> CheckResult:
    """One run's result out of its steps."""
    ran = [outcome for outcome in outcomes if outcome.status != "skipped"]
    sums: dict[str, float | None] = {}
    for name in _TIMING_FIELDS:
        values = [
            getattr(outcome.timings, name) for outcome in ran if getattr(outcome.timings, name) is not None
        ]
        sums[name] = round(sum(values), 3) if values else None
    timings = Timings(**sums)
    assertions = [
        outcome.model_copy(update={"message": f"step '{step.name}': {outcome.message}"})
        for step in outcomes
        if not step.teardown
        for outcome in step.assertions
    ]
    main_responses = [result for result in results if result.response is not None]
    last = failing_result or (main_responses[-1] if main_responses else None)
    error: RunError | None = None
    failed_step: str | None = None
    status: Any = "passed"
    if failing is not None:
        status = "error" if failing.status == "error" else "failed"
        failed_step = failing.name
        error = _named(failing)
    elif teardown_failing is not None and spec.teardown_fails_check:
        status = "error" if teardown_failing.status == "error" else "failed"
        failed_step = teardown_failing.name
        error = _named(teardown_failing, "teardown step")
    threshold = spec.alert_policy.degraded_response_time
    total = timings.total_ms or 0.0
    certificate = next((outcome.certificate for outcome in ran if outcome.certificate is not None), None)
    return CheckResult(
        status,
        started_at,
        utcnow(),
        timings,
        outcomes[0].request or {},
        response=last.response if last is not None else None,
        error=error,
        assertions=assertions,
        degraded=threshold is not None and total > threshold,
        certificate=certificate,
        steps=outcomes,
        failed_step=failed_step,
    )


def _named(outcome: StepOutcome, what: str = "step") -> RunError:
    error = outcome.error or RunError(cls="assertion", message="")
    return RunError(cls=error.cls, message=f"{what} '{outcome.name}': {error.message}"[:500])


def _mask(result: CheckResult, context: Context) -> CheckResult:
    """``result`` with every secret value this run rendered replaced by the mask, wherever it shows."""
    secrets = sorted(context.used_secrets, key=len, reverse=True)
    if not secrets:
        return replace(result, facts=None)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {scrub(key): scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    def model(item: Any) -> Any:
        if item is None:
            return None
        return type(item).model_validate(scrub(item.model_dump(mode="json", by_alias=True)))

    return replace(
        result,
        request=scrub(result.request),
        response=model(result.response),
        error=model(result.error),
        assertions=[model(item) for item in result.assertions],
        steps=[model(item) for item in result.steps] if result.steps is not None else None,
        facts=None,
        cookies={},
    )
