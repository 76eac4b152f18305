"""The rotation engine: runs the rotations that RotateSecret and the schedule start.

Theory of operation
-------------------
RotateSecret (``operations.rotation``) only writes a ``rotations`` row in state "pending",
with the empty AWSPENDING version beside it. This engine, a thread of every server process:

1. starts scheduled rotations: each secret whose ``rotation_due_at`` has come gets a new row
   (or, when a rotation was left incomplete, that rotation again: "That rotation will be
   reattempted");
2. claims due rows through the database (a conditional UPDATE taking a lease), so a rotation
   runs in one process at a time, and one whose process died is taken over when its lease
   runs out;
3. runs each claimed rotation in a worker thread: temporary credentials that may act only on
   the secret being rotated, then the four steps (only testSecret for RotateImmediately=false),
   each in the function's own process (``rotation.invoke``), each recorded with its outcome
   and output (secret values masked);
4. between steps re-reads the row: CancelRotateSecret marks it "cancelled" (a new AWSCURRENT
   value stored by hand, "abandoned": ``operations.versions``), and a step in flight is
   killed at once (``wake`` makes the engine notice);
5. on success sets LastRotatedDate and the next schedule and takes AWSPENDING off the new
   current version; on failure leaves AWSCURRENT and AWSPENDING as they are and retries with
   backoff, a bounded number of times;
6. records RotationStarted as a rotation's first attempt begins, RotationSucceeded and
   RotationFailed (failed for good: no attempt left) as it ends, each in the transaction that
   changes the rotation's state (``audit.service_events``). A failure's reason, kept on the
   row and in RotationFailed's errorMessage, is masked like the function's output.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from strongroom.audit.service_events import record_service_event, rotation_request_id
from strongroom.crypto.envelope import (
    DecryptError,
    Sealer,
    aad_for_function_env,
    aad_for_version,
)
from strongroom.domain.arn import partition_for_region
from strongroom.domain.schedules import schedule_from_json
from strongroom.operations.context import SecretValue
from strongroom.operations.rotation import add_pending_version, find_function
from strongroom.operations.schedule import next_rotation
from strongroom.operations.sessions import SessionCredentials, issue_session
from strongroom.operations.versions import label_map, write_labels
from strongroom.rotation.invoke import FunctionSpec, Invocation, StepResult, invoke
from strongroom.storage.base import (
    FunctionRow,
    RotationRow,
    RotationStepRow,
    SecretRow,
    Store,
    Transaction,
)

logger = logging.getLogger("strongroom.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
MAX_ATTEMPTS = 3  # AWS retries a failed rotation a few times, then waits for the schedule
BACKOFF = (60.0, 300.0)  # seconds before the 2nd and 3rd attempt
LEASE = 60.0  # renewed at every step; a step longer than this renews it as it starts
MAX_OUTPUT = 64 * 1024
# Due secrets looked at per tick: deleted or disabled ones keep their due time (a restore
# brings them back), so the batch is larger than the starts a tick makes.
SCHEDULE_BATCH = 500
CANCEL_POLL = 0.5
STOPPED = frozenset({"cancelled", "abandoned"})  # states a caller put a rotation in
CANCELLED, TAKEN_OVER = (
    "cancelled",
    "taken over by another process",
)  # seconds between looks for cancellations while rotations run
BUILTIN_DIR = "strongroom.rotators"
_SECRET_KEY_WORDS = ("password", "secret", "token", "key")
_MASK_MIN, _MASK_ANY = 4, 16  # shortest value masked; length from which any value is


class RotationEngine:
    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        *,
        clock: Callable[[], float] = time.time,
        endpoint_url: str,
        parallel: int = 4,
        interval: float = 5.0,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.endpoint_url = endpoint_url  # what rotation functions call back
        self.interval = interval
        self.node = uuid.uuid4().hex[:16]  # this process, as a lease owner
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="rotation")
        self._slots = threading.Semaphore(parallel)
        self._running: dict[int, threading.Event] = {}  # rotation pk -> cancel event
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # -- the loop --------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("rotation engine tick failed")  # the next tick retries
            # While a rotation runs here, look often: a CancelRotateSecret served by another
            # process reaches this one only through the database.
            with self._lock:
                busy = bool(self._running)
            self._wake.wait(CANCEL_POLL if busy else self.interval)
            self._wake.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def tick(self) -> None:
        """One round: start what the schedule says, notice cancellations, claim due work."""
        self.start_scheduled()
        self._notice_cancellations()
        self._claim_due()

    # -- scheduling ------------------------------------------------------------------------------
    def start_scheduled(self) -> int:
        now = self.clock()
        with self.store.read() as tx:
            due = tx.secrets_due_for_rotation(now, SCHEDULE_BATCH)
        started = 0
        for secret in due:
            try:
                started += self._start_scheduled(secret.pk, now)
            except Exception:
                logger.exception("starting the scheduled rotation of %s failed", secret.arn)
        return started

    def _start_scheduled(self, secret_pk: int, now: float) -> int:
        with self.store.write() as tx:
            tx.lock_secret(secret_pk)
            secret = tx.secret_by_pk(secret_pk)  # again, under the lock: still due?
            if (
                secret is None
                or not secret.rotation_enabled
                or not secret.rotation_lambda_arn
                or secret.deletion_date is not None
                or secret.rotation_due_at is None
                or secret.rotation_due_at > now
            ):
                return 0
            tx.update_secret(secret.pk, rotation_due_at=None)  # once per window
            if tx.active_rotation(secret.pk) is not None:
                return 0
            pending = tx.version_by_stage(secret.pk, PENDING)
            if pending is not None and CURRENT not in pending.stages:
                version_id = pending.version_id  # the incomplete rotation, reattempted
            else:
                version_id = str(uuid.uuid4())
                add_pending_version(tx, secret, version_id, now)
            previous = tx.rotation_for_version(secret.pk, version_id)
            if previous is not None:
                tx.update_rotation(
                    previous.pk,
                    state="pending",
                    attempts=0,
                    error=None,
                    next_attempt_at=now,
                    finished_at=None,
                    function_arn=secret.rotation_lambda_arn,
                )
            else:
                tx.insert_rotation(
                    RotationRow(
                        pk=0,
                        secret_pk=secret.pk,
                        version_id=version_id,
                        function_arn=secret.rotation_lambda_arn,
                        immediately=True,
                        state="pending",
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        logger.info("scheduled rotation of %s started (version %s)", secret.arn, version_id)
        return 1

    # -- claiming and cancelling ------------------------------------------------------------------
    def _claim_due(self) -> None:
        now = self.clock()
        with self.store.read() as tx:
            due = tx.claimable_rotations(now, 20)
        for row in due:
            if not self._slots.acquire(blocking=False):
                return  # every worker busy: the rest waits for the next tick
            with self.store.write() as tx:
                claimed = tx.claim_rotation(row.pk, self.node, now, now + LEASE)
            if not claimed:
                self._slots.release()
                continue
            self._pool.submit(self._run_in_slot, row.pk)

    def _run_in_slot(self, pk: int) -> None:
        try:
            self._run(pk)
        except Exception:
            logger.exception("rotation %d failed unexpectedly", pk)
        finally:
            self._slots.release()

    def _notice_cancellations(self) -> None:
        with self._lock:
            running = dict(self._running)
        if not running:
            return
        with self.store.read() as tx:
            for pk, cancel in running.items():
                row = tx.rotation(pk)
                if row is None or row.state in STOPPED:
                    cancel.set()

    # -- one rotation attempt ------------------------------------------------------------------
    def _run(self, pk: int) -> None:
        cancel = threading.Event()
        with self._lock:
            self._running[pk] = cancel
        try:
            self._attempt(pk, cancel)
        finally:
            with self._lock:
                self._running.pop(pk, None)

    def _attempt(self, pk: int, cancel: threading.Event) -> None:
        now = self.clock()
        with self.store.write() as tx:
            rotation = tx.rotation(pk)
            if rotation is None or rotation.state != "running" or rotation.lease_owner != self.node:
                return
            secret = tx.secret_by_pk(rotation.secret_pk)
            function = _function_for(tx, secret, rotation.function_arn)
            attempt = rotation.attempts + 1
            tx.update_rotation(pk, attempts=attempt, error=None, step=None)
            if attempt == 1 and secret is not None:
                # Later attempts (retries, a takeover after a lease ran out) continue it.
                _record_event(tx, "RotationStarted", secret, rotation, now)
            spec, reason = None, None
            if secret is None or secret.deletion_date is not None:
                reason = "the secret is gone"
            elif function is None:
                reason = f"the rotation function {rotation.function_arn} is not registered"
            else:
                try:
                    spec = self._spec(function)
                except (ValueError, ImportError, DecryptError) as exc:  # no built-in; bad env
                    reason = f"the rotation function cannot be started ({type(exc).__name__})"
            if reason is not None or spec is None or secret is None or function is None:
                tx.update_rotation(pk, state="failed", error=reason, finished_at=now)
                if secret is not None:
                    _record_event(tx, "RotationFailed", secret, rotation, now, error=reason)
                logger.warning("rotation %d failed: %s", pk, reason)
                return
            credentials = _issue_credentials(
                tx, self.sealer, secret, function, pk, now, lifetime=function.timeout * 5 + 300
            )
        logger.info(
            "rotation %d of %s, attempt %d, with %s", pk, secret.arn, attempt, rotation.function_arn
        )
        call = Invocation(
            event={},
            function_arn=rotation.function_arn,
            region=secret.region,
            endpoint_url=self.endpoint_url,
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
        )
        try:
            outcome = self._steps(rotation, secret, spec, call, attempt, cancel)
        finally:
            with self.store.write() as tx:
                tx.delete_access_key(credentials.access_key_id)
        self._finish(rotation, secret, attempt, outcome)

    def _steps(  # noqa: PLR0917 - private; called once
        self,
        rotation: RotationRow,
        secret: SecretRow,
        spec: FunctionSpec,
        call: Invocation,
        attempt: int,
        cancel: threading.Event,
    ) -> str | None:
        """Run the steps; None when all succeeded, else why the attempt ended."""
        steps = STEPS if rotation.immediately else ("testSecret",)
        rotation_token = str(uuid.uuid4())
        for step in steps:
            with self.store.write() as tx:
                if cancel.is_set():
                    return CANCELLED
                lease_until = self.clock() + LEASE + spec.timeout
                if not tx.renew_rotation(rotation.pk, self.node, lease_until, step=step):
                    row = tx.rotation(rotation.pk)
                    return CANCELLED if row is None or row.state in STOPPED else TAKEN_OVER
            event = {
                "Step": step,
                "SecretId": secret.arn,
                "ClientRequestToken": rotation.version_id,
                "RotationToken": rotation_token,
            }
            started = self.clock()
            result = invoke(spec, _with_event(call, event), cancel=cancel)
            error = self._record(rotation, secret, attempt, step, started, result)
            if not result.ok:
                # The masked error: the reason is stored, logged and audited (RotationFailed).
                return CANCELLED if cancel.is_set() else f"{step} failed: {error}"
        return None

    def _record(  # noqa: PLR0917 - private; called once
        self,
        rotation: RotationRow,
        secret: SecretRow,
        attempt: int,
        step: str,
        started: float,
        result: StepResult,
    ) -> str | None:
        """Store the step's outcome; its error, masked (None when it gave none)."""
        masks = self._secret_strings(secret, rotation.version_id)
        output = _mask(result.output, masks)[-MAX_OUTPUT:]
        error = _mask(result.error or "", masks) or None
        with self.store.write() as tx:
            tx.insert_rotation_step(
                RotationStepRow(
                    rotation_pk=rotation.pk,
                    attempt=attempt,
                    step=step,
                    started_at=started,
                    duration=result.duration,
                    ok=result.ok,
                    error=error,
                    output=output or None,
                )
            )
        level = logging.INFO if result.ok else logging.WARNING
        logger.log(
            level,
            "rotation %d %s %s in %.2f s%s%s",
            rotation.pk,
            step,
            "succeeded" if result.ok else "failed",
            result.duration,
            f": {error}" if error else "",
            f"\n{output}" if output else "",
        )
        return error

    def _finish(
        self, rotation: RotationRow, secret: SecretRow, attempt: int, outcome: str | None
    ) -> None:
        now = self.clock()
        with self.store.write() as tx:
            tx.lock_secret(secret.pk)
            row = tx.rotation(rotation.pk)
            if row is None or row.state != "running" or row.lease_owner != self.node:
                # Cancelled, or this process was paused past its lease and another took the
                # rotation over: the rotation is no longer this process's to finish.
                why = "was stopped" if row is None or row.state in STOPPED else "moved on"
                logger.info("rotation %d %s; this process leaves it", rotation.pk, why)
                return
            if outcome is None:
                outcome = _complete(tx, rotation, now)
            if outcome is None:
                tx.update_rotation(
                    rotation.pk, state="succeeded", finished_at=now, lease_owner=None
                )
                _record_event(tx, "RotationSucceeded", secret, rotation, now)
                logger.info("rotation %d of %s succeeded", rotation.pk, secret.arn)
                return
            retry = attempt < MAX_ATTEMPTS
            tx.update_rotation(
                rotation.pk,
                state="pending" if retry else "failed",
                error=outcome,
                next_attempt_at=now + BACKOFF[attempt - 1] if retry else None,
                finished_at=None if retry else now,
                lease_owner=None,
            )
            if not retry:
                _reschedule(tx, rotation.secret_pk, now)
                _record_event(tx, "RotationFailed", secret, rotation, now, error=outcome)
        logger.warning(
            "rotation %d of %s attempt %d failed (%s)%s",
            rotation.pk,
            secret.arn,
            attempt,
            outcome,
            "; will retry" if retry else "; giving up until the next scheduled rotation",
        )

    # -- helpers --------------------------------------------------------------------------------
    def _spec(self, function: FunctionRow) -> FunctionSpec:
        env = json.loads(
            self.sealer.open(
                function.sealed_env, aad_for_function_env(function.account_id, function.name)
            )
        )
        handler = function.handler
        if function.builtin is not None:
            handler = builtin_handler(function.builtin)
        return FunctionSpec(
            name=function.name,
            handler=handler,
            url=function.url,
            env=env,
            timeout=function.timeout,
            python=function.python,
        )

    def _secret_strings(self, secret: SecretRow, version_id: str) -> list[str]:
        """What must never be shown of the secret's values (see ``_mask``)."""
        out: list[str] = []
        with self.store.read() as tx:
            versions = [
                tx.version_by_stage(secret.pk, CURRENT),
                tx.version_by_id(secret.pk, version_id),
            ]
        for version in versions:
            if version is None or version.sealed is None:
                continue
            try:
                plaintext = self.sealer.open(
                    version.sealed, aad_for_version(secret.arn, version.version_id)
                )
            except DecryptError:
                continue
            value = SecretValue.from_plaintext(plaintext)
            if value.string is not None:
                out.extend(_sensitive_parts(value.string))
        return out


