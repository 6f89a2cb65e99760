"""The device shadow: the cloud asks for parameters (``desired``), the device checks, applies and reports.

The flow, on AWS IoT and on the local endpoint alike (``iot-data`` shadows)::

    cloud:  update_thing_shadow  {"state": {"desired": {"car_green_s": 30}}}
    device: get_thing_shadow -> delta {"car_green_s": 30}
            -> store.params.validate -> store.params.update(..., source="cloud")   (all or nothing)
            -> update_thing_shadow {"state": {"reported": {every parameter..., "rejected": null}}}

A delta that fails any check changes nothing locally; the device reports its unchanged values and a
reason per parameter under ``reported.rejected`` (and keeps reporting nothing new for the same
delta, so a bad request does not make the shadow churn). ``device_id`` is never taken from the cloud:
it names the thing.

    >>> import kit.cloud
    >>> from kit.store import Store
    >>> from kit.cloud.shadow import ShadowAgent
    >>> with kit.cloud.LocalCloud() as cloud:                       # doctest: +SKIP
    ...     agent = ShadowAgent(Store(":memory:")).provision()
    ...     agent.request({"car_green_s": 30})                       # what the cloud does
    ...     agent.poll().applied
    {'car_green_s': 30.0}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DOCUMENT_BYTES = 8 * 1024  # AWS IoT's limit for a shadow state section
DEVICE_ONLY = {"device_id": "is set on the device only (it names the thing); change it with 'kit params set'"}
_MAX_REASONS = 20
_MAX_REASON_CHARS = 200
DOCUMENT = "(document)"  # the key under ``rejected`` for a problem with the whole document
#: desired keys that are not parameters: another part of the device handles them (``model``: the model updater,
#: kit.ml.ota, which reports ``reported.model`` itself)
HANDLED_ELSEWHERE = frozenset({"model"})


@dataclass
class ShadowResult:
    """What one :meth:`ShadowAgent.handle` did: ``applied`` values, ``rejected`` reasons, or nothing."""

    applied: dict[str, Any] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    requested: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    skipped: bool = False  # same delta as last time: nothing done

    @property
    def ok(self) -> bool:
        return not self.rejected


class ShadowAgent:
    """Keeps a :class:`kit.store.Store`'s parameters and the thing's shadow in step.

    >>> agent = ShadowAgent(store, thing_name="kit-0001")   # doctest: +SKIP
    >>> agent.provision()                                    # doctest: +SKIP
    >>> result = agent.poll()                                # doctest: +SKIP
    """

    def __init__(
        self,
        store: Any,
        *,
        thing_name: str | None = None,
        client: Any = None,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        effective: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        #: the values in effect on the device (a running controller takes a new timing at its next phase):
        #: what ``reported`` says, so the cloud sees a change as applied only once it is in effect
        self.effective = effective
        self.thing_name = thing_name or store.params.get("device_id")
        self._client = client
        self.max_bytes = max_bytes
        self.on_change = on_change
        self._last: Any = None  # the last refused delta (not handled again)
        self._rejected: dict[str, str] = {}  # reasons of the last handled delta, kept in every report

    @property
    def client(self) -> Any:
        """The ``iot-data`` boto3 client (made on first use)."""
        if self._client is None:
            from kit.cloud.config import client

            self._client = client("iot-data")
        return self._client

    # provisioning ----------------------------------------------------------------------------
    def provision(self, iot: Any = None, *, attributes: Mapping[str, str] | None = None) -> ShadowAgent:
        """Register the thing (``iot.create_thing``; fine if it exists) and report the current parameters.

        On AWS this is an administrator's step (the device policy does not allow ``iot:CreateThing``);
        see docs/cloud.md for the certificate and policy that go with it.
        """
        if iot is None:
            from kit.cloud.config import client

            iot = client("iot")
        try:
            iot.create_thing(
                thingName=self.thing_name, attributePayload={"attributes": dict(attributes or {"kit": "intersection"})}
            )
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
        self.report()
        return self

    # the device side -------------------------------------------------------------------------
    def report(self, rejected: Mapping[str, str] | None = None) -> None:
        """Publish every parameter as ``reported`` (plus the reasons for a refused request, or null).

        Without ``rejected``, the reasons of the last handled delta are reported again (a later report of the
        values in effect must not erase why a request was refused)."""
        rejected = self._rejected if rejected is None else rejected
        params = {k: v for k, v in self.store.params.all().items()}
        if self.effective is not None:
            params.update({k: v for k, v in self.effective().items() if k in params})
        state = {**params, "rejected": dict(rejected) if rejected else None}
        self.client.update_thing_shadow(
            thingName=self.thing_name, payload=json.dumps({"state": {"reported": state}}).encode()
        )

    def poll(self) -> ShadowResult:
        """Fetch the shadow and handle its delta (one GET, and one UPDATE when something changed)."""
        body = self.client.get_thing_shadow(thingName=self.thing_name)["payload"].read()
        return self.handle(body)

    def handle(self, document: bytes | str | Mapping[str, Any]) -> ShadowResult:
        """Handle a shadow document (a GET response or an MQTT ``.../shadow/update/delta`` message)."""
        changes, version, problem = self._changes(document)
        result = ShadowResult(version=version)
        if problem is None and not changes:
            return result
        seen = problem if problem is not None else changes
        if seen == self._last:
            result.skipped = True
            return result
        if problem is not None:
            result.rejected = {DOCUMENT: problem}
        else:
            result.requested = dict(changes)
            result.rejected = self._check(changes)
        if not result.rejected:
            from kit.store import ParameterError

            try:
                result.applied = self.store.params.update(changes, source="cloud")
            except ParameterError as exc:  # a rule that only shows while writing
                result.rejected = dict(exc.problems)
        # Remember only a refusal: the same delta after a success is new work (e.g. a local change since)
        self._last = seen if result.rejected else None
        self._rejected = _short(result.rejected)
        self.report(self._rejected)
        if result.applied and self.on_change:
            self.on_change(result.applied)
        return result

    def _changes(self, document: bytes | str | Mapping[str, Any]) -> tuple[dict[str, Any], int | None, str | None]:
        """(requested changes, version, problem with the document)."""
        if isinstance(document, (bytes, bytearray, str)):
            raw = document.encode() if isinstance(document, str) else bytes(document)
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                return {}, None, f"not valid JSON ({exc.msg} at character {exc.pos}); send a JSON object"
        else:
            doc = document
        if not isinstance(doc, Mapping) or not isinstance(doc.get("state", {}), Mapping):
            got = f"state={doc['state']!r:.40}" if isinstance(doc, Mapping) else f"a JSON {type(doc).__name__}"
            return (
                {},
                None,
                f'the shadow document must be a JSON object like {{"state": {{"desired": {{...}}}}}}, got {got}',
            )
        version = doc.get("version") if isinstance(doc.get("version"), int) else None
        state = doc.get("state", {})
        if "desired" in state or "reported" in state:
            desired = state.get("desired")
            if desired is not None and not isinstance(desired, Mapping):
                return {}, version, f"desired must be an object of parameter: value, got {type(desired).__name__}"
            changes = state.get("delta", {})
        else:  # an MQTT delta message: the state IS the delta
            changes = state
        if not isinstance(changes, Mapping):
            return {}, version, f"the delta must be an object of parameter: value, got {type(changes).__name__}"
        size = len(json.dumps(changes).encode())
        if size > self.max_bytes:
            return (
                {},
                version,
                (
                    f"the requested change is {size} bytes, more than the {self.max_bytes} allowed; "
                    "send only the parameters that change"
                ),
            )
        # "rejected" is ours (reported only); a desired key of that name is a cloud-side mistake
        return {k: v for k, v in changes.items() if k not in HANDLED_ELSEWHERE}, version, None

    def _check(self, changes: Mapping[str, Any]) -> dict[str, str]:
        reasons = {n: DEVICE_ONLY[n] for n in changes if n in DEVICE_ONLY}
        nested = {
            n: f"must be a single value, got a JSON {type(v).__name__}"
            for n, v in changes.items()
            if isinstance(v, (Mapping, list))
        }
        reasons.update(nested)
        rest = {n: v for n, v in changes.items() if n not in reasons}
        if rest:
            reasons.update(self.store.params.validate(rest))
        return reasons

    def delta_topic(self) -> str:
        """The MQTT topic AWS IoT Core publishes this thing's shadow deltas on."""
        return delta_topic(self.thing_name)

    # the cloud side --------------------------------------------------------------------------
    def request(self, changes: Mapping[str, Any]) -> None:
        """What an operator (the cloud) does: ask for new parameter values (``desired``)."""
        self.client.update_thing_shadow(
            thingName=self.thing_name, payload=json.dumps({"state": {"desired": dict(changes)}}).encode()
        )

    def document(self) -> dict[str, Any]:
        """The whole shadow document, as the cloud sees it."""
        return json.loads(self.client.get_thing_shadow(thingName=self.thing_name)["payload"].read())


def delta_topic(thing_name: str) -> str:
    """AWS IoT Core's shadow delta topic for a thing (the classic, unnamed shadow).

    >>> delta_topic("kit-0001")
    '$aws/things/kit-0001/shadow/update/delta'
    """
    return f"$aws/things/{thing_name}/shadow/update/delta"


def _short(reasons: Mapping[str, str]) -> dict[str, str]:
    """Reasons small enough for the reported state (a flood of unknown keys must not overflow it)."""
    items = list(reasons.items())
    out = {str(n)[:64]: str(r)[:_MAX_REASON_CHARS] for n, r in items[:_MAX_REASONS]}
    if len(items) > _MAX_REASONS:
        out["(more)"] = f"{len(items) - _MAX_REASONS} more parameters rejected"
    return out