def builtin_handler(name: str) -> str:
    """The handler of a built-in rotator, "postgresql-single-user" → its file:lambda_handler."""
    import importlib.util  # noqa: PLC0415 - only for built-ins

    module = f"{BUILTIN_DIR}.{name.replace('-', '_')}"
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"no built-in rotation function {name}")
    return f"{spec.origin}:lambda_handler"


def _with_event(call: Invocation, event: dict[str, str]) -> Invocation:
    return Invocation(
        event=event,
        function_arn=call.function_arn,
        region=call.region,
        endpoint_url=call.endpoint_url,
        access_key_id=call.access_key_id,
        secret_access_key=call.secret_access_key,
        session_token=call.session_token,
    )


def _record_event(  # noqa: PLR0917 - private; the event's facts
    tx: Transaction,
    event_name: str,
    secret: SecretRow,
    rotation: RotationRow,
    now: float,
    error: str | None = None,
) -> None:
    """A rotation's service event, in ``tx``: it commits with the state change it reports."""
    record_service_event(
        tx,
        event_name,
        secret,
        event_time=now,
        error_message=error,
        request_id=rotation_request_id(secret.arn, rotation.version_id),
    )


def _function_for(tx: Transaction, secret: SecretRow | None, arn: str) -> FunctionRow | None:
    if secret is None:
        return None
    return find_function(tx, secret.account_id, arn)


def _issue_credentials(  # noqa: PLR0917 - private; called once
    tx: Transaction,
    sealer: Sealer,
    secret: SecretRow,
    function: FunctionRow,
    rotation_pk: int,
    now: float,
    *,
    lifetime: float,
) -> SessionCredentials:
    """Temporary credentials for one attempt, allowed only on the secret being rotated.

    The principal is a session of a role named for the function
    (``arn:aws:iam::<account>:role/strongroom-rotation-<function>``, not an IAM role of the
    account): a secret's resource policy can grant it more, such as the master secret an
    alternating-users rotation reads.
    """
    partition = partition_for_region(secret.region)
    role = f"strongroom-rotation-{function.name}"
    session = f"rotation-{rotation_pk}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                "Resource": secret.arn,
            },
            {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        ],
    }
    return issue_session(
        tx,
        sealer,
        account_id=secret.account_id,
        principal_arn=f"arn:{partition}:sts::{secret.account_id}:assumed-role/{role}/{session}",
        role_arn=f"arn:{partition}:iam::{secret.account_id}:role/{role}",
        session_name=session,
        user_id=f"AROASTRONGROOMROTATION:{session}",
        now=now,
        expires_at=now + lifetime,
        session_policy=json.dumps(policy),
    )


def _complete(tx: Transaction, rotation: RotationRow, now: float) -> str | None:
    """After the last step: None when the rotation did what it must, else why not."""
    secret = tx.secret_by_pk(rotation.secret_pk)
    if secret is None:
        return "the secret was deleted during the rotation"
    versions = tx.versions(secret.pk)
    labels = label_map(versions)
    mine = labels.get(rotation.version_id)
    if mine is None:
        return f"version {rotation.version_id} was removed during the rotation"
    if not rotation.immediately:
        # The test-only rotation: its copy of the current value goes again (spec §6.2.11).
        mine.discard(PENDING)
        write_labels(tx, secret, labels, versions)
        doomed = [v.pk for v in versions if v.version_id == rotation.version_id and not mine]
        tx.delete_versions(doomed)
        return None
    if CURRENT not in mine:
        return f"finishSecret did not make version {rotation.version_id} AWSCURRENT"
    mine.discard(PENDING)  # Secrets Manager's own clean-up (spec §6.2.10)
    write_labels(tx, secret, labels, versions)
    schedule = schedule_from_json(secret.rotation_rules)
    update: dict[str, Any] = {"last_rotated_at": now}
    if secret.rotation_enabled:
        update.update(next_rotation(schedule, now, last_rotated=now))
    tx.update_secret(secret.pk, **update)
    return None


def _reschedule(tx: Transaction, secret_pk: int, now: float) -> None:
    """After the last failed attempt: the next window (NextRotationDate may now lie behind)."""
    secret = tx.secret_by_pk(secret_pk)
    if secret is None or not secret.rotation_enabled:
        return
    schedule = schedule_from_json(secret.rotation_rules)
    due = next_rotation(schedule, now, last_rotated=now)["rotation_due_at"]
    tx.update_secret(secret_pk, rotation_due_at=due)


def _sensitive_parts(text: str) -> list[str]:
    """The whole value, and for a JSON object the values of secret-looking keys and every
    long string value: what a rotation function's output must not show (masking is a safety
    net; functions should not print values in the first place)."""
    parts = [text] if len(text) >= _MASK_MIN else []
    try:
        document = json.loads(text)
    except ValueError:
        return parts
    if isinstance(document, dict):
        for key, value in document.items():
            if not isinstance(value, str) or len(value) < _MASK_MIN:
                continue
            if len(value) >= _MASK_ANY or any(word in key.lower() for word in _SECRET_KEY_WORDS):
                parts.append(value)
    return parts


def _mask(text: str, parts: list[str]) -> str:
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, "********")
    return text
